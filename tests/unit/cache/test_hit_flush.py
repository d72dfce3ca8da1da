"""Hits written once per interval (cache/hit_flush.py), and the cache flushing before it reads counts."""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing

from imagecache.cache.hit_batch import Batch
from imagecache.cache.hit_flush import HitFlusher
from tests.support.waiting import wait_until

from .conftest import cache_it, make_image

#: Longer than any test: only a flush the test asks for (or close) writes.
NEVER = 3600.0


class Index:
    """What a driver's record_hits receives; ``failing`` makes it refuse like a database that is down."""

    def __init__(self) -> None:
        self.writes: list[Batch] = []
        self.failing = False

    def write(self, batch: Batch) -> None:
        if self.failing:
            raise OSError("connection refused")
        self.writes.append(dict(batch))

    def hits(self, image_id: str) -> int:
        return sum(batch[image_id][0] for batch in self.writes if image_id in batch)


def test_interval_zero_writes_every_hit_at_once() -> None:
    index = Index()
    flusher = HitFlusher(index.write, 0)
    flusher.record("a", 1.0)
    flusher.record("a", 2.0)
    assert index.writes == [{"a": (1, 1.0)}, {"a": (1, 2.0)}]
    flusher.close()


def test_a_flush_writes_the_whole_batch_in_one_call() -> None:
    index = Index()
    flusher = HitFlusher(index.write, NEVER)
    for when in (3.0, 1.0, 2.0):
        flusher.record("a", when)
    flusher.record("b", 5.0)
    assert index.writes == []
    assert flusher.flush() is True
    assert index.writes == [{"a": (3, 3.0), "b": (1, 5.0)}]
    assert flusher.flush() is True and len(index.writes) == 1  # nothing pending: no write
    flusher.close()


def test_the_thread_flushes_within_the_interval() -> None:
    index = Index()
    flusher = HitFlusher(index.write, 0.05)
    for _ in range(10):
        flusher.record("a", 1.0)
    wait_until(lambda: index.hits("a") == 10, "the thread's flush", describe=lambda: index.writes)
    flusher.close()


def test_a_failed_flush_is_logged_once_keeps_the_counts_and_never_raises(caplog) -> None:
    index = Index()
    flusher = HitFlusher(index.write, NEVER)
    index.failing = True
    with caplog.at_level(logging.INFO, logger="imagecache.cache.hit_flush"):
        flusher.record("a", 1.0)
        assert flusher.flush() is False
        flusher.record("a", 2.0)
        assert flusher.flush() is False
        failures = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(failures) == 1 and "connection refused" in failures[0].getMessage()
        assert "\n" not in failures[0].getMessage() and failures[0].exc_info is None
        index.failing = False
        assert flusher.flush() is True
    assert index.writes == [{"a": (2, 2.0)}]
    assert any("written again" in r.getMessage() for r in caplog.records)
    flusher.close()


def test_close_writes_what_is_pending_and_later_hits_go_straight_through() -> None:
    index = Index()
    flusher = HitFlusher(index.write, NEVER)
    flusher.record("a", 1.0)
    flusher.close()
    assert index.writes == [{"a": (1, 1.0)}]
    flusher.record("a", 2.0)  # a stream that ended after its worker closed the cache
    assert index.writes == [{"a": (1, 1.0)}, {"a": (1, 2.0)}]


# -- the cache flushes before it reads counts or the LRU order -------------------------------------


def test_a_listing_sees_this_processes_hits_at_once(make_cache) -> None:
    cache = make_cache(image_cache_hit_flush_interval=NEVER)
    image = make_image()
    cache_it(cache, image)
    for _ in range(3):
        cache.record_hit(image.image_id)
    assert cache.driver.get(image.image_id).hits == 0  # still in memory
    assert [r.hits for r in cache.get_cached_images()] == [3]
    cache.record_hit(image.image_id)
    assert cache.get_hit_count(image.image_id) == 4


def test_closing_the_cache_writes_its_hits(make_cache) -> None:
    cache = make_cache(image_cache_hit_flush_interval=NEVER)
    image = make_image()
    cache_it(cache, image)
    for _ in range(5):
        cache.record_hit(image.image_id)
    cache.close()
    reopened = make_cache()
    assert reopened.get_hit_count(image.image_id) == 5


def _two_images_the_older_hit_last(cache, clock):
    older, newer = make_image(100_000), make_image(100_000)
    for image in (older, newer):
        clock.advance(10)
        cache_it(cache, image)
    clock.advance(10)
    cache.record_hit(older.image_id)  # now the most recently used, though not written yet
    return older, newer


def test_prune_evicts_by_the_latest_hits_even_before_they_were_written(make_cache, clock) -> None:
    cache = make_cache(image_cache_hit_flush_interval=NEVER)
    older, newer = _two_images_the_older_hit_last(cache, clock)
    cache.settings = dataclasses.replace(cache.settings, image_cache_max_size=150_000)
    assert cache.prune() == (1, 100_000)
    assert cache.is_cached(older.image_id) and not cache.is_cached(newer.image_id)


def test_eviction_at_publish_goes_by_the_latest_hits_too(make_cache, clock) -> None:
    cache = make_cache(image_cache_hit_flush_interval=NEVER, image_cache_max_size=250_000)
    older, newer = _two_images_the_older_hit_last(cache, clock)
    third = make_image(100_000)
    assert cache_it(cache, third) is True
    assert cache.is_cached(older.image_id) and not cache.is_cached(newer.image_id)


def test_a_failing_index_never_fails_a_hit(make_cache, caplog) -> None:
    cache = make_cache(image_cache_hit_flush_interval=NEVER)
    image = make_image()
    cache_it(cache, image)

    def down(batch: Batch) -> None:
        raise OSError("database is down")

    cache.driver.record_hits = down  # type: ignore[method-assign]  # an index that cannot be written
    cache.record_hit(image.image_id)
    assert cache.get_cached_images()[0].hits == 0  # the listing still answers
    assert "database is down" in caplog.text


def test_a_forked_child_writes_its_own_hits_never_its_parents(make_cache) -> None:
    cache = make_cache(image_cache_hit_flush_interval=NEVER)
    image = make_image()
    cache_it(cache, image)
    for _ in range(3):
        cache.record_hit(image.image_id)  # pending in the parent when it forks (as gunicorn's master never is)

    def child() -> None:
        cache.record_hit(image.image_id)
        cache.close()

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(60)
    assert process.exitcode == 0
    assert cache.driver.get(image.image_id).hits == 1  # the child's one hit, not the parent's three again
    assert cache.get_hit_count(image.image_id) == 4


def test_the_hit_path_writes_nothing_until_the_flush(make_cache) -> None:
    cache = make_cache(image_cache_hit_flush_interval=NEVER)
    image = make_image()
    cache_it(cache, image)
    writes: list[Batch] = []
    record_hits = cache.driver.record_hits

    def counting(batch: Batch) -> None:
        writes.append(dict(batch))
        record_hits(batch)

    cache.driver.record_hits = counting  # type: ignore[method-assign]  # counts the index's write transactions
    for _ in range(5):
        assert cache.get_cached_image(image.image_id) is not None  # what the filter reads on every hit
        cache.record_hit(image.image_id)
    assert writes == []
    assert cache.get_hit_count(image.image_id) == 5 and len(writes) == 1
