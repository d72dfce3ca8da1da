"""FileRangeBody: part of an open file as a WSGI response body.

The one body for image data read from a file, whether a cached image (the
cache's hit path) or the image service's own store.  The file was opened
before the response started, so an image evicted or deleted meanwhile is
still sent whole (unlink semantics).  ``os.pread`` reads at explicit offsets,
so nothing depends on the file's position.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import BinaryIO

__all__ = ["CHUNK_SIZE", "FileRangeBody"]

#: Largest piece read and handed to the server at once.
CHUNK_SIZE = 1 << 20


class FileRangeBody:
    """``length`` bytes of ``file`` from ``offset``, in chunks of at most ``chunk_size``.

    ``on_bytes(n)`` is called for every chunk (a metric).  ``on_complete()``
    is called once, just before the last chunk is handed to the server (right
    away for an empty body), so a client holding the whole response can
    already see its effect (a cache hit counted).  close(), which WSGI
    servers call whatever happened, closes the file.
    """

    def __init__(
        self,
        file: BinaryIO,
        offset: int,
        length: int,
        *,
        chunk_size: int = CHUNK_SIZE,
        on_bytes: Callable[[int], None] | None = None,
        on_complete: Callable[[], None] | None = None,
    ) -> None:
        if offset < 0 or length < 0 or chunk_size <= 0:
            raise ValueError(f"not a file range: offset {offset}, length {length}, chunks of {chunk_size}")
        self._file = file
        self._offset = offset
        self._length = length
        self._chunk_size = chunk_size
        self._on_bytes = on_bytes
        self._on_complete = on_complete
        self._completed = False

    def __iter__(self) -> Iterator[bytes]:
        fd = self._file.fileno()
        position, remaining = self._offset, self._length
        if remaining == 0:
            self.complete()
        while remaining > 0:
            data = os.pread(fd, min(self._chunk_size, remaining), position)
            if not data:
                raise OSError(f"file ended {remaining} bytes early")
            position += len(data)
            remaining -= len(data)
            self.on_bytes(len(data))
            if remaining == 0:
                self.complete()
            yield data

    # -- for a server that sends the range itself (sendfile) ---------------------
    def sendfile_source(self) -> tuple[int, int, int] | None:
        """(descriptor, offset, length) for a server that sends the bytes itself.

        Such a server calls :meth:`on_bytes` for what it sends, :meth:`complete`
        before the last piece and :meth:`close` at the end, as iteration would.
        """
        try:
            return self._file.fileno(), self._offset, self._length
        except (OSError, ValueError):
            return None

    def on_bytes(self, n: int) -> None:
        if self._on_bytes is not None:
            self._on_bytes(n)

    def complete(self) -> None:
        """Run ``on_complete`` once (before the last piece is handed on)."""
        if not self._completed:
            self._completed = True
            if self._on_complete is not None:
                self._on_complete()

    def close(self) -> None:
        self._file.close()
