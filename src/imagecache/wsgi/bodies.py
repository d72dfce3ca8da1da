"""WSGI response bodies for image data: from a fill, or from the app.

Each one counts the bytes it sends (for ``/metrics``) and releases what it
holds in close(), which WSGI servers call whatever happened.  A cached file
is sent by :class:`imagecache.http.file_body.FileRangeBody`.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Literal

from imagecache.cache import FillFailed, ImageVerificationError, TailReader
from imagecache.cache.tail import Edge
from imagecache.http.closing import quiet_close
from imagecache.http.ranges import parse_content_range

LOG = logging.getLogger(__name__)

#: Count ``n`` bytes somewhere (a metric); called once per chunk.
Count = Callable[[int], None]
#: (status, headers, body) of the app's ``GET /v2/images/{id}/file`` from an offset on.
Resume = Callable[[int], tuple[int, Mapping[str, str], Iterator[bytes]]]


def _nothing(_: int) -> None:
    return None


class CountingBody:
    """The app's body, passed through as it is, its bytes counted (if ``on_bytes`` is given).

    An iterator whose close() reaches the app's body even when nobody
    iterated it: a generator's ``finally`` would not run then, and an
    upstream connection would stay out of its pool.
    """

    def __init__(self, body: Iterable[bytes], on_bytes: Count = _nothing) -> None:
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
        quiet_close(self._body)


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
        for piece in self.pieces():
            if isinstance(piece, bytes):
                yield piece
            else:
                _, offset, length = piece
                for chunk in self._reader.read(offset, length):
                    self.on_bytes(len(chunk))
                    yield chunk

    def on_bytes(self, n: int) -> None:
        """``n`` bytes of the file's runs were sent (a server that sends them itself says so too)."""
        self._on_cache_bytes(n)

    def next_run(self) -> tuple[int, int, int] | Literal["wait", "handoff"]:
        """A (descriptor, offset, length) run the server may send now without blocking, or why not.

        For a server that sends followers from its event loop: ``"wait"``
        (ask again after :meth:`call_on_change` calls back) or ``"handoff"``
        (go on with :meth:`pieces` on a thread: it carries on where the runs
        stopped, and finishes or fails as it always does).
        """
        run = self._reader.next_run()
        if run is Edge.WAIT:
            return "wait"
        if run is Edge.HANDOFF:
            return "handoff"
        offset, length = run
        return self._reader.fd, offset, length

    def call_on_change(self, callback: Callable[[], None]) -> bool:
        """After ``"wait"``: ``callback()``, from another thread, once the fill moves; False if it moved already."""
        return self._reader.call_on_change(callback)

    def pieces(self) -> Iterator[tuple[int, int, int] | bytes]:
        """The response as (descriptor, offset, length) runs of the growing file, then,
        should the fill stop, bytes from the image service.

        Iteration reads the runs; a server that sends file runs itself
        (``sendfile``) takes them as they are and calls :meth:`on_bytes` for
        what it sent (bytes from the app count themselves).  The reader is closed once the fill
        stopped, before the rest comes from the app: every run handed out
        was sent by then, as the next one is asked for only after that.
        """
        try:
            for offset, length in self._reader.pieces():
                yield self._reader.fd, offset, length
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
        if status == 206:
            sent = parse_content_range(_header(headers, "content-range"))
            if sent is None or sent.first != offset:
                raise OSError(f"image {image_id}: the image service sent the wrong range to resume at {offset}")
            skip = 0
        elif status == 200:
            skip = offset  # Range ignored: the whole image again
        else:
            raise OSError(f"image {image_id}: the image service answered {status} when resuming at {offset}")
        length = None if self._length is None else self._length - offset
        yield from WindowBody(body, skip, length, on_bytes=self._on_app_bytes, what=f"image {image_id}")

    def close(self) -> None:
        self._reader.close()
        if self._app_body is not None:
            quiet_close(self._app_body)


class WindowBody:
    """``length`` bytes of an app's body after its first ``skip`` (None: all the rest).

    For an app that answered a Range with the whole image: the client still
    gets exactly the part it was promised, or a visibly broken transfer when
    the body ends too early.  ``on_bytes`` counts what the app sent.
    """

    def __init__(
        self,
        body: Iterable[bytes],
        skip: int,
        length: int | None,
        *,
        on_bytes: Count = _nothing,
        what: str = "the body",
    ) -> None:
        self._body = body
        self._skip = skip
        self._length = length
        self._on_bytes = on_bytes
        self._what = what

    def __iter__(self) -> Iterator[bytes]:
        skip, remaining = self._skip, self._length
        if remaining == 0:
            return
        for received in self._body:
            self._on_bytes(len(received))
            chunk = received
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
            raise OSError(f"{self._what}: the image service's data ended {remaining} bytes early")

    def close(self) -> None:
        quiet_close(self._body)


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return ""
