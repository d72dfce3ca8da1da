"""Cache-Status (RFC 9211) on real servers: every way an image is served says so, and why it was not stored.

Hits and followed fills are sent from the worker's event loop; their
headers are what the filter wrote.  In edge mode the origin is itself an
imagecache node with a cache of its own: its member comes first, ours
last (the cache nearest the client).
"""

from __future__ import annotations

import http.client
import os
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from http_sf import Token, parse

from tests.support.waiting import wait_until
from tests.unit.cache.scratch_fs import mounted

from .conftest import RunningServer
from .test_cache_http import create, wait_cached
from .test_fills import MiB, metric, metrics

Member = tuple[Any, dict[str, Any]]


def members(value: str) -> list[Member]:
    parsed: list[Member] = parse(value.encode("ascii"), tltype="list")
    return parsed


def ours(value: str, **params: Any) -> bool:
    """Whether the last member is this node's with exactly ``params`` (Tokens given as text)."""
    name, got = members(value)[-1]
    want = {key.replace("_", "-"): Token(v) if isinstance(v, str) else v for key, v in params.items()}
    return name == Token("imagecache") and got == want


def get_file(server: RunningServer, image_id: str, headers: dict[str, str] | None = None):
    return server.request("GET", f"/v2/images/{image_id}/file", user="alice", headers=headers)


@pytest.fixture(scope="module")
def data() -> bytes:
    return os.urandom(2 * MiB)


def test_a_miss_stores_the_image_and_then_every_download_is_a_hit(cache_node: RunningServer, data: bytes) -> None:
    image_id = create(cache_node, "alice", data)
    miss = get_file(cache_node, image_id)
    assert miss.body == data and ours(miss.headers["cache-status"], fwd="miss", stored=True)
    edge = cache_node.upstream is not None
    # At the edge the origin's own cache filled it too: its member first, ours last.
    assert len(members(miss.headers["cache-status"])) == (2 if edge else 1)
    wait_cached(cache_node, image_id)
    hit = get_file(cache_node, image_id)
    assert hit.body == data and hit.headers["cache-status"] == "imagecache; hit"
    part = get_file(cache_node, image_id, {"Range": "bytes=10-1000009"})
    assert part.status == 206 and part.body == data[10:1000010] and part.headers["cache-status"] == "imagecache; hit"
    legacy = cache_node.request("GET", f"/v1/images/{image_id}", user="alice")
    assert legacy.body == data and legacy.headers["cache-status"] == "imagecache; hit"


def test_a_range_of_an_uncached_image_goes_to_the_origin_and_says_why(cache_node: RunningServer,
                                                                      data: bytes) -> None:
    image_id = create(cache_node, "alice", data)
    before = metrics(cache_node)
    part = get_file(cache_node, image_id, {"Range": "bytes=-100"})
    assert part.status == 206 and part.body == data[-100:]
    assert ours(part.headers["cache-status"], fwd="uri-miss", detail="range-uncached")
    if cache_node.upstream is not None:  # the origin node did not have it either, and said so first
        assert len(members(part.headers["cache-status"])) == 2
    after = metrics(cache_node)
    for name in ("imagecache_not_stored_total", "imagecache_origin_requests_total"):
        grew = metric(after, name, reason="range-uncached") - metric(before, name, reason="range-uncached")
        assert grew == 1, name


def test_an_image_larger_than_the_cache_is_served_and_says_too_large(start_server: Any) -> None:
    server = start_server(auth="tokens", image_cache_max_size="1M")
    data = os.urandom(2 * MiB)
    image_id = create(server, "alice", data)
    answer = get_file(server, image_id)
    assert answer.body == data and ours(answer.headers["cache-status"], fwd="uri-miss", detail="too-large")
    values = metrics(server)
    assert metric(values, "imagecache_not_stored_total", reason="too-large") == 1
    assert metric(values, "imagecache_origin_requests_total", reason="too-large") == 1
    assert metric(values, "imagecache_origin_bytes_total", reason="too-large") == len(data)


