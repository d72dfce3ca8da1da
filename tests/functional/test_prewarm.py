"""Pre-warming on real nodes: a tagged image becomes cached with no download, at the rate limit.

The rate is measured on the origin's side: the node's embedded image service
writes down when each piece of image data was taken from it
(``origin_server.py metered:PATH``), so the test reads what the origin saw,
not what the node says it did.  The edge case reads the upstream's own image
list with the node's ``upstream_auth_token``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.support.waiting import wait_until

from .conftest import RunningServer, start_edge
from .test_cache_http import create

MiB = 1 << 20
RATE = MiB  # bytes per second
SIZE = 5 * MiB // 2
#: What the pacer lets go without waiting (imagecache.jobs.pacing: a quarter second's worth).
BURST = RATE // 4
#: Pieces the metered origin hands out (origin_server.SLICE): the one read before the pacer waits.
PIECE = 256 << 10


def pins(node: RunningServer) -> dict[str, dict[str, Any]]:
    answer = node.request("GET", "/v2/cache/pins", user="admin")
    assert answer.status == 200, answer.text
    return {pin["image_id"]: pin for pin in answer.json()["pinned_images"]}


def cached(node: RunningServer) -> dict[str, dict[str, Any]]:
    answer = node.request("GET", "/v2/cache", user="admin")
    assert answer.status == 200, answer.text
    return {entry["image_id"]: entry for entry in answer.json()["cached_images"]}


def metric(node: RunningServer, name: str) -> float:
    for line in node.request("GET", "/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} is not in /metrics")


def origin_reads(log: Path) -> list[tuple[float, int]]:
    if not log.exists():
        return []
    return [(float(when), int(size)) for when, size in (line.split() for line in log.read_text().splitlines())]


def test_a_tagged_image_is_cached_without_a_download_within_the_rate_limit(start_server, tmp_path) -> None:
    log = tmp_path / "origin-reads.log"
    node = start_server(origin=f"metered:{log}", settings={
        "prewarm_tags": "golden", "prewarm_interval": 0.5, "prewarm_max_bytes_per_second": RATE,
    })
    data = os.urandom(SIZE)
    untagged = create(node, "admin", os.urandom(1000), visibility="public")
    golden = create(node, "admin", data, visibility="public", tags=["golden"])
    entry = wait_until(lambda: cached(node).get(golden), "the tagged image to be pre-warmed",
                       describe=node.logs)
    assert entry["size"] == SIZE
    assert untagged not in cached(node)
    # Nobody downloaded anything: no hit, no miss; the origin handed out the image once, whole.
    assert metric(node, "imagecache_cache_hits_total") == metric(node, "imagecache_cache_misses_total") == 0
    reads = origin_reads(log)
    assert sum(size for _, size in reads) == SIZE
    # The origin's account: by the time it handed out each piece, no more than the burst plus the
    # rate since the first piece had been taken (plus the piece in hand).
    first = reads[0][0]
    taken = 0
    for when, size in reads:
        taken += size
        assert taken <= BURST + RATE * (when - first) + PIECE + 1, (taken, when - first)
    assert reads[-1][0] - first >= (SIZE - BURST - 2 * PIECE) / RATE
    # The cached copy is the image: a download now is a hit with the right bytes.
    hit = node.request("GET", f"/v2/images/{golden}/file")
    assert hit.status == 200 and hit.body == data
    assert metric(node, "imagecache_cache_hits_total") == 1


def test_an_edge_node_pre_warms_and_pins_from_its_upstreams_image_list(start_server) -> None:
    upstream = start_server(auth="tokens")
    edge = start_edge(start_server, upstream, settings={
        "prewarm_tags": "golden", "prewarm_pin": "true", "prewarm_interval": 0.5,
        "prewarm_max_bytes_per_second": 0,
    })
    golden = create(upstream, "admin", os.urandom(300_000), visibility="public", tags=["golden"])
    private = create(upstream, "alice", os.urandom(1000), tags=["golden"])  # alice's own tag on her own image
    pin = wait_until(lambda: pins(edge).get(golden, {}).get("cached") and pins(edge)[golden],
                     "the edge to pre-warm and pin the golden image", describe=edge.logs)
    assert pin["pinned_by"] == "prewarm" and pin["size"] == 300_000
    assert cached(edge)[golden]["pinned"] is True
    assert private not in pins(edge) and private not in cached(edge)
    assert metric(edge, "imagecache_cache_misses_total") == 0
    assert metric(edge, "imagecache_pinned_bytes") == 300_000
    # The tag goes upstream: the next run takes its pin back; the copy stays, an ordinary entry.
    untag = upstream.request("DELETE", f"/v2/images/{golden}/tags/golden", user="admin")
    assert untag.status == 204, untag.text
    wait_until(lambda: golden not in pins(edge), "the edge to give its pin back", describe=edge.logs)
    assert cached(edge)[golden]["pinned"] is False
