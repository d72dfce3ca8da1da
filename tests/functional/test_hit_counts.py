"""Hit counts batched in each worker's memory survive a restart, and a crash costs one interval at most.

Real servers (two workers each) on loopback; the counts are read from the
sqlite index on disk, so no worker flushes anything by being asked.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import pytest

from tests.support.waiting import wait_until

from .conftest import STOP_TIMEOUT, RunningServer, ServerFactory
from .test_cache_http import cache_listing, create

#: Hits per test: enough to land on both workers, few enough to stay quick.
HITS = 20
DATA = os.urandom(64 << 10)


def index_hits(data_dir: Path, image_id: str) -> int | None:
    """The image's count in the sqlite index on disk (None: no row yet), read as another process would."""
    database = data_dir / "image-cache" / "cache.db"
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        row = connection.execute("SELECT hits FROM cached_images WHERE image_id = ?", (image_id,)).fetchone()
    finally:
        connection.close()
    return None if row is None else int(row[0])


def cached_image(node: RunningServer) -> str:
    """An image uploaded, downloaded once and in the index (with no hit yet)."""
    image_id = create(node, "admin", DATA)
    assert node.request("GET", f"/v2/images/{image_id}/file").body == DATA
    wait_until(lambda: index_hits(node.data_dir, image_id) is not None, "the image in the index",
               describe=node.logs)
    return image_id


def hit(node: RunningServer, image_id: str, times: int) -> None:
    for _ in range(times):
        answer = node.request("GET", f"/v2/images/{image_id}/file")
        assert answer.status == 200 and answer.body == DATA


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["graceful", "quick"])
def test_a_restart_keeps_every_hit(server_factory: ServerFactory, stop: signal.Signals) -> None:
    # An hour between flushes: only the workers' exit writes the hits (gunicorn's worker_exit, after
    # SIGTERM's graceful stop and after the SIGQUIT a quick stop sends the workers).
    settings = {"image_cache_hit_flush_interval": 3600}
    node = server_factory.start(settings=settings)
    image_id = cached_image(node)
    hit(node, image_id, HITS)
    node.process.popen.send_signal(stop)  # type: ignore[union-attr]
    node.process.popen.wait(STOP_TIMEOUT)  # type: ignore[union-attr]
    assert index_hits(node.data_dir, image_id) == HITS
    again = server_factory.start(settings=settings, data_dir=node.data_dir)
    assert cache_listing(again)[image_id]["hits"] == HITS


def test_a_killed_server_loses_at_most_the_hits_of_one_interval(server_factory: ServerFactory) -> None:
    settings = {"image_cache_hit_flush_interval": 1}
    node = server_factory.start(settings=settings)
    image_id = cached_image(node)
    hit(node, image_id, HITS)
    # Both workers' flushers run within a second: every hit so far reaches the index without asking.
    def flushed() -> int | None:
        found = index_hits(node.data_dir, image_id) or 0
        return found if found >= HITS else None

    written = wait_until(flushed, f"{HITS} hits written by the workers' flushes",
                         describe=lambda: index_hits(node.data_dir, image_id))
    hit(node, image_id, 5)
    os.killpg(node.process.pid, signal.SIGKILL)  # no worker_exit: what is still in memory is lost
    node.process.stop()
    again = server_factory.start(settings=settings, data_dir=node.data_dir)
    assert written <= cache_listing(again)[image_id]["hits"] <= HITS + 5
