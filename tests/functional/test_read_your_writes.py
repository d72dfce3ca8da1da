"""Read-your-writes: a client that has the last byte of a miss finds the image cached.

Through an embedded node and an edge node, each with 2 workers, so the
listing is often answered by the other worker process than the download.
No waiting anywhere: the order of the requests is the whole test.
"""

from __future__ import annotations

import os
import random

from .conftest import RunningServer
from .test_cache_http import cache_listing, create

ROUNDS = 100


def test_a_downloaded_image_is_listed_at_once(cache_node: RunningServer) -> None:
    sizes = random.Random(12).choices([1, 4096, 65536, 1 << 20, (1 << 20) + 1], k=ROUNDS)
    for round_, size in enumerate(sizes):
        data = os.urandom(size)
        image_id = create(cache_node, "alice", data)
        got = cache_node.request("GET", f"/v2/images/{image_id}/file", user="alice")
        assert got.status == 200 and got.body == data
        listing = cache_listing(cache_node)
        assert image_id in listing, f"round {round_}: image of {size} bytes not listed right after its download"
        assert listing[image_id]["size"] == size
        path = os.path.join(cache_node.data_dir, "image-cache", image_id)
        with open(path, "rb") as cached:
            assert cached.read() == data


def test_a_downloaded_image_can_be_deleted_at_once(cache_node: RunningServer) -> None:
    for _ in range(10):
        data = os.urandom(1 << 20)
        image_id = create(cache_node, "alice", data)
        assert cache_node.request("GET", f"/v2/images/{image_id}/file", user="alice").body == data
        deleted = cache_node.request("DELETE", f"/v2/cache/{image_id}", user="admin")
        assert deleted.status == 204, deleted.text
        assert image_id not in cache_listing(cache_node)
        assert not os.path.exists(os.path.join(cache_node.data_dir, "image-cache", image_id))
