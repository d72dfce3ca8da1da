"""Pinned images in the cache: never evicted, cached past the limit, and said so when they alone exceed it.

Every test runs on each local driver (sqlite, xattr); the central driver
keeps the same contract (tests/unit/cache/test_driver_contract.py) and is
driven through a cache in tests/unit/central/test_pins_central.py.
"""

from __future__ import annotations

import logging
import os

import pytest

from imagecache import ImageCache
from imagecache.cache.pins import OVER_LIMIT_MARK, PinState

from .conftest import Image, cache_it, make_image

SIZE = 100_000


def cached(cache: ImageCache) -> set[str]:
    return {record.image_id for record in cache.get_cached_images()}


def fill_in_order(cache: ImageCache, clock, count: int) -> list[Image]:
    """``count`` images cached one second apart: the first is the least recently used."""
    images = []
    for n in range(count):
        image = make_image(SIZE, seed=n)
        assert cache_it(cache, image)
        images.append(image)
        clock.advance(1)
    return images


def test_a_pinned_image_survives_the_eviction_that_makes_room_for_another(make_cache, clock) -> None:
    cache = make_cache(image_cache_max_size=3 * SIZE)
    oldest, *_ = fill_in_order(cache, clock, 3)
    cache.pins.pin(oldest.image_id)
    big = make_image(2 * SIZE)
    assert cache_it(cache, big)
    # Two images' room was needed: the pinned one is skipped, the next two go.
    assert cached(cache) == {oldest.image_id, big.image_id}
    assert cache.get_cache_size() == 3 * SIZE


def test_a_pinned_image_survives_the_pruner_under_a_limit_that_evicts_everything_else(
    make_cache, clock, caplog
) -> None:
    cache = make_cache(image_cache_max_size=3 * SIZE)
    images = fill_in_order(cache, clock, 3)
    cache.pins.pin(images[1].image_id)
    lowered = make_cache(image_cache_max_size=SIZE // 2)  # the same directory, a limit below the pinned image
    with caplog.at_level(logging.WARNING, logger="imagecache.cache.pins"):
        assert lowered.prune() == (2, 2 * SIZE)
        assert lowered.prune() == (0, 0)
    assert cached(lowered) == {images[1].image_id}
    assert lowered.pins.state() == PinState(pinned=1, cached=1, bytes=SIZE, max_size=SIZE // 2)
    assert lowered.pins.state().over_limit
    # Loudly, and once: a second prune over the same state says nothing more.
    assert caplog.text.count("PINNED IMAGES ALONE EXCEED THE CACHE LIMIT") == 1


def test_while_pinned_images_alone_exceed_the_limit_nothing_else_is_cached(make_cache, clock) -> None:
    cache = make_cache(image_cache_max_size=SIZE)
    pinned = make_image(SIZE, seed="p")
    cache.pins.pin(pinned.image_id)
    assert cache_it(cache, pinned)
    other = make_image(SIZE // 10)
    assert not cache_it(cache, other)  # no room: the stream went on, nothing was kept
    assert cached(cache) == {pinned.image_id}


def test_an_image_pinned_before_it_is_cached_is_cached_past_the_limit(make_cache, clock, caplog) -> None:
    cache = make_cache(image_cache_max_size=2 * SIZE)
    ordinary = fill_in_order(cache, clock, 2)
    wanted = make_image(3 * SIZE)  # larger than the whole cache
    cache.pins.pin(wanted.image_id)
    assert cache.get_cached_image(wanted.image_id) is None  # a pin is not a copy
    with caplog.at_level(logging.ERROR, logger="imagecache.cache.pins"):
        assert cache_it(cache, wanted)
    assert cached(cache) == {wanted.image_id}  # everything else went to make what room there was
    assert all(not cache.is_cached(image.image_id) for image in ordinary)
    assert "PINNED IMAGES ALONE EXCEED THE CACHE LIMIT" in caplog.text
    assert os.path.exists(os.path.join(cache.layout.root, OVER_LIMIT_MARK))


def test_a_pinned_image_never_eats_into_the_free_space_floor(make_cache, clock) -> None:
    cache = make_cache(image_cache_max_size=10 * SIZE)
    whole_disk = cache.layout.disk_usage().total
    floor = make_cache(image_cache_max_size=10 * SIZE, image_cache_min_free=whole_disk)  # not one byte to spare
    image = make_image(SIZE)
    floor.pins.pin(image.image_id)
    assert not cache_it(floor, image)
    assert not floor.is_cached(image.image_id)


def test_unpinning_makes_an_ordinary_lru_entry_again_and_says_the_limit_holds(make_cache, clock, caplog) -> None:
    cache = make_cache(image_cache_max_size=SIZE)
    image = make_image(2 * SIZE)
    cache.pins.pin(image.image_id)
    assert cache_it(cache, image)
    assert cache.pins.state().over_limit
    with caplog.at_level(logging.WARNING, logger="imagecache.cache.pins"):
        assert cache.pins.unpin(image.image_id) is True
        assert cache.pins.unpin(image.image_id) is False
    assert "pinned images fit in the cache limit again" in caplog.text
    assert cache.prune() == (1, 2 * SIZE)
    assert cached(cache) == set()


def test_deleting_a_pinned_copy_keeps_the_pin_so_the_next_fill_keeps_it_again(make_cache, clock) -> None:
    cache = make_cache(image_cache_max_size=3 * SIZE)
    image = make_image(SIZE)
    cache.pins.pin(image.image_id)
    assert cache_it(cache, image)
    assert cache.delete_all_cached_images() == 1
    assert cache.pins.ids() == {image.image_id}
    assert [(pin.image_id, pin.cached) for pin in cache.pins.list()] == [(image.image_id, False)]
    assert cache_it(cache, image)
    fill_in_order(cache, clock, 3)  # room for the newcomers comes from the others, never from the pinned one
    assert cache.is_cached(image.image_id)


def test_a_node_starting_over_its_limit_says_so_again(make_cache, clock, caplog) -> None:
    cache = make_cache(image_cache_max_size=SIZE)
    image = make_image(2 * SIZE)
    cache.pins.pin(image.image_id)
    assert cache_it(cache, image)
    with caplog.at_level(logging.ERROR, logger="imagecache.cache.pins"):
        restarted = make_cache(image_cache_max_size=SIZE)
        restarted.reconcile()
    assert "PINNED IMAGES ALONE EXCEED THE CACHE LIMIT" in caplog.text


def test_a_pin_needs_a_known_source_and_an_image_id(cache) -> None:
    with pytest.raises(ValueError, match="a pin is set by one of manual, prewarm"):
        cache.pins.pin(make_image(1).image_id, "someone")
    with pytest.raises(ValueError, match="not a UUID"):
        cache.pins.pin("../etc/passwd")


def test_pins_that_cannot_be_read_mean_nothing_is_cached_and_nothing_evicted(make_cache, clock) -> None:
    cache = make_cache(image_cache_max_size=2 * SIZE)
    kept = fill_in_order(cache, clock, 2)

    def broken() -> dict[str, str]:
        raise OSError("the pins are unreadable")

    cache.driver.pins = broken  # type: ignore[method-assign]  # a failing index, as a disk error would make it
    newcomer = make_image(SIZE)
    assert not cache_it(cache, newcomer)
    assert cached(cache) == {image.image_id for image in kept}
