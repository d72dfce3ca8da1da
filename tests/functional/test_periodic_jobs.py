"""The cleaner, pruner and prefetcher on their timers inside a real server (2 workers)."""

from __future__ import annotations

import os
from pathlib import Path

from imagecache import ImageCache, Settings
from tests.support.waiting import wait_until

from .test_cache_http import cache_listing, create, wait_cached


def test_the_jobs_run_on_their_own(start_server):
    server = start_server(
        auth="tokens",
        settings={"prefetcher_interval": 0.5, "cleaner_interval": 0.5, "pruner_interval": 0.5},
    )
    data = os.urandom(300_000)
    image_id = create(server, "alice", data)
    # Queued behind the server's back (as a restart leaves what it interrupted):
    # only the periodic prefetcher can pick it up, the API's queueing fetches at once.
    left_queued = ImageCache(Settings(image_cache_dir=os.path.join(server.data_dir, "image-cache")))
    assert left_queued.queue_image(image_id)
    left_queued.close()
    wait_until(lambda: image_id in cache_listing(server), "the periodic prefetcher to cache the queued image",
               describe=server.logs)
    hit = server.request("GET", f"/v2/images/{image_id}/file", user="alice")
    assert hit.body == data and cache_listing(server)[image_id]["hits"] == 1
    # An invalid file is removed by the periodic cleaner.
    junk = Path(server.data_dir, "image-cache", "invalid", "0b6a0d2e-6f0a-4c55-8d2c-2f7c3f1b9c11")
    junk.write_bytes(b"bad")
    wait_until(lambda: not junk.exists(), "the periodic cleaner to remove the invalid file", describe=server.logs)


def test_the_pruner_brings_the_cache_back_under_a_lowered_limit(start_server):
    server = start_server(auth="tokens", image_cache_max_size=1 << 20)
    first, second = os.urandom(400_000), os.urandom(400_000)
    ids = [create(server, "alice", data) for data in (first, second)]
    for image_id in ids:
        server.request("GET", f"/v2/images/{image_id}/file", user="alice")
        wait_cached(server, image_id)  # the publish follows the response by a moment
    assert set(cache_listing(server)) == set(ids)
    data_dir = server.data_dir
    server.stop()
    # Restarted with a smaller limit: the pruner (first run at start) evicts the oldest.
    server = start_server(auth="tokens", data_dir=data_dir, image_cache_max_size=500_000,
                          settings={"pruner_interval": 0.5})
    wait_until(lambda: list(cache_listing(server)) == [ids[1]], "the pruner to evict the older image",
               describe=lambda: list(cache_listing(server)))
