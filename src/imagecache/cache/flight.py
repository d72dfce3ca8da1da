"""Single-flight fills: one writer per image, any number of readers tailing it.

The first miss for an image claims its fill (the exclusive ``flock`` on
``incomplete/<id>``, see :mod:`imagecache.cache.fill`) and a background
thread copies the image from its source into that file, independently of
any client.  Every request for the image, the claimant's own included,
reads the growing file with a :class:`TailReader`, from any thread or
process.  Coordination is through the filesystem only, so it holds across
gunicorn workers:

* a reader tells a live fill by the writer's lock (a shared lock attempt
  on its own descriptor fails);
* completion is the writer marking the file done (its mode becomes
  ``VERIFIED_MODE``, seen by ``fstat`` on the reader's own descriptor) once
  it is verified, durable, renamed to ``<id>`` and in the index, or, should
  the mark fail, the lock released with the file at ``<id>``: a client that
  has the last byte finds the image cached (read-your-writes);
* a verification failure is the rename to ``invalid/<id>``: the reader
  raises :class:`ImageVerificationError` so its response is aborted;
* anything else (the writer died, the disk filled up, the fill was
  abandoned) is the lock released without either rename: the reader raises
  :class:`FillFailed` with how far it got, and its caller fetches the rest
  elsewhere.

A reader never hands out an image's last byte before it is verified, so a
client can never receive a complete-looking image that then fails
verification.  Readers hold a shared lock on ``incomplete/<id>.readers``
while they read; the fill gives up (``fill_abandon_after``) only when
nobody has held it for that long.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable

from imagecache.cache.errors import ImageVerificationError
from imagecache.cache.fill import FillWriter, remove_if_stalled
from imagecache.cache.fill_size import SIZE_SUFFIX, forget_size, record_size
from imagecache.cache.fill_source import SOURCE_SUFFIX, forget_source
from imagecache.cache.layout import CacheLayout
from imagecache.cache.progress import ProgressWatch
from imagecache.cache.tail import (
    READERS_SUFFIX,
    Edge,
    ReaderMark,
    TailReader,
    open_reader,
    readers_path,
    watch_of,
)
from imagecache.cache.verify import Expected

__all__ = ["Edge", "FillClaim", "FillResult", "TailReader", "close_source", "open_reader", "readers_path",
           "someone_reading"]

LOG = logging.getLogger(__name__)

#: How often the fill thread looks for readers (a flock attempt).
READER_CHECK_INTERVAL = 0.5


class FillResult(enum.Enum):
    COMPLETED = "completed"
    FAILED = "failed"
    ABANDONED = "abandoned"


def _held(fd: int) -> bool:
    """Whether a reader holds the readers file open as ``fd``; closes ``fd`` (dropping the probe's lock)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _anyone_reading(path: str) -> bool:
    """True when some reader (any process) holds the readers file."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return True  # cannot tell: keep filling
    return _held(fd)


def someone_reading(layout: CacheLayout, image_id: str) -> bool:
    """Whether a client (in any process) is streaming the fill of ``image_id`` right now.

    Unlike the fill's own probe it creates nothing: no readers file, no reader.
    """
    try:
        fd = os.open(readers_path(layout, image_id), os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False  # no readers file: nobody ever followed this fill
    return _held(fd)


#: write(writer, chunk, expected) -> False once the fill cannot go on (too big, disk full ...).
WriteChunk = Callable[[FillWriter, bytes, Expected], bool]
#: finish(writer, expected) -> published?  Raises ImageVerificationError on a mismatch.
FinishFill = Callable[[FillWriter, Expected], bool]


class FillClaim:
    """The right to fill one image: the writer's lock is held until start() or cancel()."""

    def __init__(
        self,
        layout: CacheLayout,
        writer: FillWriter,
        expected: Expected,
        *,
        write: WriteChunk,
        finish: FinishFill,
        on_result: Callable[[FillResult], None],
        abandon_after: float,
        progress: ProgressWatch | None = None,
        ended: Callable[[], None] | None = None,
    ) -> None:
        self.layout = layout
        self.writer = writer
        self._progress = progress
        self.image_id = writer.image_id
        #: What the image's metadata says its bytes are (its size lets readers hold the last byte back).
        self.expected = expected
        self._write = write
        self._finish = finish
        self._on_result = on_result
        self._abandon_after = abandon_after
        #: Called once the writer has let go of the image, whatever the result (the index's fill_ended).
        self._ended = ended
        # The readers file goes while the writer still holds its lock, so it
        # can never remove the readers file of the next fill of this image.
        writer.on_release = lambda: _remove_readers_file(layout, writer.image_id)
        # For readers without the image's metadata (a peer node): gone with the readers file.
        record_size(layout, writer.image_id, expected.size)
        self.thread: threading.Thread | None = None
        #: True once the finished file failed verification (it is in ``invalid/``).
        self.failed_verification = False
        self._done: list[Callable[[FillClaim, FillResult], None]] = []

    def on_done(self, callback: Callable[[FillClaim, FillResult], None]) -> None:
        """Call ``callback(claim, result)`` on the fill's thread once the fill has ended (before start()).

        For a caller that chose the fill's source and must hear how it went
        (a peer whose bytes failed verification); errors are logged, not raised.
        """
        self._done.append(callback)

    def start(self, source: Iterable[bytes]) -> TailReader:
        """Fill from ``source`` on a background thread; the claimant's own reader.

        The reader is registered before the thread starts, so the fill never
        sees a moment with nobody reading before its first client.
        """
        path = self.layout.incomplete_path(self.image_id)
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        mark = ReaderMark(readers_path(self.layout, self.image_id))
        reader = TailReader(self.layout, self.image_id, fd, self.expected.size, mark, watch_of(self._progress, path))
        self.thread = threading.Thread(
            target=self._run, args=(source,), name=f"fill-{self.image_id[:8]}", daemon=True
        )
        self.thread.start()
        return reader

    def cancel(self) -> None:
        """Give the claim up without filling (the source could not be opened)."""
        self.writer.discard()
        self._report_end()

    def _report_end(self) -> None:
        """Tell the index the fill is over: after the lock is released, before anyone hears the result."""
        ended, self._ended = self._ended, None  # once, even if cancelled twice
        if ended is not None:
            try:
                ended()
            except Exception:
                LOG.exception("could not record the end of the fill of image %s", self.image_id)

    def _run(self, source: Iterable[bytes]) -> None:
        result = FillResult.FAILED
        try:
            result = self._copy(source)
        except Exception:  # a fill thread must never die silently
            LOG.exception("the fill of image %s failed", self.image_id)
        finally:
            close_source(source)
            if result is not FillResult.COMPLETED:
                self.writer.discard()  # no-op when already published, invalidated or discarded
            # Before the callbacks: one of them may start the image's next fill at once.
            self._report_end()
            try:
                self._on_result(result)
            except Exception:
                LOG.exception("could not report the fill of image %s", self.image_id)
            for callback in self._done:
                try:
                    callback(self, result)
                except Exception:
                    LOG.exception("a callback on the end of the fill of image %s failed", self.image_id)

    def _copy(self, source: Iterable[bytes]) -> FillResult:
        marks = readers_path(self.layout, self.image_id)
        last_seen = next_check = time.monotonic()
        for chunk in source:
            if not self._write(self.writer, chunk, self.expected):
                return FillResult.FAILED  # readers fetch the rest themselves
            now = time.monotonic()
            if now >= next_check:
                next_check = now + READER_CHECK_INTERVAL
                if _anyone_reading(marks):
                    last_seen = now
                elif now - last_seen >= self._abandon_after:
                    LOG.info("abandoned the fill of image %s: nobody has been reading it for %.0f s",
                             self.image_id, now - last_seen)
                    return FillResult.ABANDONED
        try:
            published = self._finish(self.writer, self.expected)
        except ImageVerificationError:
            self.failed_verification = True
            return FillResult.FAILED  # already moved to invalid/ and logged
        return FillResult.COMPLETED if published else FillResult.FAILED


def _remove_readers_file(layout: CacheLayout, image_id: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(readers_path(layout, image_id))
    forget_size(layout, image_id)
    forget_source(layout, image_id)


#: The records a fill keeps beside its file (the size's ``.new`` is its write in progress).
SIDE_SUFFIXES = (READERS_SUFFIX, SIZE_SUFFIX, SIZE_SUFFIX + ".new", SOURCE_SUFFIX)


def remove_stalled(layout: CacheLayout, untouched_since: float) -> int:
    """Remove incomplete files untouched since ``untouched_since`` that no live writer holds: how many.

    Age alone is not enough: a slow fill (a pausing upstream) keeps its
    lock, and every client streaming it depends on the file.  The records
    of fills that are over go too (:func:`remove_leftovers`).
    """
    stalled = 0
    for facts in list(layout.incomplete()):
        if facts.mtime < untouched_since and remove_if_stalled(layout.incomplete_path(facts.image_id), untouched_since):
            stalled += 1
            LOG.info("removed stalled incomplete file of image %s", facts.image_id)
    leftovers = remove_leftovers(layout, untouched_since)
    if leftovers:
        LOG.info("removed %d record(s) left behind by fills that ended without cleaning up", leftovers)
    return stalled


def remove_leftovers(layout: CacheLayout, untouched_since: float) -> int:
    """Remove the side records of fills that are over, untouched since ``untouched_since``: how many.

    A writer removes its records when it lets go of its lock; one that
    crashed leaves them (harmless: a size record still names the right
    size, a readers file is reused), so the cleaner sweeps those whose image
    has no incomplete file.  A readers file someone still holds stays.
    """
    removed = 0
    for image_id, path, mtime in list(layout.side_files(SIDE_SUFFIXES)):
        if mtime >= untouched_since or os.path.exists(layout.incomplete_path(image_id)):
            continue
        # Under an exclusive lock, as a stalled file is removed: a reader's shared lock keeps it.
        if remove_if_stalled(path, untouched_since):
            removed += 1
    return removed


def close_source(iterable: Iterable[bytes]) -> None:
    """Close an image's source if it can be closed (WSGI bodies, generators), never raising."""
    close = getattr(iterable, "close", None)
    if close is not None:
        with contextlib.suppress(Exception):
            close()
