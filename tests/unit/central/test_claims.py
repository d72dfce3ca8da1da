"""Many nodes claiming one image's origin read at once: PostgreSQL lets exactly one win.

Each claimant is a node of its own (a driver with its own ``node_url``),
from threads of one process or from processes of their own, started
together on a barrier.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import uuid
from pathlib import Path
from typing import Any

from imagecache.cache.drivers.central import CentralDriver
from imagecache.cache.layout import CacheLayout

from .pg import central_settings, set_last_seen

#: Seconds a claimant may take before the test calls it a hang.
DEADLINE = 60


def _node(db_url: str, root: Path, name: str) -> CentralDriver:
    layout = CacheLayout(str(root / name))
    layout.ensure()
    driver = CentralDriver(layout, central_settings(db_url, layout, node_url=f"http://{name}:9292"))
    driver.configure()
    driver.heartbeat()
    return driver


def _claim_in_threads(drivers: list[CentralDriver], image_id: str) -> list[str]:
    """Every driver claims ``image_id`` at once; the URLs of the winners."""
    barrier = threading.Barrier(len(drivers))
    won: list[str] = []

    def claim(driver: CentralDriver) -> None:
        barrier.wait(DEADLINE)
        if driver.claim_cluster_fill(image_id):
            won.append(driver.node_url)

    threads = [threading.Thread(target=claim, args=(driver,)) for driver in drivers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    assert not any(thread.is_alive() for thread in threads)
    return won


def test_one_winner_among_threads_of_many_nodes(db_url, tmp_path: Path) -> None:
    drivers = [_node(db_url, tmp_path, f"t{n}") for n in range(12)]
    try:
        for _ in range(5):
            image_id = str(uuid.uuid4())
            won = _claim_in_threads(drivers, image_id)
            assert len(won) == 1
            loser = next(d for d in drivers if d.node_url != won[0])
            assert loser.peer_sources(image_id) == []  # claiming is not filling: the winner starts its fill
    finally:
        for driver in drivers:
            driver.close()


def test_one_winner_when_many_take_over_a_stale_claim_at_once(db_url, tmp_path: Path) -> None:
    drivers = [_node(db_url, tmp_path, f"s{n}") for n in range(9)]
    gone = _node(db_url, tmp_path, "gone")
    image_id = str(uuid.uuid4())
    try:
        assert gone.claim_cluster_fill(image_id)
        set_last_seen(db_url, gone.node_url, 10 * gone.stale_after)
        won = _claim_in_threads(drivers, image_id)
        assert len(won) == 1
        assert gone.claim_cluster_fill(image_id) is False
    finally:
        for driver in [*drivers, gone]:
            driver.close()


def _claim_in_process(db_url: str, root: str, name: str, image_ids: list[str], barrier: Any, results: Any) -> None:
    driver = _node(db_url, Path(root), name)
    order = list(image_ids)
    random.Random(name).shuffle(order)  # each in an order of its own
    barrier.wait(DEADLINE)
    results.put((name, [image_id for image_id in order if driver.claim_cluster_fill(image_id)]))
    driver.close()


def test_one_winner_per_image_among_processes(db_url, tmp_path: Path) -> None:
    image_ids = [str(uuid.uuid4()) for _ in range(20)]
    names = [f"p{n}" for n in range(6)]
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(len(names))
    results = context.Queue()
    processes = [
        context.Process(target=_claim_in_process, args=(db_url, str(tmp_path), name, image_ids, barrier, results))
        for name in names
    ]
    for process in processes:
        process.start()
    won = dict(results.get(timeout=DEADLINE) for _ in processes)
    for process in processes:
        process.join(DEADLINE)
        assert process.exitcode == 0
    winners = [image_id for claimed in won.values() for image_id in claimed]
    assert sorted(winners) == sorted(image_ids)  # each image exactly once
