"""Image data from the app behind the cache filter, answered by the node's Range rule.

The filter's miss path ends here when it does not read from the cache: a
part of an image that is not cached, or the app's own answer passed on.  The
filter has already judged Range and If-Range by the image's metadata
(:func:`imagecache.http.ranges.select`), so whatever the app does with them
(a real Glance ignores If-Range, and may ignore Range), the client gets what
a cache hit would have sent: the same status, Content-Range, Content-Length,
validator and bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from webob import Request

from imagecache.http import ranges
from imagecache.http.types import StartResponse, WSGIApplication, WSGIEnvironment
from imagecache.metrics import Metrics
from imagecache.wsgi.bodies import CountingBody, WindowBody

LOG = logging.getLogger(__name__)


#: Response fields the node sets itself on the image data the app sends ...
_ENTITY_FIELDS = frozenset({"etag", "accept-ranges"})
#: ... and on a part of the image (which it may cut from the whole itself).
_PART_FIELDS = _ENTITY_FIELDS | {"content-md5", "content-length", "content-range"}


@dataclass(frozen=True)
class Representation:
    """What the node says of an image's data, whole or in part."""

    #: Sent with every 200 and 206 (v1's ``x-image-meta-*``).
    headers: tuple[tuple[str, str], ...] = ()
    #: Content-MD5 of a whole-image answer (v2 only, as Glance).
    md5: str | None = None
    #: The node's validator (:func:`imagecache.http.ranges.entity_tag`).
    etag: str | None = None


def unsatisfiable(selected: ranges.Unsatisfiable, start_response: StartResponse) -> Iterable[bytes]:
    """416, the same from a hit and a miss; no image byte is sent, so it counts as neither."""
    start_response(ranges.status_line(selected), ranges.response_headers(selected, None))
    return [b""]


def relay(
    status: str,
    headers: list[tuple[str, str]],
    body: Iterable[bytes],
    start_response: StartResponse,
    entity: Representation | None,
    metrics: Metrics,
) -> Iterable[bytes]:
    """The app's answer passed on, its image bytes counted.

    With ``entity`` (the filter knows the image), image data carries the
    node's validator and ``Accept-Ranges`` instead of the app's, and a part
    no Content-MD5 (it would be the whole image's digest).
    """
    code = status[:3]
    if code not in ("200", "206"):
        start_response(status, headers)
        return body
    if entity is not None:
        dropped = _ENTITY_FIELDS | ({"content-md5"} if code == "206" else set())
        headers = [(k, v) for k, v in headers if k.lower() not in dropped]
        headers += ranges.entity_headers(entity.etag)
    start_response(status, headers)
    return CountingBody(body, lambda n: _count_app_bytes(metrics, n))


def pass_range(
    app: WSGIApplication,
    environ: WSGIEnvironment,
    image_id: str,
    selected: ranges.ByteRange,
    entity: Representation,
    metrics: Metrics,
    start_response: StartResponse,
) -> Iterable[bytes]:
    """The part ``selected`` of an image, from the app.

    The app gets a plain ``Range: bytes=first-last`` and no If-Range, so its
    own Range handling cannot change the answer; when it ignores the Range
    (200), the part is cut from the whole image here.  Any other answer (a
    refusal, or a part the app judged otherwise) is passed on as it is.
    """
    forwarded = dict(environ)
    forwarded["HTTP_RANGE"] = selected.header
    forwarded.pop("HTTP_IF_RANGE", None)
    status, headers, body = Request(forwarded).call_application(app)
    code = status[:3]
    if code == "206":
        sent = ranges.parse_content_range(_header(headers, "content-range"))
        if sent != (selected.first, selected.last, selected.size):
            LOG.warning("image %s: the image service sent %s for %s; passing it on",
                        image_id, sent, selected.content_range)
            return relay(status, headers, body, start_response, None, metrics)
        part: Iterable[bytes] = CountingBody(body, lambda n: _count_app_bytes(metrics, n))
    elif code == "200":
        cut = WindowBody(body, selected.first, selected.length, on_bytes=metrics.upstream_bytes.inc,
                         what=f"image {image_id}")
        part = CountingBody(cut, metrics.served_bytes.labels(source="upstream").inc)
    else:
        return relay(status, headers, body, start_response, None, metrics)
    kept = [(k, v) for k, v in headers if k.lower() not in _PART_FIELDS]
    start_response(ranges.status_line(selected), [*kept, *ranges.response_headers(selected, entity.etag)])
    return part


def _count_app_bytes(metrics: Metrics, n: int) -> None:
    metrics.upstream_bytes.inc(n)
    metrics.served_bytes.labels(source="upstream").inc(n)


def _header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None
