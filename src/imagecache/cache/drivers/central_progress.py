"""Fills' progress, recorded in the central index on a thread of its own.

A fill reports its progress after every chunk it writes, on the fill's own
thread; peers only need a rough figure (it orders them, most bytes first).
So :class:`ProgressWriter` keeps the latest figure per image and writes it
from one background thread per process, at most once per ``interval`` per
image: the fill's call costs a dict update under a lock, and a slow or
unreachable database delays only the figures, never the fill.  A failing
write is logged once until writes succeed again, not once a second.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable

LOG = logging.getLogger(__name__)

#: Seconds between two writes of one image's progress.
PROGRESS_INTERVAL = 1.0
#: Longest :meth:`ProgressWriter.forget` waits for a write of the image already under way.
FORGET_WAIT = 10.0

#: write(image_id, expected size or None, bytes on disk)
WriteProgress = Callable[[str, "int | None", int], None]


class _State:
    """Everything one process's writer shares with its thread (a forked child starts afresh)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.cond = threading.Condition()
        self.pending: dict[str, int] = {}  # image -> latest bytes not yet written
        self.sizes: dict[str, int | None] = {}  # image -> expected size, from started()
        self.last: dict[str, float] = {}  # image -> monotonic time of its last write
        self.writing: str | None = None
        self.thread: threading.Thread | None = None
        self.closed = False
        self.failing = False


class ProgressWriter:
    """The latest progress of each fill, written at most once per ``interval`` per image."""

    def __init__(self, write: WriteProgress, *, interval: float = PROGRESS_INTERVAL) -> None:
        self._write = write
        self.interval = interval
        self._state = _State()
        #: Writes made so far (how tests see the throttle).
        self.writes = 0

    def _current(self) -> _State:
        state = self._state
        if state.pid != os.getpid():
            # After a fork the parent's thread does not exist here and its lock may be held: start afresh.
            state = self._state = _State()
        return state

    def started(self, image_id: str, size: int | None) -> None:
        """The fill's row was just written: its first progress is due an interval from now."""
        state = self._current()
        with state.cond:
            state.pending.pop(image_id, None)
            state.sizes[image_id] = size
            state.last[image_id] = time.monotonic()

    def note(self, image_id: str, nbytes: int) -> None:
        """``nbytes`` of the fill are on disk; returns at once."""
        state = self._current()
        with state.cond:
            if state.closed:
                return
            already = image_id in state.pending
            state.pending[image_id] = nbytes
            if state.thread is None:
                state.thread = threading.Thread(
                    target=self._run, args=(state,), name="imagecache-fill-progress", daemon=True
                )
                state.thread.start()
            if not already:  # else the thread already waits for this image's turn: no wake-up per chunk
                state.cond.notify_all()

    def forget(self, image_id: str) -> None:
        """The fill ended: write nothing more for it, and wait (briefly) for a write of it under way.

        After this returns no write of this fill can land on the row of the
        image's next fill.
        """
        state = self._current()
        with state.cond:
            state.pending.pop(image_id, None)
            state.sizes.pop(image_id, None)
            state.last.pop(image_id, None)
            if not state.cond.wait_for(lambda: state.writing != image_id, timeout=FORGET_WAIT):
                LOG.warning("the progress of the fill of image %s is still being written; going on", image_id)

    def close(self) -> None:
        """Stop the thread, dropping what is pending; the writer may be used again afterwards."""
        state = self._current()
        with state.cond:
            state.closed = True
            state.cond.notify_all()
            thread = state.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(FORGET_WAIT)
        self._state = _State()

    def _next(self, state: _State) -> tuple[str, int | None, int] | None:
        """The next write that is due (under the lock), waiting until one is; None once closed."""
        while not state.closed:
            now = time.monotonic()
            due_at = math.inf
            for image_id, nbytes in state.pending.items():
                ready = state.last.get(image_id, -math.inf) + self.interval
                if ready <= now:
                    del state.pending[image_id]
                    state.last[image_id] = now
                    state.writing = image_id
                    return image_id, state.sizes.get(image_id), nbytes
                due_at = min(due_at, ready)
            state.cond.wait(None if due_at == math.inf else due_at - now)
        return None

    def _run(self, state: _State) -> None:
        while True:
            with state.cond:
                job = self._next(state)
            if job is None:
                return
            image_id, size, nbytes = job
            try:
                self._write(image_id, size, nbytes)
            except Exception as exc:  # noqa: BLE001 - a figure for peers; the fill goes on regardless
                if not state.failing:
                    LOG.warning("could not record the progress of fills (logged once until it works): %s", exc)
                state.failing = True
            else:
                self.writes += 1
                if state.failing:
                    LOG.info("recording the progress of fills works again")
                state.failing = False
            finally:
                with state.cond:
                    state.writing = None
                    state.cond.notify_all()
