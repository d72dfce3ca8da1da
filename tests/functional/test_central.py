"""Two ``imagecache serve`` nodes sharing one PostgreSQL index.

Both nodes are edges in front of one embedded image service (so they serve
the same images), each with its own cache directory; the central index is
a scratch schema of the test database (see tests/unit/central/pg.py), made
by ``imagecache db upgrade`` as an operator would.  An image fetched through
node A is listed under A by ``GET /v2/cache/nodes/{id}`` on node B, through
the API, ``imagecache manage list-nodes`` and ``glance cache-nodes-list``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.waiting import wait_until
from tests.unit.central.pg import scratch_schema

from .conftest import RunningServer, ServerFactory, free_port, run_imagecache, start_edge
from .test_cache_http import create

pytestmark = pytest.mark.postgres

GLANCE = os.path.join(os.path.dirname(sys.executable), "glance")
#: Seconds of silence before a node is stale: short, so the test can watch it happen.
STALE_AFTER = 2


@pytest.fixture(scope="module")
def db_url() -> Iterator[str]:
    with scratch_schema(migrated=False) as url:
        done = run_imagecache("db", "upgrade", "--db-url", url)
        assert done.returncode == 0, done.stderr
        assert "to revision" in done.stdout
        yield url


@pytest.fixture(scope="module")
def start(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Servers stopped before the schema is dropped (this fixture ends first)."""
    factory = ServerFactory(tmp_path_factory.mktemp("central-servers"))
    try:
        yield factory.start
    finally:
        factory.stop_all()


@pytest.fixture(scope="module")
def origin(start: Any) -> RunningServer:
    return start(auth="tokens")


def central_node(start: Any, origin: RunningServer, db_url: str) -> RunningServer:
    return start_edge(start, origin, image_cache_driver="central", db_url=db_url,
                      settings={"node_stale_after": STALE_AFTER})


@pytest.fixture(scope="module")
def node_a(start: Any, origin: RunningServer, db_url: str) -> RunningServer:
    return central_node(start, origin, db_url)


@pytest.fixture(scope="module")
def node_b(start: Any, origin: RunningServer, db_url: str) -> RunningServer:
    return central_node(start, origin, db_url)


@pytest.fixture(scope="module")
def image(origin: RunningServer) -> tuple[str, bytes]:
    data = os.urandom(1 << 20)
    return create(origin, "alice", data), data


def nodes_of(server: RunningServer, image_id: str) -> list[str]:
    answer = server.request("GET", f"/v2/cache/nodes/{image_id}", user="admin")
    assert answer.status == 200, answer.text
    return answer.json()


def listed(server: RunningServer, image_id: str, expected: list[str]) -> bool:
    """Whether ``server`` lists ``expected`` soon: a fill's row is added just after its file is
    published, which is when its client gets the last byte, so the index may lag a moment."""
    wait_until(lambda: nodes_of(server, image_id) == sorted(expected), f"{sorted(expected)} to cache {image_id}",
               describe=lambda: nodes_of(server, image_id))
    return True


def download(server: RunningServer, image_id: str, data: bytes) -> None:
    answer = server.request("GET", f"/v2/images/{image_id}/file", user="alice")
    assert answer.status == 200 and answer.body == data


def test_a_node_refuses_a_schema_that_is_not_at_head(tmp_path: Path) -> None:
    with scratch_schema(migrated=False) as empty:
        done = run_imagecache("serve", "--port", str(free_port()), "--data-dir", str(tmp_path),
                              "--image-cache-driver", "central", "--db-url", empty, timeout=30)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "imagecache db upgrade" in lines[0], done.stderr


def test_an_image_fetched_through_a_is_listed_under_a_on_b(node_a, node_b, image, tmp_path) -> None:
    image_id, data = image
    assert nodes_of(node_b, image_id) == []
    download(node_a, image_id, data)
    assert listed(node_b, image_id, [node_a.url])
    assert nodes_of(node_a, image_id) == [node_a.url]
    # Each node's own listing stays its own.
    listed_on_b = node_b.request("GET", "/v2/cache", user="admin").json()["cached_images"]
    assert image_id not in {e["image_id"] for e in listed_on_b}

    manage = run_imagecache("manage", "--port", str(node_b.port), "--os-auth-token", node_b.tokens.admin,
                            "list-nodes", image_id, "--json")
    assert manage.returncode == 0, manage.stderr
    assert json.loads(manage.stdout) == [node_a.url]

    home = tmp_path / "home"
    home.mkdir()
    glance = run_glance(node_b, home, "cache-nodes-list", image_id)
    assert node_a.url in glance and node_b.url not in glance

    download(node_b, image_id, data)
    assert listed(node_a, image_id, [node_a.url, node_b.url])

    assert node_a.request("DELETE", f"/v2/cache/{image_id}", user="admin").status == 204
    assert nodes_of(node_b, image_id) == [node_b.url]  # the row goes before DELETE answers


def run_glance(node: RunningServer, home: Path, *args: str) -> str:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home),
           "OS_IMAGE_URL": node.url, "OS_AUTH_TOKEN": node.tokens.admin}
    done = subprocess.run([GLANCE, *args], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and not done.stderr.strip(), f"{done.stdout}{done.stderr}"
    return done.stdout


def test_the_nodes_route_answers_as_glance(node_b, origin, image) -> None:
    image_id, _ = image
    unknown = node_b.request("GET", f"/v2/cache/nodes/{uuid.uuid4()}", user="admin")
    assert unknown.status == 404
    assert node_b.request("GET", f"/v2/cache/nodes/{image_id}", user="alice").status == 403
    assert node_b.request("GET", "/v2/cache/nodes/not-a-uuid", user="admin").status == 400
    local = origin.request("GET", f"/v2/cache/nodes/{image_id}", user="admin")
    assert local.status == 409 and "Centralized caching is not enabled" in local.text


def test_a_silent_node_is_stale_and_left_out(node_a, node_b, image, db_url) -> None:
    image_id, data = image
    download(node_a, image_id, data)
    assert listed(node_b, image_id, [node_a.url, node_b.url])
    node_a.stop()
    wait_until(lambda: nodes_of(node_b, image_id) == [node_b.url], "the stopped node to go stale",
               describe=lambda: nodes_of(node_b, image_id))
    listing = run_imagecache("db", "nodes", "--db-url", db_url, "--json",
                             env={"IMAGECACHE_NODE_STALE_AFTER": str(STALE_AFTER)})
    assert listing.returncode == 0, listing.stderr
    states = {node["url"]: (node["state"], node["cached_images"]) for node in json.loads(listing.stdout)}
    assert states == {node_a.url: ("stale", 1), node_b.url: ("live", 1)}
