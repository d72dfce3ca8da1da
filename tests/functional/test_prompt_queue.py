"""Queueing, by any route, caches the image at once: not at the next prefetcher run.

Each node here has its periodic prefetcher an hour away, so an image that
gets cached was cached by the queue call itself.  The deadline is the 5 s
an operator may expect on an idle node (a 1 MiB image takes milliseconds).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from imagecache.client import CacheClient
from tests.support.waiting import wait_until

from .conftest import RunningServer, start_edge
from .test_cache_http import cache_listing, create
from .test_cli_manage import as_admin

PROMPTLY = 5.0
NO_PERIODIC_RUN = {"prefetcher_interval": 3600.0}


@pytest.fixture(scope="module", params=["embedded", "edge"])
def node(request: pytest.FixtureRequest, start_module_server: Any) -> RunningServer:
    if request.param == "embedded":
        return start_module_server(auth="tokens", settings=NO_PERIODIC_RUN)
    return start_edge(start_module_server, start_module_server(auth="tokens", settings=NO_PERIODIC_RUN),
                      settings=NO_PERIODIC_RUN)


def queue_v2(node: RunningServer, image_id: str) -> None:
    assert node.request("PUT", f"/v2/cache/{image_id}", user="admin").status == 202


def queue_legacy(prefix: str) -> Callable[[RunningServer, str], None]:
    def queue(node: RunningServer, image_id: str) -> None:
        answer = node.request("PUT", f"{prefix}/queued_images/{image_id}", user="admin")
        assert answer.status == 200, answer.text
    return queue


def queue_client(node: RunningServer, image_id: str) -> None:
    assert node.tokens is not None
    client = CacheClient(node.host, node.port, auth_token=node.tokens.admin, timeout=10, environ={})
    assert client.queue_image_for_caching(image_id)


def queue_cli(node: RunningServer, image_id: str) -> None:
    done = as_admin(node, "queue-image", image_id)
    assert done.returncode == 0, done.stderr


ROUTES = {
    "v2": queue_v2,
    "legacy-v1": queue_legacy("/v1"),
    "legacy-v2": queue_legacy("/v2"),
    "client": queue_client,
    "cli": queue_cli,
}


@pytest.mark.parametrize("route", list(ROUTES))
def test_a_queued_image_is_cached_promptly(node: RunningServer, route: str) -> None:
    data = os.urandom(1 << 20)
    image_id = create(node, "alice", data)
    ROUTES[route](node, image_id)

    def cached_and_dequeued() -> dict[str, Any] | None:
        state = node.request("GET", "/v2/cache", user="admin").json()
        entries = {entry["image_id"]: entry for entry in state["cached_images"]}
        return entries.get(image_id) if image_id not in state["queued_images"] else None

    entry = wait_until(cached_and_dequeued, f"image {image_id} to be cached and off the queue",
                       timeout=PROMPTLY, describe=node.logs)
    assert entry["size"] == len(data)
    assert node.request("GET", f"/v2/images/{image_id}/file", user="alice").body == data
    assert cache_listing(node)[image_id]["hits"] == 1
