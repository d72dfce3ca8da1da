"""The fleet view across two ``imagecache serve`` nodes on one PostgreSQL index, at two sites.

``GET /v2/cache/nodes`` on one node, ``imagecache manage list-cached
--all-nodes`` against it and ``imagecache db images`` on the database show
one view.  Both nodes are edges in front of one embedded image service, with
test_central.py's fixtures; the schema is made by ``imagecache db upgrade``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from imagecache.cache.drivers.base import Driver
from imagecache.cache.drivers.central import CentralDriver
from tests.support.waiting import wait_until

from . import test_central
from .conftest import RunningServer, run_imagecache, start_edge
from .test_cache_http import create

#: test_central.py's fixtures (a schema made by db upgrade, servers stopped before it is
#: dropped, one origin), each module with its own.
db_url, start, origin = test_central.db_url, test_central.start, test_central.origin

pytestmark = pytest.mark.postgres

#: Whether the central driver reads the index's peer-fill facts (its part of peer fill).
FLEET_QUERY_HERE = CentralDriver.fleet is not Driver.fleet


@pytest.fixture(scope="module")
def nodes(start: Any, origin: RunningServer, db_url: str) -> tuple[RunningServer, RunningServer]:
    east = start_edge(start, origin, image_cache_driver="central", db_url=db_url, node_site="east")
    west = start_edge(start, origin, image_cache_driver="central", db_url=db_url, node_site="west")
    return east, west


def fleet(server: RunningServer) -> list[dict[str, Any]]:
    answer = server.request("GET", "/v2/cache/nodes", user="admin")
    assert answer.status == 200 and answer.headers["content-type"] == "application/json", answer.text
    return list(answer.json()["images"])


def manage(server: RunningServer, *args: str) -> Any:
    assert server.tokens is not None
    return run_imagecache("manage", "--port", str(server.port), "--os-auth-token", server.tokens.admin, *args)


def test_the_route_the_manage_command_and_the_database_show_one_view(nodes, origin, db_url) -> None:
    east, west = nodes
    data = os.urandom(256 << 10)
    image_id = create(origin, "alice", data)
    assert east.request("GET", f"/v2/images/{image_id}/file", user="alice").body == data
    if FLEET_QUERY_HERE:
        wait_until(lambda: any(image["image_id"] == image_id for image in fleet(west)),
                   f"{image_id} in the fleet", describe=lambda: fleet(west))
        [shown] = [image for image in fleet(west) if image["image_id"] == image_id]
        assert shown["nodes"] == [{"url": east.url, "site": "east", "state": "cached", "size": len(data),
                                   "bytes": len(data), "live": True}]
    view = fleet(west)

    listed = manage(west, "list-cached", "--all-nodes", "--json")
    assert listed.returncode == 0 and listed.stderr == "", listed.stderr
    assert json.loads(listed.stdout) == view
    table = manage(west, "list-cached", "--all-nodes")
    assert table.returncode == 0, table.stderr
    if FLEET_QUERY_HERE:
        assert [east.url, "east", "live", "cached"] in [line.split()[1:5] for line in table.stdout.splitlines()]

    read = run_imagecache("db", "images", "--db-url", db_url, "--json", env={"IMAGECACHE_NODE_SITE": "west"})
    assert read.returncode == 0 and read.stderr == "", read.stderr
    assert json.loads(read.stdout) == view


def test_the_route_is_for_admins_and_a_node_alone_has_none(nodes, origin) -> None:
    _, west = nodes
    assert west.request("GET", "/v2/cache/nodes", user="alice").status == 403
    assert west.request("POST", "/v2/cache/nodes", user="admin").status == 405
    alone = origin.request("GET", "/v2/cache/nodes", user="admin")
    assert alone.status == 409 and "Centralized caching is not enabled" in alone.text
