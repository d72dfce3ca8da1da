"""Write a fill's bytes back to disk while it runs, so its final fsync is short.

A miss is published only once its file is durable (fsync, then rename), and
the client's last byte waits for the publish: a client that has the whole
image can list it, delete it, find it at ``image_cache_dir/<id>``.  Left to
the kernel, a GiB of dirty pages is flushed by that one fsync (about half a
second here).  Instead the writer starts the writeback of each window as soon
as it is written, and waits for the window before the last, the streaming
pattern ``sync_file_range(2)`` was made for: the final fsync then only has
the last windows to flush, and the fill never holds more than a few windows
of dirty pages.

``sync_file_range`` is Linux's and not in :mod:`os`; it is called through
ctypes (which releases the GIL).  Where it is missing, every call here does
nothing and the final fsync does all the work, as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from collections.abc import Callable

LOG = logging.getLogger(__name__)

#: Bytes written before their writeback is started.
WINDOW = 8 << 20

# <linux/fs.h>
SYNC_FILE_RANGE_WAIT_BEFORE = 1
SYNC_FILE_RANGE_WRITE = 2
SYNC_FILE_RANGE_WAIT_AFTER = 4

SyncRange = Callable[[int, int, int, int], int]


def _load_sync_file_range() -> SyncRange | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


class Writeback:
    """Starts and paces the writeback of one file as it is appended to."""

    def __init__(self, fd: int, window: int = WINDOW, sync_range: SyncRange | None = None) -> None:
        self._fd = fd
        self._window = window
        self._sync_range = sync_range if sync_range is not None else _SYNC_FILE_RANGE
        self._started_to = 0  # writeback started for [0, _started_to)
        self._previous = 0  # start of the window whose writeback began last

    def written(self, size: int) -> None:
        """The file now holds ``size`` bytes: start whole windows, wait for the one before."""
        if self._sync_range is None or size - self._started_to < self._window:
            return
        begin, end = self._started_to, size
        if self._call(begin, end - begin, SYNC_FILE_RANGE_WRITE):
            # The window started before this one has had a window's time to land.
            self._call(self._previous, begin - self._previous,
                       SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER)
        self._previous, self._started_to = begin, end

    def _call(self, offset: int, length: int, flags: int) -> bool:
        if length <= 0 or self._sync_range is None:
            return True
        if self._sync_range(self._fd, offset, length, flags) == 0:
            return True
        err = ctypes.get_errno()
        LOG.debug("sync_file_range failed (%s); leaving writeback to the final fsync", os.strerror(err))
        self._sync_range = None  # e.g. a filesystem without it: stop trying
        return False


_SYNC_FILE_RANGE = _load_sync_file_range()
