"""Hit counts waiting to be written to the index: image id -> (hits, latest access time).

A completed download used to be one write transaction on the index (one
sqlite write lock taken across every worker, one PostgreSQL round trip for
the central index).  Counting in memory and writing the whole batch at once
(:mod:`~imagecache.cache.hit_flush`) turns N hits into one transaction.

No I/O here: adding is O(1) under a lock, draining swaps the dict out, so
a hit never waits for the index.  Two rules hold under any interleaving of
adds, drains and put-backs from any threads: every hit is in exactly one
batch (counts are conserved), and an image's time is the latest one added.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

#: image id -> (hits, latest access time), as :meth:`~imagecache.cache.drivers.base.Driver.record_hits` takes it.
Batch = dict[str, tuple[int, float]]
#: Distinct images a batch holds before new ones are dropped: bounds memory while the index
#: cannot be written (a node serves far fewer distinct images than this per outage).
MAX_IMAGES = 100_000


def merged(a: tuple[int, float], b: tuple[int, float]) -> tuple[int, float]:
    """Two tallies of one image as one: the counts add up, the later time wins."""
    return a[0] + b[0], max(a[1], b[1])


class HitBatch:
    """The hits of one process not yet written to the index; safe to share between threads."""

    def __init__(self, max_images: int = MAX_IMAGES) -> None:
        self._lock = threading.Lock()
        self._pending: Batch = {}
        self._max_images = max_images
        #: Hits dropped because the batch was full (the index stayed unwritable too long).
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, image_id: str, when: float, count: int = 1) -> None:
        """Count ``count`` hits on ``image_id`` at ``when``."""
        with self._lock:
            self._add(image_id, (count, when))

    def drain(self) -> Batch:
        """Everything counted so far; the batch starts empty again."""
        with self._lock:
            drained, self._pending = self._pending, {}
        return drained

    def put_back(self, batch: Mapping[str, tuple[int, float]]) -> None:
        """Return a drained batch that could not be written, to go with the next one."""
        with self._lock:
            for image_id, tally in batch.items():
                self._add(image_id, tally)

    def _add(self, image_id: str, tally: tuple[int, float]) -> None:
        found = self._pending.get(image_id)
        if found is not None:
            self._pending[image_id] = merged(found, tally)
        elif len(self._pending) < self._max_images:
            self._pending[image_id] = tally
        else:
            self.dropped += tally[0]
