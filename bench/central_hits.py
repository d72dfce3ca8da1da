"""The central-hits scenario: how many hits per second one PostgreSQL index takes from many workers.

``python -m bench central-hits``: PROCESSES processes (gunicorn workers of
one node, each with its own :class:`~imagecache.ImageCache` and engine on a
scratch schema) count HITS hits each on one cached image, released together
by a barrier; the clock stops when the last one has closed its cache (so the
last batch is written).  Once with hits written one by one
(``image_cache_hit_flush_interval = 0``, one round trip per hit) and once
batched (the default, 1 s).  The count must come out exact in both modes:
a wrong count is an error, not a figure.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from typing import Any

from bench.cluster import DEFAULT_DB_URL, scratch_schema
from bench.report import facts_line, machine_facts, markdown_table

#: Seconds a process may wait at the barrier or for a result before the run counts as hung.
DEADLINE = 300.0
NODE_URL = "http://central-hits.bench:9292"
#: (mode, image_cache_hit_flush_interval)
MODES = (("one transaction per hit", 0.0), ("batched (1 s)", 1.0))


@dataclass(frozen=True)
class CentralHitsConfig:
    processes: int = 8
    hits: int = 1_000
    db_url: str | None = None  # default: IMAGECACHE_BENCH_DB_URL, else the local PostgreSQL


@dataclass(frozen=True)
class ModeResult:
    mode: str
    interval: float
    hits: int
    counted: int
    wall: float

    @property
    def rate(self) -> float:
        return self.hits / self.wall if self.wall > 0 else 0.0


def _worker(db_url: str, root: str, interval: float, image_id: str, hits: int, barrier: Any, done: Any) -> None:
    from imagecache import ImageCache, Settings

    settings = Settings(data_dir=os.path.dirname(root), image_cache_dir=root, image_cache_driver="central",
                        db_url=db_url, node_url=NODE_URL, image_cache_hit_flush_interval=interval)
    cache = ImageCache(settings)
    barrier.wait(DEADLINE)
    for _ in range(hits):
        cache.record_hit(image_id)
    cache.close()
    done.put(hits)


def run_mode(db_url: str, root: str, mode: str, interval: float, config: CentralHitsConfig) -> ModeResult:
    from imagecache.cache.drivers.base import CachedImage
    from imagecache.cache.drivers.central import CentralDriver
    from imagecache.cache.layout import CacheLayout
    from imagecache.config import Settings

    layout = CacheLayout(root)
    layout.ensure()
    driver = CentralDriver(layout, Settings(image_cache_dir=root, image_cache_driver="central", db_url=db_url,
                                            node_url=NODE_URL))
    driver.configure()
    image_id = str(uuid.uuid4())
    driver.add(CachedImage(image_id, 1, 0, 1.0, 1.0))
    context = multiprocessing.get_context("spawn")  # fresh processes: no engine or thread from this one
    barrier, done = context.Barrier(config.processes + 1), context.Queue()
    workers = [context.Process(target=_worker, args=(db_url, root, interval, image_id, config.hits, barrier, done))
               for _ in range(config.processes)]
    for worker in workers:
        worker.start()
    try:
        barrier.wait(DEADLINE)
        started = time.monotonic()
        sent = sum(done.get(timeout=DEADLINE) for _ in workers)
        wall = time.monotonic() - started
    finally:
        for worker in workers:
            worker.join(DEADLINE)
    record = driver.get(image_id)
    driver.close()
    return ModeResult(mode, interval, sent, record.hits if record else 0, wall)


def run_central_hits(config: CentralHitsConfig) -> list[ModeResult]:
    base_url = config.db_url or os.environ.get("IMAGECACHE_BENCH_DB_URL") or DEFAULT_DB_URL
    with scratch_schema(base_url) as db_url, tempfile.TemporaryDirectory(prefix="central-hits-") as work:
        return [run_mode(db_url, os.path.join(work, f"mode{n}", "image-cache"), mode, interval, config)
                for n, (mode, interval) in enumerate(MODES)]


def render(results: list[ModeResult], config: CentralHitsConfig, command: str) -> str:
    rows = [[r.mode, f"{r.hits:,}", f"{r.counted:,}", f"{r.wall:.2f}", f"{r.rate:,.0f}"] for r in results]
    return "\n\n".join([
        f"## central-hits: {config.processes} processes × {config.hits:,} hits on one central-index row",
        f"`{command}` · {facts_line(machine_facts())}",
        markdown_table(["hits written", "hits", "counted", "wall s", "hits/s"], rows),
    ]) + "\n"
