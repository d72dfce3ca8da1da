"""The origin's bytes from an offset: where a fill goes when no peer can give it the rest.

The origin is the image app behind the cache filter (the embedded service
or the upstream), asked for ``GET /v2/images/{id}/file`` with the caller's
credentials and ``Range: bytes=<offset>-``.  An app may ignore the Range
and send the whole image (200): the bytes before the offset are then
dropped, so the fill gets exactly the bytes it lacks.  Every byte the app
sends counts as an origin byte.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from imagecache.cache.flight import close_source
from imagecache.http.ranges import parse_content_range
from imagecache.peers.source import Count, Origin

#: open_data(start) -> (status, headers, body) of the app's data answer from ``start`` on
#: (:meth:`imagecache.wsgi.image_source.ImageSource.data` for one caller and image).
OpenData = Callable[[int], tuple[int, Mapping[str, str], Iterable[bytes]]]


def origin_reader(open_data: OpenData, image_id: str, size: int | None, on_bytes: Count) -> Origin:
    """The :data:`~imagecache.peers.source.Origin` of one image: its bytes from any offset.

    The request goes out when the bytes are first asked for (on the fill's
    thread); a refusal, the wrong part or a short body raise OSError.
    """

    def read(start: int) -> Iterator[bytes]:
        return _read(open_data, image_id, size, start, on_bytes)

    return read


def _read(open_data: OpenData, image_id: str, size: int | None, start: int, on_bytes: Count) -> Iterator[bytes]:
    status, headers, body = open_data(start)
    try:
        drop = _bytes_to_drop(status, headers, image_id, start)
        if drop < 0:
            return  # the fill's verification judges what it has
        missing = None if size is None else size - start
        for received in body:
            on_bytes(len(received))
            chunk, drop = received[drop:], max(0, drop - len(received))
            if missing is not None:
                chunk = chunk[:missing]
                missing -= len(chunk)
            if chunk:
                yield chunk
            if missing == 0:
                return
        if missing:
            raise OSError(f"image {image_id}: the origin's data ended {missing} bytes early")
    finally:
        close_source(body)


def _bytes_to_drop(status: int, headers: Mapping[str, str], image_id: str, start: int) -> int:
    """How much of the answer's body comes before ``start``, -1 for no bytes at all (OSError: no answer)."""
    if status == 200:
        return start  # the Range was ignored: the whole image again
    if status == 416 and start > 0:
        return -1  # nothing from ``start`` on: a peer of unknown size had sent it all
    if status == 206:
        value = next((v for k, v in headers.items() if k.lower() == "content-range"), None)
        sent = parse_content_range(value)
        if sent is not None and sent.first == start:
            return 0
        raise OSError(f"image {image_id}: the origin sent Content-Range {value!r} for bytes {start}-")
    raise OSError(f"image {image_id}: the origin answered {status} for its data from byte {start}")
