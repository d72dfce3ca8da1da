"""Wake the readers of a fill when its file changes, instead of letting them poll.

A follower that has caught up with the writer used to sleep (2 ms doubling
to 50 ms) and look again: a hundred followers of one fill meant thousands
of wake-ups a second for nothing, and up to 50 ms of lag each time the
writer got ahead.  Here one inotify descriptor per process watches the
incomplete files being read; a thread turns its events (data written, mode
changed, file closed, moved or removed) into a wake-up of exactly the
readers of that file.  The writer needs to do nothing: the kernel reports
its writes, the "done" mark (a mode change) and its death (its close).

Where inotify is missing or fails, :meth:`ProgressWatch.watch` returns None
and readers poll as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import select
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

LOG = logging.getLogger(__name__)

# <sys/inotify.h>
IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVE_SELF = 0x800
IN_DELETE_SELF = 0x400
IN_IGNORED = 0x8000
IN_CLOEXEC = 0o2000000
IN_NONBLOCK = 0o4000
#: How often the thread looks whether it should stop.
STOP_CHECK_SECONDS = 1.0
WATCHED = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVE_SELF | IN_DELETE_SELF
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len (then len bytes of name)


@dataclass
class _Entry:
    condition: threading.Condition
    users: int = 1
    generation: int = 0
    #: Called once, on the watch's thread, at the next change (an event loop's wake-up).
    callbacks: list[Callable[[], None]] = field(default_factory=list)


class Watch:
    """One reader's view of one file's changes."""

    def __init__(self, owner: ProgressWatch, wd: int, entry: _Entry) -> None:
        self._owner = owner
        self._wd = wd
        self._entry = entry
        self._closed = False

    def mark(self) -> int:
        """Take before looking at the file; :meth:`wait` then returns on any change since."""
        with self._entry.condition:
            return self._entry.generation

    def wait(self, mark: int, timeout: float) -> bool:
        """Until the file changed after ``mark``, or ``timeout``; True if it changed."""
        entry = self._entry
        with entry.condition:
            return entry.condition.wait_for(lambda: entry.generation != mark, timeout)

    def call_on_change(self, mark: int, callback: Callable[[], None]) -> bool:
        """Have ``callback()`` called once at the first change after ``mark``; False if it came already.

        For an event loop, which cannot block in :meth:`wait`: the callback
        runs on the watch's thread, so it should only hand work to the loop.
        """
        entry = self._entry
        with entry.condition:
            if entry.generation != mark:
                return False
            entry.callbacks.append(callback)
            return True

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._owner._release(self._wd)


class ProgressWatch:
    """A process's inotify watches on the files its readers follow (started on first use)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._libc: ctypes.CDLL | None = None
        self._entries: dict[int, _Entry] = {}
        self._failed = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, path: str) -> Watch | None:
        """A watch on ``path``, or None when inotify cannot be used (the caller polls)."""
        with self._lock:
            if not self._start():
                return None
            assert self._libc is not None and self._fd is not None
            wd = self._libc.inotify_add_watch(self._fd, os.fsencode(path), WATCHED)
            if wd < 0:
                return None  # e.g. the file is already gone, or the watch limit is reached: poll
            entry = self._entries.get(wd)
            if entry is None:
                entry = self._entries[wd] = _Entry(threading.Condition(threading.Lock()))
            else:
                entry.users += 1
            return Watch(self, wd, entry)

    def _start(self) -> bool:
        if self._fd is not None:
            return True
        if self._failed:
            return False
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            fd = libc.inotify_init1(IN_CLOEXEC | IN_NONBLOCK)
        except (OSError, AttributeError):
            fd = -1
            libc = None
        if libc is not None and fd >= 0:
            libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
            libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        if fd < 0 or libc is None:
            self._failed = True
            LOG.info("inotify is not available: fill followers poll their file")
            return False
        self._libc, self._fd = libc, fd
        self._thread = threading.Thread(target=self._dispatch, args=(fd,), name="imagecache-progress", daemon=True)
        self._thread.start()
        return True

    def _release(self, wd: int) -> None:
        with self._lock:
            entry = self._entries.get(wd)
            if entry is None:
                return
            entry.users -= 1
            if entry.users == 0:
                del self._entries[wd]
                if self._libc is not None and self._fd is not None:
                    self._libc.inotify_rm_watch(self._fd, wd)

    def _dispatch(self, fd: int) -> None:
        """The thread: read events, wake the readers of each file that changed.

        It alone closes the descriptor (when asked to stop), so it never
        reads a number the process has since reused for another file.
        """
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        try:
            while not self._stopping.is_set():
                if not poller.poll(STOP_CHECK_SECONDS * 1000):
                    continue
                try:
                    data = os.read(fd, 65536)
                except (BlockingIOError, InterruptedError):
                    continue
                self._wake(_changed(data))
        except OSError:
            LOG.exception("the fill progress watch stopped; followers poll from now on")
        finally:
            os.close(fd)

    def _wake(self, changed: set[int]) -> None:
        with self._lock:
            entries = [self._entries[wd] for wd in changed if wd in self._entries]
        for entry in entries:
            with entry.condition:
                entry.generation += 1
                entry.condition.notify_all()
                callbacks, entry.callbacks = entry.callbacks, []
            for callback in callbacks:
                try:
                    callback()
                except Exception:  # one waiter's trouble must not stop the watch
                    LOG.exception("a fill progress callback failed")

    def close(self) -> None:
        """Stop the thread (it closes the descriptor within a second); readers then time out and poll."""
        with self._lock:
            self._fd = None
            self._failed = True
            self._entries.clear()
        self._stopping.set()


def _changed(data: bytes) -> set[int]:
    """The watch descriptors named by a buffer of inotify events."""
    changed: set[int] = set()
    offset = 0
    while offset + _EVENT.size <= len(data):
        wd, _mask, _cookie, name_length = _EVENT.unpack_from(data, offset)
        offset += _EVENT.size + name_length
        changed.add(wd)
    return changed
