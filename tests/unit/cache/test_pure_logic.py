"""Exhaustive checks of the cache's pure decisions (no I/O)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagecache.cache.errors import InvalidImageId
from imagecache.cache.eviction import Shortfall, bytes_to_free, room_for, select_victims, shortfall
from imagecache.cache.layout import validate_image_id
from imagecache.cache.pins import Pin, pin_state

entries = st.lists(st.tuples(st.uuids().map(str), st.integers(0, 10_000)), unique_by=lambda e: e[0], max_size=30)


@given(entries, st.integers(-100, 200_000), st.data())
def test_select_victims_is_the_shortest_sufficient_lru_prefix(lru, needed, data):
    protect = frozenset(data.draw(st.sets(st.sampled_from([e[0] for e in lru]))) if lru else set())
    victims = select_victims(lru, needed, protect)
    candidates = [e for e in lru if e[0] not in protect]
    if needed <= 0:
        assert victims == []
    elif sum(size for _, size in candidates) < needed:
        assert victims is None
    else:
        assert victims is not None
        assert victims == [image_id for image_id, _ in candidates[: len(victims)]]
        sizes = dict(lru)
        assert sum(sizes[v] for v in victims) >= needed
        assert sum(sizes[v] for v in victims[:-1]) < needed


@given(
    cache_size=st.integers(0, 10**6),
    incoming=st.integers(0, 10**6),
    max_size=st.integers(0, 2 * 10**6),
    disk_free=st.integers(0, 2 * 10**6),
    min_free=st.integers(0, 10**6),
)
def test_bytes_to_free_is_the_least_that_satisfies_both_limits(cache_size, incoming, max_size, disk_free, min_free):
    need = bytes_to_free(cache_size=cache_size, incoming=incoming, max_size=max_size,
                         disk_free=disk_free, min_free=min_free)
    assert need >= 0

    def ok(freed: int) -> bool:
        return cache_size - freed + incoming <= max_size and disk_free + freed - incoming >= min_free

    assert ok(need)
    if need > 0:
        assert not ok(need - 1)


@given(entries, st.integers(-100, 200_000), st.integers(-100, 200_000), st.booleans(), st.data())
def test_room_for_never_evicts_a_protected_image_and_bends_only_the_limit_for_a_pinned_one(
    lru, over_limit, under_free, pinned, data
):
    protect = frozenset(data.draw(st.sets(st.sampled_from([e[0] for e in lru]))) if lru else set())
    victims = room_for(iter(lru), Shortfall(over_limit, under_free), protect, pinned=pinned)
    candidates = [e for e in lru if e[0] not in protect]
    available = sum(size for _, size in candidates)
    needed = max(over_limit, under_free, 0)
    if victims is None:
        # Refused only when even every unprotected image would not do.
        assert available < needed
        assert not pinned or available < under_free
        return
    assert not set(victims) & protect
    assert victims == [image_id for image_id, _ in candidates[: len(victims)]]  # least recently used first
    freed = sum(dict(lru)[v] for v in victims)
    assert freed >= max(under_free, 0)  # the free-space floor is never given up
    if freed < needed:
        assert pinned and victims == [e[0] for e in candidates]  # the limit gives way: every other image goes
    else:
        assert victims == (select_victims(lru, needed, protect) or [])  # the shortest sufficient prefix


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 2 * 10**6), st.integers(0, 2 * 10**6),
       st.integers(0, 10**6))
def test_shortfall_is_what_bytes_to_free_takes_the_larger_of(cache_size, incoming, max_size, disk_free, min_free):
    facts = {"cache_size": cache_size, "incoming": incoming, "max_size": max_size, "disk_free": disk_free,
             "min_free": min_free}
    assert max(*shortfall(**facts), 0) == bytes_to_free(**facts)


@given(st.lists(st.tuples(st.uuids().map(str), st.one_of(st.none(), st.integers(0, 10**9))),
                unique_by=lambda e: e[0], max_size=20), st.integers(0, 10**10))
def test_pin_state_counts_only_cached_pins_against_the_limit(pins, max_size):
    state = pin_state([Pin(image_id, "manual", size) for image_id, size in pins], max_size)
    cached = [size for _, size in pins if size is not None]
    assert (state.pinned, state.cached, state.bytes) == (len(pins), len(cached), sum(cached))
    assert state.over_limit == (sum(cached) > max_size)


@given(st.uuids())
def test_every_uuid_is_accepted_in_canonical_form(u):
    assert validate_image_id(str(u)) == str(u)
    assert validate_image_id(str(u).upper()) == str(u)


@given(st.text(max_size=80))
def test_anything_accepted_is_a_plain_file_name(text):
    try:
        image_id = validate_image_id(text)
    except InvalidImageId as exc:
        assert isinstance(exc, ValueError) and str(exc)
        return
    assert "/" not in image_id and "." not in image_id and "\0" not in image_id
    assert str(uuid.UUID(image_id)) == image_id


@pytest.mark.parametrize("value", [None, 42, b"12345678-1234-1234-1234-123456789abc", ["x"]])
def test_non_strings_are_refused(value):
    with pytest.raises(InvalidImageId):
        validate_image_id(value)
