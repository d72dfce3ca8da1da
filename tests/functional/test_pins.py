"""Pinned images on a real node: they survive eviction at publish and the pruner, on every driver,
and a node whose pins alone exceed its limit says so (log, metric, listing, ``manage``).

Pins are set with the real command line (``imagecache manage pin``) against
the running node; the central driver runs on a scratch schema of the test
PostgreSQL, upgraded with ``imagecache db upgrade`` as an operator would.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.waiting import wait_until
from tests.unit.central.pg import scratch_schema

from .conftest import RunningServer, run_imagecache
from .test_cache_http import cache_listing, create, wait_cached

KiB = 1 << 10
SIZE = 256 * KiB
DRIVERS = ["sqlite", "xattr", pytest.param("central", marks=pytest.mark.postgres)]


@pytest.fixture
def driver_options(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    name = request.param
    if name != "central":
        yield {"image_cache_driver": name}
        return
    with scratch_schema(migrated=False) as url:
        upgraded = run_imagecache("db", "upgrade", "--db-url", url)
        assert upgraded.returncode == 0, upgraded.stderr
        yield {"image_cache_driver": "central", "db_url": url}


def manage(node: RunningServer, *args: str) -> Any:
    done = run_imagecache("manage", "--port", str(node.port), "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def download(node: RunningServer, image_id: str, data: bytes) -> None:
    answer = node.request("GET", f"/v2/images/{image_id}/file")
    assert answer.status == 200 and answer.body == data


def metric(node: RunningServer, sample: str) -> float:
    for line in node.request("GET", "/metrics").text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{sample} is not in /metrics")


@pytest.mark.parametrize("driver_options", DRIVERS, indirect=True)
def test_a_pinned_image_survives_eviction_at_publish_and_the_pruner(start_server, driver_options) -> None:
    node = start_server(image_cache_max_size=3 * SIZE, **driver_options)
    images = {name: os.urandom(SIZE) for name in ("pinned", "second", "third")}
    ids = {name: create(node, "admin", data) for name, data in images.items()}
    for name in ("pinned", "second", "third"):  # least recently used first: the pinned one
        download(node, ids[name], images[name])
        wait_cached(node, ids[name])
    assert manage(node, "pin", ids["pinned"]) == {"pinned": [ids["pinned"]], "failed": []}
    # At publish: a two-image newcomer needs the room of the two least recently used; the pinned one is skipped.
    big = os.urandom(2 * SIZE)
    big_id = create(node, "admin", big)
    download(node, big_id, big)
    wait_cached(node, big_id)
    assert set(cache_listing(node)) == {ids["pinned"], big_id}
    # The pruner, under a limit below the pinned image alone: everything else goes, the pinned image stays.
    # (A cron job uses the node's settings: its driver, and on the central index which node it is.)
    cron = {f"IMAGECACHE_{key.upper()}": str(value) for key, value in driver_options.items()}
    pruned = run_imagecache("prune", "--data-dir", str(node.data_dir), "--image-cache-max-size", str(SIZE // 2),
                            "--json", env={**cron, "IMAGECACHE_NODE_URL": node.url})
    assert pruned.returncode == 0, pruned.stderr
    report = json.loads(pruned.stdout)
    assert (report["files_pruned"], report["pinned_bytes"], report["pinned_over_limit"]) == (1, SIZE, True)
    listed = manage(node, "list-cached")
    assert [(entry["image_id"], entry["pinned"]) for entry in listed] == [(ids["pinned"], True)]
    download(node, ids["pinned"], images["pinned"])  # and it is still served from the cache: a hit
    wait_until(lambda: cache_listing(node)[ids["pinned"]]["hits"] == 1, "the hit on the pinned image")


def test_a_node_whose_pins_alone_exceed_its_limit_says_so_and_caches_nothing_else(start_server) -> None:
    node = start_server(image_cache_max_size=4 * SIZE)
    pinned_data, other_data = os.urandom(2 * SIZE), os.urandom(SIZE)
    pinned, other = create(node, "admin", pinned_data), create(node, "admin", other_data)
    # Pinned before it is cached: pinning queues it, and the node caches it at once.
    assert manage(node, "pin", pinned)["pinned"] == [pinned]
    wait_until(lambda: pinned in cache_listing(node), "the pinned image to be cached", describe=node.logs)
    data_dir = node.data_dir
    node.stop()
    # The operator lowers the limit below the pinned image: the node starts, and says so at once.
    node = start_server(data_dir=data_dir, image_cache_max_size=SIZE)
    wait_until(lambda: "PINNED IMAGES ALONE EXCEED THE CACHE LIMIT" in node.logs(), "the node to say it",
               describe=node.logs)
    assert metric(node, "imagecache_pinned_over_limit") == 1
    assert metric(node, "imagecache_pinned_bytes") == 2 * SIZE
    state = manage(node, "list-pinned")
    assert state["over_limit"] is True and state["pinned_bytes"] == 2 * SIZE
    warned = run_imagecache("manage", "--port", str(node.port), "list-cached")
    assert warned.returncode == 0 and "nothing else is cached" in warned.stderr
    # Other images are served, never cached, while the pins fill the cache.
    download(node, other, other_data)
    download(node, other, other_data)
    assert set(cache_listing(node)) == {pinned}
    # Unpinned, it is an ordinary image again: the node says the limit holds once it is pruned.
    assert manage(node, "unpin", pinned) == {"unpinned": [pinned], "failed": []}
    assert node.request("POST", "/v2/cache/prune").status == 200
    assert cache_listing(node) == {}
    assert metric(node, "imagecache_pinned_over_limit") == 0
    assert node.logs().count("PINNED IMAGES ALONE EXCEED THE CACHE LIMIT") == 1


def test_pins_are_for_admins_and_bad_ids_are_400(tokens_server: RunningServer) -> None:
    image_id = create(tokens_server, "alice", os.urandom(1000))
    assert tokens_server.request("PUT", f"/v2/cache/{image_id}/pin", user="alice").status == 403
    assert tokens_server.request("GET", "/v2/cache/pins", user="bob").status == 403
    assert tokens_server.request("PUT", f"/v2/cache/{image_id}/pin").status == 401
    bad = tokens_server.request("PUT", "/v2/cache/not-a-uuid/pin", user="admin")
    assert bad.status == 400 and "UUID" in bad.json()["error"]["message"]
    assert tokens_server.request("DELETE", f"/v2/cache/{image_id}/pin", user="admin").status == 404
    assert tokens_server.request("GET", f"/v2/cache/{image_id}/pin", user="admin").status == 405
    assert Path(tokens_server.data_dir, "image-cache", "pinned").is_dir()
