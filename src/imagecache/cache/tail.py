"""Readers of a growing image file: :class:`TailReader`, in any thread or process.

A reader tells a live fill by the writer's lock, completion by the writer's
done mark (``VERIFIED_MODE``), a verification failure by the rename to
``invalid/<id>``, and a writer that stopped otherwise by the lock released
with neither (see :mod:`imagecache.cache.flight` for the whole protocol).
It never hands out an image's last byte before the image is verified and
indexed, and holds a shared lock on ``incomplete/<id>.readers`` while it
reads, so the fill knows someone is.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import logging
import os
import stat
import time
from collections.abc import Callable, Iterator

from imagecache.cache.errors import FillFailed, ImageVerificationError
from imagecache.cache.fill import VERIFIED_MODE, open_if_locked
from imagecache.cache.layout import CacheLayout, names_open_file
from imagecache.cache.progress import ProgressWatch, Watch

LOG = logging.getLogger(__name__)

READ_CHUNK = 1 << 20
#: Reader back-off while the writer has nothing new: short enough that a
#: follower keeps up with a fast fill, long enough to cost nothing.
POLL_MIN = 0.002
POLL_MAX = 0.05
#: With a progress watch, the longest a reader waits without an event
#: before it looks anyway (a safety net; events normally come first).
WATCH_TIMEOUT = 0.25
READERS_SUFFIX = ".readers"


class Edge(enum.Enum):
    """Why :meth:`TailReader.next_run` has no run to hand out."""

    WAIT = "wait"  # the writer is still at it: ask again once the file changes
    HANDOFF = "handoff"  # the fill is over, or cannot be waited for here: go on with pieces()


class _State(enum.Enum):
    FILLING = "filling"
    VERIFIED = "verified"  # published and indexed: the writer says so
    PUBLISHED = "published"  # at <id> with the writer gone (it could not say so)
    INVALID = "invalid"
    GONE = "gone"


def readers_path(layout: CacheLayout, image_id: str) -> str:
    return layout.incomplete_path(image_id) + READERS_SUFFIX


class ReaderMark:
    """A shared lock on the image's readers file: "someone still wants this fill"."""

    def __init__(self, path: str) -> None:
        self._fd: int | None = None
        for _ in range(5):
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            fcntl.flock(fd, fcntl.LOCK_SH)
            if names_open_file(path, fd):
                self._fd = fd
                return
            os.close(fd)  # removed by a finishing fill while we locked it: use the new one

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


