"""The pruner: least recently used images go first, until the cache fits its limit."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from imagecache import ImageCache, Settings
from imagecache.jobs import CacheApp, Pruner
from imagecache.jobs.pruner import PruneResult

SIZE = 100_000


def put(cache: ImageCache, seed: str) -> str:
    image_id = str(uuid.uuid4())
    data = (hashlib.sha256(seed.encode()).digest() * (SIZE // 32 + 1))[:SIZE]
    assert cache.cache_image_iter(image_id, [data], hashlib.md5(data).hexdigest())
    return image_id


def hit(cache: ImageCache, image_id: str) -> None:
    with cache.open_for_read(image_id) as fh:
        fh.read()


@pytest.fixture
def three(cache: ImageCache, clock) -> dict[str, str]:
    """a, b, c cached one second apart; then a is read, so the LRU order is b, c, a."""
    ids = {}
    for name in "abc":
        ids[name] = put(cache, name)
        clock.advance(1)
    hit(cache, ids["a"])
    return ids


def pruner_with_limit(settings: Settings, limit: int) -> Pruner:
    """A pruner over the same cache dir with a lower limit, as ``imagecache prune --image-cache-max-size``."""
    return Pruner(settings.replace(image_cache_max_size=limit))


def test_within_the_limit_nothing_is_pruned(cache, three) -> None:
    assert Pruner(cache=cache).run() == PruneResult(files=0, bytes=0)
    assert all(cache.is_cached(image_id) for image_id in three.values())


def test_the_least_recently_used_goes_first(settings, cache, three) -> None:
    with pruner_with_limit(settings, 2 * SIZE) as pruner:
        assert pruner.run() == (1, SIZE)
    assert not cache.is_cached(three["b"])
    assert cache.is_cached(three["c"]) and cache.is_cached(three["a"])


def test_a_hit_protects_an_old_image(settings, cache, three) -> None:
    with pruner_with_limit(settings, SIZE) as pruner:
        assert pruner.run() == PruneResult(files=2, bytes=2 * SIZE)
    assert [r.image_id for r in cache.get_cached_images()] == [three["a"]]


def test_pruning_to_zero_empties_the_cache(settings, cache, three) -> None:
    with pruner_with_limit(settings, 0) as pruner:
        assert pruner.run() == (3, 3 * SIZE)
    assert cache.get_cached_images() == [] and cache.get_cache_size() == 0


def test_a_second_run_has_nothing_left_to_do(settings, three) -> None:
    with pruner_with_limit(settings, SIZE) as pruner:
        pruner.run()
        assert pruner.run() == (0, 0)


def test_the_pruner_is_a_cache_app(cache) -> None:
    assert isinstance(Pruner(cache=cache), CacheApp)
