"""Peer fill across real nodes: one origin read for a cluster, and peers that die, lie or are far away.

Each node is an ``imagecache serve --upstream`` edge with the central
driver on a scratch schema of the test PostgreSQL and one ``peer_token``;
the origin is the embedded image service throttled by origin_server.py, so a
fill lasts long enough for the others to find it in progress.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.waiting import wait_until
from tests.unit.central.pg import scratch_schema

from .conftest import RunningServer, ServerFactory, run_imagecache, start_edge
from .test_cache_http import cache_listing, create
from .test_fills import Download, MiB, metric, metrics, run_together

pytestmark = pytest.mark.postgres

PEER_TOKEN = "cluster-secret"


@pytest.fixture
def db_url() -> Iterator[str]:
    with scratch_schema(migrated=False) as url:
        done = run_imagecache("db", "upgrade", "--db-url", url)
        assert done.returncode == 0, done.stderr
        yield url


@pytest.fixture
def start(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Servers stopped before the schema is dropped (this fixture ends first)."""
    factory = ServerFactory(tmp_path_factory.mktemp("peer-servers"))
    try:
        yield factory.start
    finally:
        factory.stop_all()


def peer_node(start: Any, origin: RunningServer, db_url: str, site: str = "default") -> RunningServer:
    return start_edge(start, origin, image_cache_driver="central", db_url=db_url,
                      settings={"peer_token": PEER_TOKEN, "node_site": site})


def origin_reads(origin: RunningServer, image_id: str) -> list[str]:
    """The origin's access-log lines of data GETs of ``image_id`` (its status last-but-one field)."""
    return [line for line in origin.logs().splitlines()
            if re.search(rf'"GET /v2/images/{image_id}/file HTTP/1\.1" 20[06] ', line)]


def total(nodes: list[RunningServer], name: str, **labels: str) -> float:
    return sum(metric(metrics(node), name, **labels) for node in nodes)


def test_a_cluster_reads_a_new_image_from_the_origin_once(start: Any, db_url: str) -> None:
    origin = start(auth="tokens", origin=f"throttled:{64 * MiB}")
    nodes = [peer_node(start, origin, db_url) for _ in range(3)]
    data = os.urandom(64 * MiB)
    image_id = create(origin, "alice", data)
    downloads = [Download(node, image_id) for node in nodes for _ in range(6)]
    run_together(downloads)
    digest = hashlib.sha256(data).hexdigest()
    for download in downloads:
        assert download.error is None and download.status == 200, (download.status, download.error)
        assert hashlib.sha256(download.body).hexdigest() == digest
    for node in nodes:
        wait_until(lambda node=node: image_id in cache_listing(node), f"{node.url} to cache the image")
    assert len(origin_reads(origin, image_id)) == 1, origin_reads(origin, image_id)
    assert total(nodes, "imagecache_upstream_bytes_total") == len(data)
    assert total(nodes, "imagecache_peer_bytes_total") == 2 * len(data)
    assert total(nodes, "imagecache_peer_served_bytes_total") == 2 * len(data)


def test_a_peer_killed_mid_transfer_leaves_the_rest_to_the_origin(start: Any, db_url: str) -> None:
    origin = start(auth="tokens", origin=f"throttled:{16 * MiB}")
    first, second = peer_node(start, origin, db_url), peer_node(start, origin, db_url)
    data = os.urandom(64 * MiB)
    image_id = create(origin, "alice", data)
    lead = threading.Thread(target=Download(first, image_id))
    lead.start()  # first claims the cluster's fill and reads the origin for about 4 s
    wait_until(lambda: metric(metrics(first), "imagecache_upstream_bytes_total") > 4 * MiB,
               "the first node to be filling from the origin")
    follower = Download(second, image_id)
    reading = threading.Thread(target=follower)
    reading.start()
    wait_until(lambda: metric(metrics(second), "imagecache_peer_bytes_total") > 0,
               "the second node to be reading from the first")
    os.killpg(first.process.pid, signal.SIGKILL)
    reading.join(120)
    lead.join(120)
    assert follower.error is None and follower.status == 200, (follower.status, follower.error)
    assert follower.body == data
    values = metrics(second)
    from_peer = metric(values, "imagecache_peer_bytes_total")
    from_origin = metric(values, "imagecache_upstream_bytes_total")
    assert 0 < from_peer < len(data)
    assert from_peer + from_origin == len(data), "the origin was read from the offset reached, not from 0"
    wait_until(lambda: image_id in cache_listing(second), "the second node to cache the image")


