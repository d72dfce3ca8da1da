"""Image data from the app behind the cache filter, answered by the node's Range rule.

The filter's miss path ends here when it does not read from the cache: a
part of an image that is not cached, or the app's own answer passed on.  The
filter has already judged Range and If-Range by the image's metadata
(:func:`imagecache.http.ranges.select`), so whatever the app does with them
(a real Glance ignores If-Range, and may ignore Range), the client gets what
a cache hit would have sent: the same status, Content-Range, Content-Length,
validator and bytes.  Each such answer says why it was not stored
(:class:`Passed`): in its ``Cache-Status``, after any the app sent, and in
the metrics by reason.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from webob import Request

from imagecache.http import ranges
from imagecache.http.cache_status import CacheStatus, with_status
from imagecache.http.types import StartResponse, WSGIApplication, WSGIEnvironment
from imagecache.metrics import Metrics, PassReason
from imagecache.wsgi.bodies import Count, CountingBody, WindowBody

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


@dataclass(frozen=True)
class Passed:
    """Why an image-data request goes to the app and its answer is not stored, and where that is counted."""

    reason: PassReason
    metrics: Metrics
    #: Counted already in ``imagecache_not_stored_total`` (by the cache, which declined the fill).
    counted: bool = False

    @property
    def cache_status(self) -> CacheStatus:
        """``fwd=bypass`` for what the cache never handles (an image that is not active), else ``fwd=uri-miss``."""
        return CacheStatus(fwd="bypass" if self.reason == "not-active" else "uri-miss", detail=self.reason)

    def request(self) -> Count:
        """Count the request to the origin; the counter of the image bytes it reads."""
        return self.metrics.origin_request(self.reason)

    @property
    def served(self) -> Count:
        return self.metrics.served_bytes.labels(source="upstream").inc

    def answered(self, code: str) -> None:
        """The app answered ``code``: image data (200, 206) that goes to the client unstored is counted."""
        if code in ("200", "206") and not self.counted:
            self.metrics.count_not_stored(self.reason)


def unsatisfiable(
    selected: ranges.Unsatisfiable, start_response: StartResponse, cache_status: CacheStatus | None = None
) -> Iterable[bytes]:
    """416, the same from a hit and a miss; no image byte is sent, so it counts as neither.

    ``cache_status`` only when it is judged from a cached file: an answer the
    node makes up from metadata alone carries none (RFC 9211 section 2).
    """
    headers = ranges.response_headers(selected, None)
    if cache_status is not None:
        headers = with_status(headers, cache_status)
    start_response(ranges.status_line(selected), headers)
    return [b""]


def relay(
    status: str,
    headers: list[tuple[str, str]],
    body: Iterable[bytes],
    start_response: StartResponse,
    entity: Representation | None,
    passed: Passed,
    read: Count,
) -> Iterable[bytes]:
    """The app's answer passed on with its Cache-Status, its image bytes counted (``read``: the counter
    :meth:`Passed.request` gave when the request went to the app).

    With ``entity`` (the filter knows the image), image data carries the
    node's validator and ``Accept-Ranges`` instead of the app's, and a part
    no Content-MD5 (it would be the whole image's digest).
    """
    code = status[:3]
    headers = with_status(headers, passed.cache_status)
    if code not in ("200", "206"):
        start_response(status, headers)
        return body
    passed.answered(code)
    if entity is not None:
        dropped = _ENTITY_FIELDS | ({"content-md5"} if code == "206" else set())
        headers = [(k, v) for k, v in headers if k.lower() not in dropped]
        headers += ranges.entity_headers(entity.etag)
    start_response(status, headers)
    return CountingBody(body, _both(read, passed.served))


def pass_range(
    app: WSGIApplication,
    environ: WSGIEnvironment,
    image_id: str,
    selected: ranges.ByteRange,
    entity: Representation,
    passed: Passed,
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
    read = passed.request()
    status, headers, body = Request(forwarded).call_application(app)
    code = status[:3]
    if code == "206":
        sent = ranges.parse_content_range(_header(headers, "content-range"))
        if sent != (selected.first, selected.last, selected.size):
            LOG.warning("image %s: the image service sent %s for %s; passing it on",
                        image_id, sent, selected.content_range)
            return relay(status, headers, body, start_response, None, passed, read)
        part: Iterable[bytes] = CountingBody(body, _both(read, passed.served))
    elif code == "200":
        cut = WindowBody(body, selected.first, selected.length, on_bytes=read, what=f"image {image_id}")
        part = CountingBody(cut, passed.served)
    else:
        return relay(status, headers, body, start_response, None, passed, read)
    passed.answered(code)
    kept = [(k, v) for k, v in headers if k.lower() not in _PART_FIELDS]
    headers = [*kept, *ranges.response_headers(selected, entity.etag)]
    start_response(ranges.status_line(selected), with_status(headers, passed.cache_status))
    return part


def _both(first: Count, second: Count) -> Count:
    def count(n: int) -> None:
        first(n)
        second(n)

    return count


def _header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None
