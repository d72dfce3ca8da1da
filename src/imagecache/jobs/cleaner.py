"""The cleaner: remove what the cache will never serve.

Two kinds of leftovers (Glance's ``glance-cache-cleaner``):

* files in ``invalid/``, which failed verification;
* files in ``incomplete/`` nobody has written for ``image_cache_stall_time``
  seconds (a worker crashed mid-fill).

A slow fill (an upstream that pauses, a client that reads slowly) can leave
its file untouched for a long time, so age alone is not enough: a file a live
writer holds (its ``flock``, see :mod:`imagecache.cache.fill`) is never
removed, however old.  The cleaner takes that lock itself before unlinking,
so no writer can start on the file between the check and the unlink.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from imagecache.cache import CHANGE_MARK_LIFETIME, CleanResult, ImageCache
from imagecache.cache.fill import remove_if_stalled
from imagecache.config import Settings
from imagecache.jobs.base import CacheApp

LOG = logging.getLogger(__name__)


class Cleaner(CacheApp):
    """Removes invalid files, and incomplete files that stalled without a live writer."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        cache: ImageCache | None = None,
        stall_time: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(settings, cache=cache)
        self.stall_time = self.settings.image_cache_stall_time if stall_time is None else stall_time
        if self.stall_time < 0:
            raise ValueError("stall_time must not be negative")
        self._clock = clock

    def run(self) -> CleanResult:
        """Clean once: (invalid files removed, stalled files removed)."""
        result = CleanResult(self.remove_invalid(), self.remove_stalled())
        self.cache.layout.forget_changes(self._clock() - CHANGE_MARK_LIFETIME)
        if result.total:
            LOG.info("cleaner: removed %d invalid and %d stalled files", *result)
        return result

    def remove_invalid(self) -> int:
        layout = self.cache.layout
        removed = 0
        for facts in list(layout.invalid()):
            if layout.remove_invalid(facts.image_id):
                removed += 1
                LOG.info("removed invalid file of image %s", facts.image_id)
        return removed

    def remove_stalled(self) -> int:
        layout = self.cache.layout
        untouched_since = self._clock() - self.stall_time
        removed = 0
        for facts in list(layout.incomplete()):
            if facts.mtime >= untouched_since:
                continue  # written recently: not worth a lock attempt
            if remove_if_stalled(layout.incomplete_path(facts.image_id), untouched_since):
                removed += 1
                LOG.info("removed stalled incomplete file of image %s", facts.image_id)
        return removed
