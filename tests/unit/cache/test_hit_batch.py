"""Hits counted in memory (cache/hit_batch.py): counts conserved, the latest time wins, memory bounded."""

from __future__ import annotations

import threading
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from imagecache.cache.hit_batch import Batch, HitBatch, merged

IDS = st.sampled_from(["a", "b", "c", "d"])
TIMES = st.floats(min_value=0, max_value=1e10, allow_nan=False)
#: An add (image id, time), a drain (None), or a failed write that puts the last drain back ("back").
OPS = st.lists(st.one_of(st.tuples(IDS, TIMES), st.none(), st.just("back")), max_size=200)


def _totals(batches: list[Batch]) -> tuple[Counter[str], dict[str, float]]:
    counts: Counter[str] = Counter()
    latest: dict[str, float] = {}
    for batch in batches:
        for image_id, (count, when) in batch.items():
            counts[image_id] += count
            latest[image_id] = max(latest.get(image_id, when), when)
    return counts, latest


@given(OPS)
def test_every_hit_is_in_exactly_one_batch_and_the_latest_time_wins(ops) -> None:
    batch = HitBatch()
    written: list[Batch] = []
    adds: Counter[str] = Counter()
    added_latest: dict[str, float] = {}
    for op in ops:
        if op is None:
            written.append(batch.drain())
        elif op == "back":
            if written:
                batch.put_back(written.pop())
        else:
            image_id, when = op
            batch.add(image_id, when)
            adds[image_id] += 1
            added_latest[image_id] = max(added_latest.get(image_id, when), when)
    written.append(batch.drain())
    counts, latest = _totals(written)
    assert counts == adds
    assert latest == added_latest
    assert len(batch) == 0 and batch.dropped == 0


@given(st.tuples(st.integers(0, 10**6), TIMES), st.tuples(st.integers(0, 10**6), TIMES))
def test_merging_adds_counts_keeps_the_later_time_and_does_not_care_about_order(a, b) -> None:
    assert merged(a, b) == merged(b, a) == (a[0] + b[0], max(a[1], b[1]))


@given(st.lists(st.tuples(st.integers(0, 20).map(str), TIMES), max_size=100), st.integers(1, 10))
def test_a_full_batch_drops_new_images_and_says_how_many_hits(adds, limit) -> None:
    batch = HitBatch(max_images=limit)
    for image_id, when in adds:
        batch.add(image_id, when)
    kept = batch.drain()
    assert len(kept) <= limit
    assert sum(count for count, _ in kept.values()) + batch.dropped == len(adds)


def test_threads_adding_while_another_drains_lose_no_hit() -> None:
    batch = HitBatch()
    writers, per_writer = 4, 5_000
    drained: list[Batch] = []
    done = threading.Event()

    def drain() -> None:
        while not done.is_set():
            drained.append(batch.drain())
        drained.append(batch.drain())

    def add(n: int) -> None:
        for k in range(per_writer):
            batch.add(f"image-{k % 3}", float(n * per_writer + k))

    drainer = threading.Thread(target=drain)
    drainer.start()
    threads = [threading.Thread(target=add, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    drainer.join()
    counts, latest = _totals(drained)
    assert sum(counts.values()) == writers * per_writer
    assert max(latest.values()) == float(writers * per_writer - 1)
