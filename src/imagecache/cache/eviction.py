"""Pure selection of what to evict: policy as data, no I/O."""

from __future__ import annotations

from collections.abc import Iterable


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


def bytes_to_free(*, cache_size: int, incoming: int, max_size: int, disk_free: int, min_free: int) -> int:
    """Bytes the cache must evict so that ``incoming`` more bytes fit both limits.

    ``disk_free`` is measured before the incoming bytes are written, so they are
    counted against it too.
    """
    over_limit = cache_size + incoming - max_size
    under_free = min_free - (disk_free - incoming)
    return max(over_limit, under_free, 0)
