"""One writer per image: the incomplete file, its lock, its hashes.

Each digest the image's :class:`~imagecache.cache.verify_plan.VerifyPlan`
asks for is computed on a thread of its own, so the copy and the hashing
overlap; every way a writer ends (:meth:`FillWriter.close`) stops them.

A :class:`FillWriter` owns ``incomplete/<id>`` while holding an exclusive
``flock`` on it.  flock locks belong to the open file description, so they
exclude other threads as well as other processes, and the kernel drops them
when the holder dies: a crashed writer never blocks the next one, and anyone
can tell a live fill (locked) from a stalled one (unlocked).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from imagecache.cache.hashing import ThreadedHash
from imagecache.cache.layout import CacheLayout, names_open_file
from imagecache.cache.verify import Digest
from imagecache.cache.verify_plan import VerifyPlan
from imagecache.cache.writeback import Writeback

if TYPE_CHECKING:
    from imagecache.metrics import NotStoredReason

_ACQUIRE_ATTEMPTS = 5
#: An incomplete file's mode while it is being written (O_CREAT's umask can
#: only take bits away, so a new file can never look verified) ...
FILLING_MODE = 0o600
#: ... and once it is published and indexed: readers see the change with
#: fstat on their own descriptor, with no path involved, and only then hand
#: out the image's last byte.  The published file keeps it.
VERIFIED_MODE = 0o644


class FillWriter:
    """Writes and hashes one image's bytes into its incomplete file."""

    def __init__(self, layout: CacheLayout, image_id: str, fd: int, plan: VerifyPlan) -> None:
        self.layout = layout
        self.image_id = image_id
        self.fd = fd
        self.size = 0
        #: What this fill's bytes are checked against, and how.
        self.plan = plan
        self._hashes = tuple(ThreadedHash(algo) for algo in plan.algos)
        self._writeback = Writeback(fd)
        self._closed = False
        #: Called once, just before the lock is released (whatever the outcome).
        self.on_release: Callable[[], None] | None = None
        #: Why this fill will not be stored, once the pipeline has decided it (for the metrics).
        self.not_stored: NotStoredReason | None = None
        #: Bytes past which the pipeline stops keeping this fill (None: no limit but the disk's).
        self.limit: int | None = None

    @classmethod
    def acquire(cls, layout: CacheLayout, image_id: str, plan: VerifyPlan) -> FillWriter | None:
        """The writer for ``image_id``, or None when it is cached or being cached.

        The dance: open (creating) the incomplete path, take the lock without
        waiting, then make sure the path still names the inode we locked (the
        previous holder may have renamed it into place or to ``invalid/``
        between our open and our lock).
        """
        path = layout.incomplete_path(image_id)
        for _ in range(_ACQUIRE_ATTEMPTS):
            if layout.exists(image_id):
                return None
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILLING_MODE)
            except PermissionError:
                # Left unwritable by someone else; unlink it only if no writer is on it.
                if is_locked(path):
                    return None
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            if not names_open_file(path, fd):
                os.close(fd)
                continue
            mine = os.fstat(fd)
            if layout.exists(image_id):  # published while we were locking
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                os.close(fd)
                return None
            if mine.st_size > 0:
                # A crashed writer's file: readers may still hold it open and
                # must see it die (lock free, never published), not refill.
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                os.close(fd)
                continue
            os.fchmod(fd, FILLING_MODE)  # an empty file reused from a crash may have any mode
            return cls(layout, image_id, fd, plan)
        return None

    def write(self, chunk: bytes) -> None:
        """Append and hash ``chunk``; OSError (disk full, ...) propagates."""
        view = memoryview(chunk)
        while view:
            written = os.write(self.fd, view)
            if written <= 0:  # pragma: no cover - os.write raises instead
                raise OSError(errno.EIO, "short write")
            view = view[written:]
        for digest in self._hashes:
            digest.update(chunk)
        self.size += len(chunk)
        self._writeback.written(self.size)

    def digest(self) -> Digest:
        """What was written: waits for every hashing thread to finish its queue."""
        return Digest(self.size, {digest.name: digest.hexdigest() for digest in self._hashes})

    def sync(self) -> None:
        """Make the bytes durable (short: the writeback ran along the fill)."""
        os.fsync(self.fd)

    def publish(self) -> None:
        """Rename the synced file into the cache; the lock is kept until close()."""
        self.layout.publish(self.image_id)

    def mark_verified(self) -> None:
        """Tell every reader the image is published and indexed: they may finish."""
        os.fchmod(self.fd, VERIFIED_MODE)

    def invalidate(self) -> None:
        """Move the file to ``invalid/`` and release it."""
        try:
            self.layout.invalidate(self.image_id)
        finally:
            self.close()

    def discard(self) -> None:
        """Remove the partial file and release it (best effort: never raises)."""
        if not self._closed:
            with contextlib.suppress(OSError):
                if self._path_is_mine():
                    os.unlink(self.layout.incomplete_path(self.image_id))
        self.close()

    def _path_is_mine(self) -> bool:
        return names_open_file(self.layout.incomplete_path(self.image_id), self.fd)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            for digest in self._hashes:
                digest.cancel()  # a no-op for those digest() already finished
            if self.on_release is not None:
                with contextlib.suppress(Exception):
                    self.on_release()
            with contextlib.suppress(OSError):
                os.close(self.fd)


def open_if_locked(path: str) -> int | None:
    """A read-only descriptor of ``path`` while a live writer holds its lock, else None.

    The probe is a shared lock attempt, released at once when it succeeds
    (no writer); the caller owns the descriptor it gets.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return fd  # a live writer holds it
    os.close(fd)  # closing also drops the shared lock we just took
    return None


def is_locked(path: str) -> bool:
    """True when a live writer holds the lock on ``path``."""
    fd = open_if_locked(path)
    if fd is None:
        return False
    os.close(fd)
    return True


def remove_if_stalled(path: str, untouched_since: float) -> bool:
    """Unlink ``path`` if nothing wrote it since ``untouched_since`` and no writer holds it.

    The file is locked the way a writer locks it (exclusive, non-blocking)
    and unlinked under that lock.  A writer that opened it just before then
    finds the path gone or naming another file, and starts afresh
    (:meth:`FillWriter.acquire` checks exactly that).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live writer holds it
        if not names_open_file(path, fd):
            return False  # replaced since we opened it: someone else's file now
        if os.fstat(fd).st_mtime >= untouched_since:
            return False
        os.unlink(path)
        return True
    finally:
        os.close(fd)  # releases the lock
