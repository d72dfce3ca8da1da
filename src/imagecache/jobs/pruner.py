"""The pruner: bring the cache back under ``image_cache_max_size``.

Fills already make room before they publish, so the cache stays within its
limit at rest; the pruner finishes the job when the limit was lowered (a new
setting, a ``--image-cache-max-size`` given to ``imagecache prune``) or when
a fill could not evict enough.  Least recently used images go first
(Glance's ``glance-cache-pruner``); the selection is :mod:`imagecache.cache.eviction`'s.
"""

from __future__ import annotations

from typing import NamedTuple

from imagecache.jobs.base import CacheApp


class PruneResult(NamedTuple):
    files: int
    bytes: int


class Pruner(CacheApp):
    """Evicts least recently used images until the cache fits its size limit."""

    def run(self) -> PruneResult:
        """Prune once: (files evicted, bytes evicted)."""
        return PruneResult(*self.cache.prune())
