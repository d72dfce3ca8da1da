"""Edge mode: ``imagecache serve --upstream`` in front of another real server.

The upstream is an ``imagecache serve`` with the embedded image service; its
gunicorn access log is the record of what the edge asked it for.
"""

from __future__ import annotations

import hashlib
import os
import re

from tests.support.waiting import wait_until

from .conftest import RunningServer, start_edge
from .test_cache_http import cache_listing, create, wait_cached
from .test_fills import Download, run_together


def data_fetches(upstream: RunningServer, image_id: str) -> int:
    """How many times the upstream served the image's data (from its access log)."""
    pattern = re.compile(rf'"GET /v2/images/{image_id}/file HTTP/1\.1" 200 ')
    return len(pattern.findall(upstream.logs()))


def test_many_downloads_through_the_edge_fetch_the_image_once(start_server):
    upstream = start_server(auth="tokens", workers=2)
    edge = start_edge(start_server, upstream, workers=2)
    data = os.urandom(8 << 20)
    image_id = create(edge, "alice", data)  # uploads go through the edge too
    downloads = [Download(edge, image_id) for _ in range(12)]
    run_together(downloads)
    for download in downloads:
        assert download.error is None and download.status == 200
        assert hashlib.sha256(download.body).digest() == hashlib.sha256(data).digest()
    for _ in range(3):
        assert edge.request("GET", f"/v2/images/{image_id}/file", user="alice").body == data
    assert wait_cached(edge, image_id)["size"] == len(data)
    # gunicorn logs a request after its last byte is sent: the edge can be done with it a moment earlier.
    wait_until(lambda: data_fetches(upstream, image_id) >= 1, "the upstream's access log to show the fill's fetch")
    assert data_fetches(upstream, image_id) == 1
    # Authorization of hits is the upstream's: bob (another project) is refused.
    assert edge.request("GET", f"/v2/images/{image_id}/file", user="bob").status == 404


def test_a_stopped_upstream_refuses_hits_and_fails_misses(start_server):
    upstream = start_server(auth="tokens")
    # No memo of the upstream's answers, so the very next request asks it.
    edge = start_edge(start_server, upstream, settings={"auth_cache_ttl": 0})
    stale_edge = start_edge(start_server, upstream,
                            settings={"auth_cache_ttl": 0, "serve_stale_on_upstream_error": True})
    cached, uncached = os.urandom(300_000), os.urandom(300_000)
    cached_id = create(edge, "alice", cached)
    uncached_id = create(edge, "alice", uncached)
    for node in (edge, stale_edge):
        assert node.request("GET", f"/v2/images/{cached_id}/file", user="alice").body == cached
        wait_cached(node, cached_id)
    upstream.stop()
    refused = edge.request("GET", f"/v2/images/{cached_id}/file", user="alice")
    assert refused.status == 503, refused.text
    assert "cannot be reached" in refused.json()["error"]["message"]
    served = stale_edge.request("GET", f"/v2/images/{cached_id}/file", user="alice")
    assert served.status == 200 and served.body == cached
    miss = edge.request("GET", f"/v2/images/{uncached_id}/file", user="alice")
    assert miss.status == 502, miss.text
    # Everything else gets the proxy's 502 too; the cache itself is untouched.
    assert edge.request("GET", "/v2/images", user="alice").status == 502
    assert cached_id in cache_listing(edge)


def test_the_edge_manages_its_own_cache(start_server):
    upstream = start_server(auth="tokens")
    edge = start_edge(start_server, upstream)
    data = os.urandom(200_000)
    image_id = create(edge, "alice", data)
    edge.request("GET", f"/v2/images/{image_id}/file", user="alice")
    wait_cached(edge, image_id)
    assert image_id in cache_listing(edge)
    assert edge.request("GET", "/v2/cache", user="alice").status == 403
    assert edge.request("DELETE", f"/v2/cache/{image_id}", user="admin").status == 204
    assert image_id not in cache_listing(edge)


def statuses_in_parallel(server: RunningServer, path: str, user: str, n: int = 24) -> list[int]:
    """``n`` GETs at once: enough overlap that both workers answer some of them."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: server.request("GET", path, user=user).status, range(n)))


def test_a_deactivate_through_the_edge_holds_in_every_worker_at_once(start_server):
    upstream = start_server(auth="tokens")
    edge = start_edge(start_server, upstream, workers=2, settings={"auth_cache_ttl": 60})
    data = os.urandom(100_000)
    image_id = create(edge, "alice", data)
    path = f"/v2/images/{image_id}/file"
    for _ in range(3):  # every worker memoises alice's right to the image
        assert set(statuses_in_parallel(edge, path, "alice")) == {200}
    assert edge.request("POST", f"/v2/images/{image_id}/actions/deactivate", user="admin").status == 204
    assert set(statuses_in_parallel(edge, path, "alice")) == {403}
    assert edge.request("POST", f"/v2/images/{image_id}/actions/reactivate", user="admin").status == 204
    assert set(statuses_in_parallel(edge, path, "alice")) == {200}