@dataclass
class HeadersFirst:
    """A download that records its headers as soon as they arrive, then reads the body."""

    server: RunningServer
    image_id: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    arrived: threading.Event = field(default_factory=threading.Event)

    def __call__(self) -> None:
        connection = http.client.HTTPConnection(self.server.host, self.server.port, timeout=60)
        try:
            connection.request("GET", f"/v2/images/{self.image_id}/file", headers=self.server.headers("alice"))
            answer = connection.getresponse()
            self.headers = {k.lower(): v for k, v in answer.getheaders()}
            self.arrived.set()
            self.body = answer.read()
        finally:
            self.arrived.set()
            connection.close()


def test_a_download_that_joins_a_fill_in_progress_says_collapsed(start_server: Any) -> None:
    # 24 MiB at 3 MiB/s: the fill lasts about 8 s, the second request comes once it has begun.
    server = start_server(auth="tokens", workers=2, origin=f"throttled:{3 * MiB}")
    data = os.urandom(24 * MiB)
    image_id = create(server, "alice", data)
    leader, follower = HeadersFirst(server, image_id), HeadersFirst(server, image_id)
    leading = threading.Thread(target=leader)
    leading.start()
    wait_until(lambda: 0 < metric(metrics(server), "imagecache_origin_bytes_total", reason="fill") < len(data) // 2,
               "the fill to be under way")
    following = threading.Thread(target=follower)
    following.start()
    assert follower.arrived.wait(60)
    assert follower.headers["cache-status"] == "imagecache; fwd=miss; collapsed"
    following.join(120)
    leading.join(120)
    assert leader.body == data and follower.body == data
    assert leader.headers["cache-status"] == "imagecache; fwd=miss; stored"
    values = metrics(server)
    assert metric(values, "imagecache_fill_followers_total") == 1
    assert metric(values, "imagecache_origin_requests_total", reason="fill") == 1


def test_a_fill_that_fails_verification_counts_why(start_server: Any) -> None:
    server = start_server(auth="tokens", origin="corrupt")
    data = os.urandom(3 * MiB)
    image_id = create(server, "alice", data)
    connection = http.client.HTTPConnection(server.host, server.port, timeout=60)
    try:
        connection.request("GET", f"/v2/images/{image_id}/file", headers=server.headers("alice"))
        answer = connection.getresponse()
        # Sent before the last byte, which verification decides: "stored" is what the node set out to do.
        assert answer.getheader("Cache-Status") == "imagecache; fwd=miss; stored"
        with pytest.raises((http.client.IncompleteRead, ConnectionError)):
            answer.read()  # and the transfer is cut off, never completed with a wrong image
    finally:
        connection.close()
    wait_until(lambda: metric(metrics(server), "imagecache_not_stored_total", reason="verify-failed") == 1,
               "the failed fill to be counted")


def test_a_fill_that_runs_out_of_disk_still_delivers_and_counts_why(start_server: Any, tmp_path) -> None:
    data_dir = tmp_path / "tiny-data"
    with mounted("tmpfs", str(data_dir / "image-cache"), "size=1m"):
        run_out_of_disk(start_server(auth="tokens", data_dir=data_dir))


def run_out_of_disk(server: RunningServer) -> None:
    data = os.urandom(4 * MiB)
    image_id = create(server, "alice", data)
    answer = get_file(server, image_id)
    assert answer.body == data and answer.headers["cache-status"] == "imagecache; fwd=miss; stored"
    wait_until(lambda: metric(metrics(server), "imagecache_not_stored_total", reason="disk-full") == 1,
               "the fill that ran out of disk to be counted")
    again = get_file(server, image_id)
    assert again.body == data  # a second try fills again, and fails again, as visibly
    values = metrics(server)
    assert metric(values, "imagecache_origin_requests_total", reason="resume") >= 1  # the rest came from the origin
    server.stop()  # before the filesystem under it goes

