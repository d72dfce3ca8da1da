"""WSGI response bodies for image data: from a fill, or from the app.

Each one counts the bytes it sends (for ``/metrics``) and releases what it
holds in close(), which WSGI servers call whatever happened.  A cached file
is sent by :class:`imagecache.http.file_body.FileRangeBody`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping

from imagecache.cache import FillFailed, ImageVerificationError, TailReader

LOG = logging.getLogger(__name__)

#: Count ``n`` bytes somewhere (a metric); called once per chunk.
Count = Callable[[int], None]
#: (status, headers, body) of the app's ``GET /v2/images/{id}/file`` from an offset on.
Resume = Callable[[int], tuple[int, Mapping[str, str], Iterator[bytes]]]

_CONTENT_RANGE = re.compile(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*\Z", re.IGNORECASE)


def _nothing(_: int) -> None:
    return None


class CountingBody:
    """The app's body, passed through as it is, its bytes counted.

    An iterator whose close() reaches the app's body even when nobody
    iterated it (a generator's ``finally`` would not run then).
    """

    def __init__(self, body: Iterable[bytes], on_bytes: Count) -> None:
        self._body = body
        self._iter: Iterator[bytes] | None = None
        self._on_bytes = on_bytes

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._iter is None:
            self._iter = iter(self._body)
        chunk = next(self._iter)
        self._on_bytes(len(chunk))
        return chunk

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            close()


class ResponseAborted(ConnectionResetError):
    """Cut a response off on purpose (the image failed verification mid-stream).

    A ConnectionResetError with errno ECONNRESET: the WSGI server drops the
    client's connection, so the transfer is visibly broken, and logs no
    traceback for what the fill has already logged as an error.
    """


class FillBody:
    """An image streamed from a fill in progress, finished from the app if the fill stops.

    The reader ends only after the publish, and raises ImageVerificationError
    (which aborts the response) when the fill failed verification.  When the
    fill stops otherwise (writer killed, disk full, abandoned), the rest of
    the image comes from the app with a Range from where the reader stopped,
    so the client still gets the whole image, or a visibly broken transfer.
    """

    def __init__(
        self,
        reader: TailReader,
        resume: Resume,
        length: int | None,
        *,
        on_cache_bytes: Count = _nothing,
        on_app_bytes: Count = _nothing,
    ) -> None:
        self._reader = reader
        self._resume = resume
        self._length = length
        self._on_cache_bytes = on_cache_bytes
        self._on_app_bytes = on_app_bytes
        self._app_body: Iterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._reader:
                self._on_cache_bytes(len(chunk))
                yield chunk
            return
        except ImageVerificationError as exc:
            # Logged once by the fill; here only the response is cut off.
            raise ResponseAborted(errno.ECONNRESET, f"aborted the response: {exc}") from exc
        except FillFailed as exc:
            LOG.warning("%s; sending the rest from the image service", exc)
            offset = exc.offset
        finally:
            self._reader.close()
        yield from self._from_app(offset)

    def _from_app(self, offset: int) -> Iterator[bytes]:
        image_id = self._reader.image_id
        status, headers, body = self._resume(offset)
        self._app_body = body
        skip = 0
        if status == 206:
            match = _CONTENT_RANGE.match(_header(headers, "content-range"))
            if match is None or int(match.group(1)) != offset:
                raise OSError(f"image {image_id}: the image service sent the wrong range to resume at {offset}")
        elif status == 200:
            skip = offset  # Range ignored: the whole image again
        else:
            raise OSError(f"image {image_id}: the image service answered {status} when resuming at {offset}")
        remaining = None if self._length is None else self._length - offset
        for chunk in body:
            self._on_app_bytes(len(chunk))
            if skip:
                dropped = min(skip, len(chunk))
                chunk, skip = chunk[dropped:], skip - dropped
            if remaining is not None:
                chunk = chunk[:remaining]
                remaining -= len(chunk)
            if chunk:
                yield chunk
            if remaining == 0:
                return
        if remaining:
            raise OSError(f"image {image_id}: the image service's data ended {remaining} bytes early")

    def close(self) -> None:
        self._reader.close()
        if self._app_body is not None:
            close = getattr(self._app_body, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return ""
