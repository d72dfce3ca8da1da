"""Many processes counting hits at once: none lost, no deadlock, and how fast.

Each process is a worker of a node: its own driver, engine and connections,
like a gunicorn worker after the fork.  They start together on a barrier
and hammer ``record_hit`` (or, through a cache, batch their hits and close);
the totals must be exact.
"""

from __future__ import annotations

import multiprocessing
import random
import time
import uuid
from pathlib import Path
from typing import Any

from imagecache import ImageCache
from imagecache.cache.drivers.base import CachedImage
from imagecache.cache.drivers.central import CentralDriver
from imagecache.cache.layout import CacheLayout

from .pg import central_settings

#: Seconds a hammering process may take before the test calls it a hang.
DEADLINE = 60


def _driver(db_url: str, root: str, node_url: str) -> CentralDriver:
    layout = CacheLayout(root)
    layout.ensure()
    driver = CentralDriver(layout, central_settings(db_url, layout, node_url=node_url))
    driver.configure()
    return driver


def _hammer(db_url: str, root: str, node_url: str, image_ids: list[str], hits: int, seed: int,
            barrier: Any, results: Any) -> None:
    """One worker: ``hits`` hits over ``image_ids`` in an order of its own; reports (hits, seconds)."""
    driver = _driver(db_url, root, node_url)
    order = [image_ids[n % len(image_ids)] for n in range(hits)]
    random.Random(seed).shuffle(order)
    barrier.wait(DEADLINE)
    started = time.monotonic()
    for n, image_id in enumerate(order):
        driver.record_hit(image_id, 1_000.0 + n)
    results.put((hits, time.monotonic() - started))
    driver.close()


def released_together(target: Any, arguments: list[tuple[Any, ...]]) -> tuple[list[Any], float]:
    """One forked process per ``arguments`` running ``target(*arguments, barrier, results)``, released at once.

    Each puts one result on ``results``; returns them and the wall seconds from release to the last one.
    """
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(len(arguments) + 1), context.Queue()
    processes = [context.Process(target=target, args=(*args, barrier, results)) for args in arguments]
    for process in processes:
        process.start()
    barrier.wait(DEADLINE)
    started = time.monotonic()
    done = [results.get(timeout=DEADLINE) for _ in processes]
    wall = time.monotonic() - started
    for process in processes:
        process.join(DEADLINE)
        assert process.exitcode == 0
    return done, wall


def run_workers(db_url: str, tmp_path: Path, plan: list[tuple[str, list[str], int]]) -> tuple[int, float]:
    """Run one process per (node_url, image_ids, hits) at once; (total hits, wall seconds)."""
    done, wall = released_together(_hammer, [
        (db_url, str(tmp_path / node_url.split("//")[1].replace(":", "_")), node_url, ids, hits, seed)
        for seed, (node_url, ids, hits) in enumerate(plan)
    ])
    return sum(hits for hits, _ in done), wall


def test_eight_workers_of_one_node_on_one_image_lose_no_hit(make_driver, db_url, tmp_path) -> None:
    node = make_driver("http://busy:9292")
    image_id = str(uuid.uuid4())
    node.add(CachedImage(image_id, 10, 0, 1.0, 1.0))
    total, wall = run_workers(db_url, tmp_path, [("http://busy:9292", [image_id], 150)] * 8)
    got = node.get(image_id)
    assert got.hits == total == 1200
    assert got.last_accessed == 1_000.0 + 149  # the latest hit wins, whatever the order
    print(f"\n8 processes x 150 hits on one row: {total / wall:.0f} hits/s ({wall:.2f} s)")


def test_workers_of_several_nodes_on_several_images_in_any_order(make_driver, db_url, tmp_path) -> None:
    images = [str(uuid.uuid4()) for _ in range(3)]
    node_urls = [f"http://n{k}:9292" for k in range(4)]
    for url in node_urls:
        driver = make_driver(url)
        for image_id in images:
            driver.add(CachedImage(image_id, 10, 0, 1.0, 1.0))
    # Two workers per node, each going through the three images in its own shuffled order.
    plan = [(url, images, 90) for url in node_urls for _ in range(2)]
    total, wall = run_workers(db_url, tmp_path, plan)
    assert total == 720
    for url in node_urls:
        driver = make_driver(url)
        assert [driver.get(image_id).hits for image_id in images] == [60, 60, 60]
    print(f"\n4 nodes x 2 processes x 90 hits over 3 rows each: {total / wall:.0f} hits/s ({wall:.2f} s)")


# -- hits through the cache: batched in memory, written once per interval ---------------------------


def _hit_through_cache(db_url: str, root: str, node_url: str, image_id: str, hits: int,
                       barrier: Any, results: Any) -> None:
    """One worker's cache: ``hits`` hits batched in memory, written by its flusher and at close."""
    layout = CacheLayout(root)
    cache = ImageCache(central_settings(db_url, layout, node_url=node_url))
    barrier.wait(DEADLINE)
    started = time.monotonic()
    for _ in range(hits):
        cache.record_hit(image_id)
    cache.close()  # the last batch, as a worker's exit writes it
    results.put((hits, time.monotonic() - started))


def test_eight_caches_batching_hits_on_one_image_count_every_one(make_driver, db_url, tmp_path) -> None:
    node_url, image_id, processes, hits = "http://batched:9292", str(uuid.uuid4()), 8, 1_000
    make_driver(node_url).add(CachedImage(image_id, 10, 0, 1.0, 1.0))
    done, wall = released_together(_hit_through_cache,
                                   [(db_url, str(tmp_path / "cache"), node_url, image_id, hits)] * processes)
    assert make_driver(node_url).get(image_id).hits == sum(n for n, _ in done) == processes * hits
    print(f"\n{processes} caches x {hits} batched hits on one row: {processes * hits / wall:.0f} hits/s ({wall:.2f} s)")