def test_a_peer_that_sends_wrong_bytes_is_distrusted_and_the_origin_refills(start: Any, db_url: str) -> None:
    origin = start(auth="tokens")
    liar, honest = peer_node(start, origin, db_url), peer_node(start, origin, db_url)
    data = os.urandom(8 * MiB)
    image_id = create(origin, "alice", data)
    assert honest_download(liar, image_id) == data
    wait_until(lambda: image_id in cache_listing(liar), "the first node to cache the image")
    cached = liar.data_dir / "image-cache" / image_id
    with open(cached, "r+b") as file:  # the disk under the first node goes bad
        file.seek(len(data) // 2)
        byte = file.read(1)
        file.seek(len(data) // 2)
        file.write(bytes([byte[0] ^ 0xFF]))
    first_try = Download(honest, image_id)
    first_try()
    assert first_try.error is not None, "a client must not receive a complete wrong image"
    assert len(first_try.body) < len(data)
    wait_until(lambda: image_id in cache_listing(honest), "the second node to refill the image from the origin")
    assert honest_download(honest, image_id) == data
    with open(honest.data_dir / "image-cache" / image_id, "rb") as file:
        assert file.read() == data
    values = metrics(honest)
    assert metric(values, "imagecache_peer_fills_total", result="suspect") == 1
    assert "suspect" in honest.logs()
    # The liar is no source for the second node while the mark lasts: a third download is a hit.
    assert honest_download(honest, image_id) == data


def honest_download(node: RunningServer, image_id: str) -> bytes:
    download = Download(node, image_id)
    download()
    assert download.error is None and download.status == 200, (download.status, download.error)
    return download.body


def test_a_node_reads_a_peer_of_its_own_site_first(start: Any, db_url: str) -> None:
    origin = start(auth="tokens")
    east = peer_node(start, origin, db_url, site="east")
    west_holder = peer_node(start, origin, db_url, site="west")
    west_reader = peer_node(start, origin, db_url, site="west")
    data = os.urandom(4 * MiB)
    image_id = create(origin, "alice", data)
    assert honest_download(east, image_id) == data
    wait_until(lambda: image_id in cache_listing(east), "east to cache the image")
    assert honest_download(west_holder, image_id) == data  # from east: the only holder
    wait_until(lambda: image_id in cache_listing(west_holder), "the west holder to cache the image")
    served_east = metric(metrics(east), "imagecache_peer_served_bytes_total")
    assert honest_download(west_reader, image_id) == data
    assert metric(metrics(west_holder), "imagecache_peer_served_bytes_total") == len(data)
    assert metric(metrics(east), "imagecache_peer_served_bytes_total") == served_east, "east was passed over"
    assert len(origin_reads(origin, image_id)) == 1


def test_a_peer_request_never_causes_another_peer_request(start: Any, db_url: str) -> None:
    """A node asked by a peer for an image it does not have says 404: it asks neither its peers nor the origin."""
    origin = start(auth="tokens")
    empty, holder = peer_node(start, origin, db_url), peer_node(start, origin, db_url)
    data = os.urandom(1 * MiB)
    image_id = create(origin, "alice", data)
    assert honest_download(holder, image_id) == data
    wait_until(lambda: image_id in cache_listing(holder), "the holder to cache the image")
    before = [metrics(node) for node in (empty, holder)]
    answer = empty.request("GET", f"/peer/v1/images/{image_id}", headers={"X-Imagecache-Peer-Token": PEER_TOKEN})
    assert answer.status == 404, answer.text
    after = [metrics(node) for node in (empty, holder)]
    for name in ("imagecache_peer_bytes_total", "imagecache_upstream_bytes_total",
                 "imagecache_peer_served_bytes_total"):
        assert [metric(values, name) for values in after] == [metric(values, name) for values in before], name
    assert image_id not in cache_listing(empty), "a peer's request started no fill"
    assert len(origin_reads(origin, image_id)) == 1


def test_a_fill_from_a_peer_says_so_and_reads_nothing_from_the_origin(start: Any, db_url: str) -> None:
    origin = start(auth="tokens")
    holder, reader = peer_node(start, origin, db_url), peer_node(start, origin, db_url)
    data = os.urandom(4 * MiB)
    image_id = create(origin, "alice", data)
    first = holder.request("GET", f"/v2/images/{image_id}/file", user="alice")
    assert first.body == data and first.headers["cache-status"].endswith("imagecache; fwd=miss; stored")
    wait_until(lambda: image_id in cache_listing(holder), "the first node to cache the image")
    # What the holder's peer endpoint sends other nodes says it is the verified file.
    peer_answer = holder.request("GET", f"/peer/v1/images/{image_id}", headers={"X-Imagecache-Peer-Token": PEER_TOKEN})
    assert peer_answer.body == data and peer_answer.headers["cache-status"] == "imagecache; hit"
    second = reader.request("GET", f"/v2/images/{image_id}/file", user="alice")
    assert second.body == data
    assert second.headers["cache-status"] == "imagecache; fwd=miss; stored; detail=peer"
    values = metrics(reader)
    assert metric(values, "imagecache_origin_requests_total", reason="fill") == 0
    assert metric(values, "imagecache_origin_requests_total", reason="peer-fallback") == 0
    assert metric(values, "imagecache_peer_bytes_total") == len(data)


def test_the_activity_tells_a_fill_from_peers_from_one_from_the_origin(start: Any, db_url: str) -> None:
    origin = start(auth="tokens", origin=f"throttled:{8 * MiB}")
    first, second = peer_node(start, origin, db_url), peer_node(start, origin, db_url)
    image_id = create(origin, "alice", os.urandom(32 * MiB))  # about 4 s from the origin

    def fill_on(node: RunningServer) -> dict[str, Any] | None:
        answer = node.request("GET", "/v2/cache/activity", user="admin")
        assert answer.status == 200, answer.text
        return next((fill for fill in answer.json()["fills"] if fill["image_id"] == image_id and fill["bytes"]), None)

    downloads = [Download(first, image_id), Download(second, image_id)]
    threads = [threading.Thread(target=download) for download in downloads]
    threads[0].start()
    assert wait_until(lambda: fill_on(first), "the first node's fill")["source"] == "origin"
    threads[1].start()
    assert wait_until(lambda: fill_on(second), "the second node's fill")["source"] == "peer"
    for thread in threads:
        thread.join(120)
    assert all(download.status == 200 and download.error is None for download in downloads)
    # With the central index the activity lists the cluster's nodes, both heard from just now.
    nodes = first.request("GET", "/v2/cache/activity", user="admin").json()["nodes"]
    live = {node["url"]: node for node in nodes if node["state"] == "live"}
    assert {first.url, second.url} <= set(live), nodes
    assert all(node["site"] == "default" and node["last_seen"] is not None for node in live.values())
