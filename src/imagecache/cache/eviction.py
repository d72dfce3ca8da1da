"""Pure selection of what to evict: policy as data, no I/O.

Pinned images are ``protect``-ed: never selected.  An incoming image that
is pinned itself may push the cache past ``image_cache_max_size`` (the
operator asked for it to be kept), never below ``image_cache_min_free``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple


class Shortfall(NamedTuple):
    """What an incoming image would break: bytes past the size limit, bytes into the free-space floor."""

    over_limit: int
    under_free: int


def select_victims(
    lru_order: Iterable[tuple[str, int]], bytes_needed: int, protect: frozenset[str] = frozenset()
) -> list[str] | None:
    """The shortest least-recently-used prefix that frees ``bytes_needed``.

    ``lru_order`` yields (image_id, size), least recently used first; ids in
    ``protect`` are skipped.  Returns [] when nothing is needed and None when
    even evicting everything would not free enough (then evict nothing).
    """
    if bytes_needed <= 0:
        return []
    victims: list[str] = []
    freed = 0
    for image_id, size in lru_order:
        if image_id in protect:
            continue
        victims.append(image_id)
        freed += size
        if freed >= bytes_needed:
            return victims
    return None


def room_for(
    lru_order: Iterable[tuple[str, int]],
    shortfall: Shortfall,
    protect: frozenset[str] = frozenset(),
    *,
    pinned: bool = False,
) -> list[str] | None:
    """What to evict, least recently used first, so an incoming image fits; None: it cannot.

    An ordinary image needs both limits met, or nothing is evicted.  A
    ``pinned`` one needs only the free-space floor: when the unprotected
    images cannot make up ``over_limit``, every one of them goes (pinned
    images alone then exceed the limit, and nothing else may stay).
    """
    needed = max(shortfall.over_limit, shortfall.under_free, 0)
    if needed == 0:
        return []
    victims: list[str] = []
    freed = 0
    for image_id, size in lru_order:
        if image_id in protect:
            continue
        victims.append(image_id)
        freed += size
        if freed >= needed:
            return victims
    return victims if pinned and freed >= shortfall.under_free else None


def shortfall(*, cache_size: int, incoming: int, max_size: int, disk_free: int, min_free: int) -> Shortfall:
    """What ``incoming`` more bytes would break; ``disk_free`` is measured before they are written."""
    return Shortfall(over_limit=cache_size + incoming - max_size, under_free=min_free - (disk_free - incoming))


def bytes_to_free(*, cache_size: int, incoming: int, max_size: int, disk_free: int, min_free: int) -> int:
    """Bytes the cache must evict so that ``incoming`` more bytes fit both limits.

    ``disk_free`` is measured before the incoming bytes are written, so they are
    counted against it too.
    """
    over_limit, under_free = shortfall(cache_size=cache_size, incoming=incoming, max_size=max_size,
                                       disk_free=disk_free, min_free=min_free)
    return max(over_limit, under_free, 0)
