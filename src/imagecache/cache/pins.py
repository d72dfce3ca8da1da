"""Pinned images: kept in the cache whatever the LRU says.

A pin is "keep this image cached on this node": a pinned image in the cache
is never evicted, neither to make room for another image nor by the pruner,
and an image pinned before it is cached is cached whole even when pinned
images alone then exceed ``image_cache_max_size`` (``image_cache_min_free``
is never given up).  Deleting a pinned image's copy (an operator's delete or
clear) leaves the pin: the next download or pre-warm caches it again.

When pinned images alone exceed the limit, the cache holds nothing else and
cannot honour the limit.  That is said loudly, once per change of state
across every process sharing the cache directory (a marker file created or
removed exclusively decides which process speaks), and shown by the
listing and the ``imagecache_pinned_over_limit`` gauge.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from imagecache.cache.drivers.base import MANUAL, PIN_SOURCES, PREWARM
from imagecache.cache.layout import validate_image_id

if TYPE_CHECKING:
    from imagecache.cache.drivers.base import Driver
    from imagecache.cache.layout import CacheLayout
    from imagecache.config import Settings

__all__ = ["MANUAL", "PIN_SOURCES", "PREWARM", "CachePins", "Pin", "PinState", "pin_state"]

LOG = logging.getLogger(__name__)

#: Exists while pinned images alone exceed the limit (hidden: scans skip names that are no image id).
OVER_LIMIT_MARK = ".pins-over-limit"


@dataclass(frozen=True)
class Pin:
    """One pinned image: who pinned it, and its size in the cache (None: not cached)."""

    image_id: str
    by: str
    size: int | None

    @property
    def cached(self) -> bool:
        return self.size is not None


@dataclass(frozen=True)
class PinState:
    """What the pins amount to, against the size limit."""

    pinned: int  # pins, cached or not
    cached: int  # pinned images in the cache
    bytes: int  # the bytes of those
    max_size: int

    @property
    def over_limit(self) -> bool:
        """Pinned images alone hold more than ``image_cache_max_size``."""
        return self.bytes > self.max_size


def pin_state(pins: Iterable[Pin], max_size: int) -> PinState:
    """The state of ``pins`` under ``max_size`` (pure)."""
    listed = list(pins)
    sizes = [pin.size for pin in listed if pin.size is not None]
    return PinState(pinned=len(listed), cached=len(sizes), bytes=sum(sizes), max_size=max_size)


class PinParts(Protocol):
    """What the pins use of their cache (read at each use: the driver may be replaced)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def layout(self) -> CacheLayout: ...

    @property
    def driver(self) -> Driver: ...


class CachePins:
    """``ImageCache.pins``: pin and unpin, what is pinned, and the word when pins alone exceed the limit."""

    def __init__(self, cache: PinParts) -> None:
        self._cache = cache

    def pin(self, image_id: str, by: str = MANUAL) -> bool:
        """Pin ``image_id`` (cached or not); True when it was not pinned before."""
        if by not in PIN_SOURCES:
            raise ValueError(f"a pin is set by one of {', '.join(PIN_SOURCES)}, not {by!r}")
        added = self._cache.driver.pin(validate_image_id(image_id), by)
        if added:
            LOG.info("pinned image %s (%s)", image_id, by)
        self.check()
        return added

    def unpin(self, image_id: str) -> bool:
        """Unpin ``image_id``: an ordinary LRU entry again.  True if it was pinned."""
        removed = self._cache.driver.unpin(validate_image_id(image_id))
        if removed:
            LOG.info("unpinned image %s", image_id)
            self.check()
        return removed

    def is_pinned(self, image_id: str) -> bool:
        return validate_image_id(image_id) in self._cache.driver.pins()

    def ids(self) -> frozenset[str]:
        """The pinned ids (what eviction must skip)."""
        return frozenset(self._cache.driver.pins())

    def list(self) -> list[Pin]:
        """Every pin, by id, with the size of its cached file (None when not cached)."""
        layout = self._cache.layout
        found = []
        for image_id, by in sorted(self._cache.driver.pins().items()):
            facts = layout.stat(image_id)
            found.append(Pin(image_id, by, facts.size if facts else None))
        return found

    def state(self) -> PinState:
        return pin_state(self.list(), self._cache.settings.image_cache_max_size)

    def check(self, *, restate: bool = False) -> PinState:
        """The state, announced loudly when it changed (once across every process of the cache dir).

        ``restate``: say it even if it did not change (a node starting over the limit).
        """
        state = self.state()
        mark = os.path.join(self._cache.layout.root, OVER_LIMIT_MARK)
        try:
            changed = _mark(mark, state.over_limit)
        except OSError as exc:  # the cache dir is unusable: say it every time rather than never
            LOG.debug("cannot keep %s: %s", mark, exc)
            changed = state.over_limit
        if (changed or restate) and state.over_limit:
            LOG.error(
                "PINNED IMAGES ALONE EXCEED THE CACHE LIMIT: %d pinned images hold %d bytes, "
                "image_cache_max_size is %d. Nothing else can be cached until images are unpinned "
                "(imagecache manage unpin ID) or the limit is raised.",
                state.cached, state.bytes, state.max_size,
            )
        elif changed:
            LOG.warning("pinned images fit in the cache limit again (%d of %d bytes)", state.bytes, state.max_size)
        return state


def _mark(path: str, present: bool) -> bool:
    """Make the marker file exist (or not); True when this call changed it."""
    if not present:
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        return True
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        return False
    os.close(fd)
    return True
