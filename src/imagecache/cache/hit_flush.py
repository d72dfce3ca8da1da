"""Writing a process's hits to the index once per interval, in one transaction.

:class:`HitFlusher` collects hits in a :class:`~imagecache.cache.hit_batch.HitBatch`
and writes them with :meth:`~imagecache.cache.drivers.base.Driver.record_hits`
from a daemon thread, started at the first hit (so building a cache, as the
gunicorn master does before forking, starts no thread).  Counts in the index
are therefore eventually consistent: at most one interval behind, per process.
Whoever reads counts or the LRU order in this process flushes first
(:meth:`HitFlusher.flush`), so it sees its own hits.

Failures never reach a download: a batch that cannot be written is logged
in one line and kept for the next try (bounded by the batch's size), and
the recovery is logged too.  Interval 0 writes every hit through, as before
batching; so does a closed flusher, for a hit that ends after the cache was
closed (a stream finishing while a worker exits) must not be lost.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from imagecache.cache.hit_batch import Batch, HitBatch

LOG = logging.getLogger(__name__)
#: Seconds :meth:`HitFlusher.close` waits for a flush in progress on the thread.
JOIN_TIMEOUT = 30.0


class HitFlusher:
    """One process's hits on their way to the index, every ``interval`` seconds (0: at once).

    ``write`` applies a batch in one transaction (the cache's current driver's ``record_hits``).
    """

    def __init__(self, write: Callable[[Batch], None], interval: float) -> None:
        self._write = write
        self.interval = interval
        self._batch = HitBatch()
        self._flush_lock = threading.Lock()  # one flush at a time: a reader's flush sees the thread's
        self._start_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._closed = False
        self._failing = False

    def record(self, image_id: str, when: float) -> None:
        """Count one hit; written through (and raising) when the interval is 0 or the flusher closed."""
        if self.interval <= 0 or self._closed:
            self._write({image_id: (1, when)})
            return
        self._running()
        self._batch.add(image_id, when)
        if self._closed:  # closed meanwhile: its last flush may have missed this hit
            self.flush()

    def flush(self) -> bool:
        """Write what is pending now in one transaction; False (logged, kept) when the index failed."""
        with self._flush_lock:
            batch = self._batch.drain()
            if not batch:
                return True
            try:
                self._write(batch)
            except Exception as exc:  # noqa: BLE001 - the index must not fail a download
                self._batch.put_back(batch)
                if not self._failing:
                    LOG.warning("could not write the hit counts of %d images (kept for the next try): %s",
                                len(batch), exc)
                self._failing = True
                return False
            if self._failing:
                LOG.info("hit counts written again%s",
                         f"; {self._batch.dropped} hits were dropped meanwhile" if self._batch.dropped else "")
                self._failing, self._batch.dropped = False, 0
            return True

    def close(self) -> None:
        """Stop the thread and write what is left; later hits are written through."""
        self._closed = True
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and self._pid == os.getpid():
            thread.join(JOIN_TIMEOUT)
        self.flush()

    def _running(self) -> None:
        """Start the thread if this process has none (a forked child has not its parent's)."""
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._start_lock:
            if self._pid != os.getpid():
                # The parent writes its own pending hits; copied here they would count twice.
                self._pid, self._thread = os.getpid(), None
                self._batch, self._flush_lock = HitBatch(), threading.Lock()
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="imagecache-hits", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()