class TailReader:
    """Streams an image's incomplete file as it grows, until it is verified.

    Iterating yields the bytes; it ends normally only once the writer has
    verified the file (and every byte was read), raises ImageVerificationError when
    the file was moved to ``invalid/`` and FillFailed when the writer stopped
    otherwise.  Always close() it (WSGI servers close response bodies).
    """

    def __init__(
        self, layout: CacheLayout, image_id: str, fd: int, size: int | None, mark: ReaderMark,
        watch: Watch | None = None,
    ) -> None:
        self.layout = layout
        self.image_id = image_id
        self.size = size
        self.offset = 0
        self._fd = fd
        self._mark = mark
        #: Wakes this reader when the writer makes progress (else it polls).
        self._watch = watch
        self._seen = 0  # the watch's mark when next_run() last looked
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        for offset, length in self.pieces():
            yield from self.read(offset, length)

    def read(self, offset: int, length: int) -> Iterator[bytes]:
        """The bytes of a run :meth:`pieces` handed out, in chunks of at most READ_CHUNK."""
        position, stop = offset, offset + length
        while position < stop:
            data = os.pread(self._fd, min(READ_CHUNK, stop - position), position)
            if not data:
                raise FillFailed(self.image_id, position, "the incomplete file shrank")
            position += len(data)
            yield data

    def pieces(self) -> Iterator[tuple[int, int]]:
        """The file as runs of (offset, length) that may be sent now, in order.

        For a server that sends the bytes itself (``sendfile`` on
        :attr:`fd`): each run is on disk, and the image's last byte comes only
        once the image is published.  Ends and raises exactly as iteration
        does; a run counts as sent once the next one is asked for.
        """
        complete = False
        delay = POLL_MIN
        while True:
            seen = self._watch.mark() if self._watch is not None else 0
            on_disk = os.fstat(self._fd).st_size
            if self.size is not None:
                # Hold the last byte back until the writer has published the image.
                end = min(on_disk, self.size if complete else self.size - 1)
                if complete and self.offset >= self.size:
                    return
            else:
                end = on_disk
            if end > self.offset:
                run = (self.offset, end - self.offset)
                self.offset = end
                delay = POLL_MIN
                yield run
                continue
            if complete:
                if self.size is not None and self.offset < self.size:
                    raise FillFailed(self.image_id, self.offset, "the verified file is shorter than the image")
                return
            state = self._state()
            if state in (_State.PUBLISHED, _State.VERIFIED):
                complete = True
                continue
            if state is _State.INVALID:
                raise ImageVerificationError(f"image {self.image_id} failed verification while being cached")
            if state is _State.GONE:
                adopted = self._adopt_published()
                if adopted is None:  # published by another fill that is still indexing it
                    time.sleep(delay)
                    delay = min(delay * 2, POLL_MAX)
                    continue
                if adopted:
                    complete = True
                    continue
                raise FillFailed(self.image_id, self.offset, "the writer stopped without publishing")
            if self._watch is not None:
                self._watch.wait(seen, WATCH_TIMEOUT)  # until the file changes
            else:
                time.sleep(delay)
                delay = min(delay * 2, POLL_MAX)

    def next_run(self) -> tuple[int, int] | Edge:
        """:meth:`pieces` without waiting, for an event loop: the next run on disk, or why there is none.

        Only what needs no waiting is handed out here: the image's last byte,
        the end of the fill (published, invalid, failed) and a reader with no
        size or no progress watch are :attr:`Edge.HANDOFF`, for :meth:`pieces`
        to finish on a thread, where it may block.  A run
        counts as sent once the next one is asked for, as in :meth:`pieces`.
        """
        if self.size is None or self._watch is None:
            return Edge.HANDOFF
        self._seen = self._watch.mark()
        end = min(os.fstat(self._fd).st_size, self.size - 1)
        if end > self.offset:
            run = (self.offset, end - self.offset)
            self.offset = end
            return run
        # Still filling (or verifying, with every byte but the last on disk): wait for the next change.
        return Edge.WAIT if self._state() is _State.FILLING else Edge.HANDOFF

    def call_on_change(self, callback: Callable[[], None]) -> bool:
        """After :attr:`Edge.WAIT`: ``callback()`` (on another thread) once the file changes.

        False when it changed already since :meth:`next_run` looked: ask again now.
        """
        assert self._watch is not None, "next_run() hands off readers without a watch"
        return self._watch.call_on_change(self._seen, callback)

    @property
    def fd(self) -> int:
        """The incomplete file, open for reading (for :meth:`pieces`)."""
        return self._fd

    def _state(self) -> _State:
        if stat.S_IMODE(os.fstat(self._fd).st_mode) == VERIFIED_MODE:
            return _State.VERIFIED
        if self._names_me(self.layout.invalid_path(self.image_id)):
            return _State.INVALID
        try:
            fcntl.flock(self._fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _State.FILLING  # still writing, or renamed and being indexed
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        # The writer renames before it lets go of the lock: look at where it put the file.
        if self._names_me(self.layout.path(self.image_id)):
            return _State.PUBLISHED
        if self._names_me(self.layout.invalid_path(self.image_id)):
            return _State.INVALID
        return _State.GONE

    def _adopt_published(self) -> bool | None:
        """Carry on from the image's published file, if another fill published it; None: not indexed yet.

        The file followed can stop without being published while the image
        is published all the same: a writer that died while another fill
        finished, or the empty file a losing claimant creates and unlinks
        in the instant after a publish (see ``FillWriter.acquire``), which a
        follower may open and find locked.  The published file is verified;
        its last byte waits, as ever, until the image is in the index (its
        writer's done mark, or that writer gone).
        """
        try:
            fd = os.open(self.layout.path(self.image_id), os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return False
        facts = os.fstat(fd)
        if (self.size is not None and facts.st_size != self.size) or facts.st_size < self.offset:
            os.close(fd)
            return False
        if stat.S_IMODE(facts.st_mode) != VERIFIED_MODE:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None  # its writer still holds it: indexing
            fcntl.flock(fd, fcntl.LOCK_UN)
        LOG.debug("following the published file of image %s from byte %d", self.image_id, self.offset)
        old, self._fd = self._fd, fd
        os.close(old)
        return True

    def _names_me(self, path: str) -> bool:
        return names_open_file(path, self._fd)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._mark.release()
            if self._watch is not None:
                self._watch.close()
            with contextlib.suppress(OSError):
                os.close(self._fd)


def watch_of(progress: ProgressWatch | None, path: str) -> Watch | None:
    if progress is None:
        return None
    try:
        return progress.watch(path)
    except Exception:  # a reader without a watch polls, which is only slower
        LOG.debug("cannot watch %s; polling instead", path, exc_info=True)
        return None


def open_reader(
    layout: CacheLayout, image_id: str, size: int | None, progress: ProgressWatch | None = None
) -> TailReader | None:
    """A reader of the fill in progress for ``image_id``, or None when there is none."""
    path = layout.incomplete_path(image_id)
    fd = open_if_locked(path)
    if fd is None:
        return None  # no writer (or it just finished): nothing to follow
    try:
        mark = ReaderMark(readers_path(layout, image_id))
    except OSError:
        os.close(fd)
        raise
    return TailReader(layout, image_id, fd, size, mark, watch_of(progress, path))
