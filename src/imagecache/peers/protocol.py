"""The peer endpoint's rules without I/O: its path, its token, its one form of Range.

``GET /peer/v1/images/{image_id}`` with ``X-Imagecache-Peer-Token`` and
optionally ``Range: bytes=<offset>-`` (docs/peer-fill.md).  A peer resumes a
fill from where it stopped, so an open range from an offset is the only
range it asks for: any other Range is a peer that speaks another protocol,
refused with 400, not served whole as a client's would be.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from imagecache.http import ranges

__all__ = [
    "PATH_PREFIX",
    "PATH_TEMPLATE",
    "SIZE_HEADER",
    "TOKEN_HEADER",
    "TOKEN_KEY",
    "BadRange",
    "Unknown",
    "image_path",
    "path_image_id",
    "requested_offset",
    "select",
    "token_matches",
]

PATH_PREFIX = "/peer/v1/images/"
#: The same path as a route template (the API document names it so).
PATH_TEMPLATE = PATH_PREFIX + "{image_id}"
#: The request header carrying the cluster's shared secret, and its WSGI environ key.
TOKEN_HEADER = "X-Imagecache-Peer-Token"
TOKEN_KEY = "HTTP_X_IMAGECACHE_PEER_TOKEN"
#: The image's size, on every answer that knows it (the body may start at an offset).
SIZE_HEADER = "X-Image-Meta-Size"

_PATH = re.compile(r"\A/peer/v1/images/([^/]+)\Z")


def image_path(image_id: str) -> str:
    """The path a peer asks for ``image_id`` at."""
    return PATH_PREFIX + image_id


def path_image_id(path: str) -> str | None:
    """The id segment of a peer endpoint path (not yet validated), or None for any other path."""
    match = _PATH.match(path)
    return match.group(1) if match else None


def token_matches(presented: str | None, token: str) -> bool:
    """Is ``presented`` (the header as WSGI gives it, or None) the cluster's ``token``?

    Compared in constant time on bytes: a WSGI header value is latin-1 text,
    so its bytes are what the peer sent, and the token's are its UTF-8.
    """
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode("latin-1", "replace"), token.encode("utf-8"))


class BadRange(ValueError):
    """A Range the peer endpoint does not serve (its message says why)."""


def requested_offset(header: str | None) -> int | None:
    """The offset of ``Range: bytes=<offset>-``; None without a Range; BadRange for any other Range.

    The header is read by :func:`imagecache.http.ranges.parse_range_header`,
    so the grammar is the node's one.
    """
    if header is None:
        return None
    spec = ranges.parse_range_header(header)
    if not isinstance(spec, ranges.IntRange) or spec.last is not None:
        raise BadRange("a peer asks for Range: bytes=<offset>- (one open range from an offset) or no Range")
    return spec.first


@dataclass(frozen=True)
class Unknown:
    """The whole image, of a size not known here (a fill without one): no Content-Length, no Range."""

    @property
    def first(self) -> int:
        return 0

    @property
    def status(self) -> int:
        return 200


def select(offset: int | None, size: int | None) -> ranges.Selection | Unknown:
    """What to send from ``offset`` (None: no Range) of an image of ``size`` bytes (None: unknown).

    The image whole (200), from the offset (206), or 416 when the offset is
    at or past its end, as :func:`imagecache.http.ranges.resolve` decides.
    Of an unknown size no part can be described (a 206 names its last byte
    and the size), so the Range is ignored and the whole image sent, as
    RFC 9110 allows any server to.
    """
    if size is None:
        return Unknown()
    if offset is None:
        return ranges.Whole(size)
    return ranges.resolve(ranges.IntRange(offset), size)
