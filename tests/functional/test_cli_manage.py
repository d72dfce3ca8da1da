"""`imagecache manage ...` as a subprocess against a live ``--auth tokens`` node.

Each command's output is checked, and so is the node's state through its own
v2 cache API.  One node serves the whole module (its periodic jobs held off,
so the queue is the tests' alone); every test starts with an empty cache and
queue.  Each subprocess costs about 0.3 s, so the tests run few of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.waiting import wait_until

from .conftest import RunningServer, clean_environment, free_port
from .fake_keystone import FakeKeystone

FORBIDDEN = "You are not permitted to manage the image cache."
#: What the developer's shell may hold and the commands would otherwise pick up.
NO_CREDENTIALS = dict.fromkeys(
    ("OS_AUTH_TOKEN", "OS_TOKEN", "OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME",
     "OS_TENANT_NAME", "OS_AUTH_STRATEGY", "OS_REGION_NAME", "GLANCE_CLIENT_CA_FILE",
     "GLANCE_CLIENT_CERT_FILE", "GLANCE_CLIENT_KEY_FILE"),
    "",
)


def manage(
    port: int, *args: str, token: str | None = None, answers: str | None = None, env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``imagecache manage --port PORT [--os-auth-token TOKEN] ARGS``, run to completion."""
    argv = [sys.executable, "-m", "imagecache.cli", "manage", "--port", str(port), "--timeout", "30"]
    if token is not None:
        argv += ["--os-auth-token", token]
    return subprocess.run(
        [*argv, *args],
        env=clean_environment({**NO_CREDENTIALS, **(env or {})}),
        input=answers,
        stdin=subprocess.DEVNULL if answers is None else None,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def as_admin(server: RunningServer, *args: str, **options: Any) -> subprocess.CompletedProcess[str]:
    assert server.tokens is not None
    return manage(server.port, *args, token=server.tokens.admin, **options)


def cache_state(server: RunningServer) -> dict[str, Any]:
    answer = server.request("GET", "/v2/cache", user="admin")
    assert answer.status == 200, answer.text
    body = answer.json()
    return {"cached": {e["image_id"]: e for e in body["cached_images"]}, "queued": sorted(body["queued_images"])}


def cached_image(server: RunningServer, data: bytes) -> str:
    """Upload an image and download it once; its id once the node lists it as cached."""
    made = server.request("POST", "/v2/images", user="admin", json_body={
        "name": "manage-test", "disk_format": "raw", "container_format": "bare"})
    assert made.status == 201, made.text
    image_id = str(made.json()["id"])
    put = server.request("PUT", f"/v2/images/{image_id}/file", user="admin", body=data,
                         headers={"Content-Type": "application/octet-stream"})
    assert put.status == 204, put.text
    assert server.request("GET", f"/v2/images/{image_id}/file", user="admin").body == data
    wait_until(lambda: image_id in cache_state(server)["cached"], f"image {image_id} to be cached")
    return image_id


def queued(server: RunningServer, *ids: str) -> None:
    for image_id in ids:
        assert server.request("PUT", f"/v1/queued_images/{image_id}", user="admin").status == 200


@pytest.fixture(scope="module")
def tokens_server(start_module_server: Any) -> RunningServer:
    """This module's ``--auth tokens`` node, its periodic jobs held off so the queue stays as the tests left it."""
    quiet = {"prefetcher_interval": 86400, "cleaner_interval": 86400, "pruner_interval": 86400}
    return start_module_server(auth="tokens", settings=quiet)


@pytest.fixture
def node(tokens_server: RunningServer) -> Iterator[RunningServer]:
    """The module's node with an empty cache and queue."""
    cleared = tokens_server.request("DELETE", "/v2/cache", user="admin")
    assert cleared.status == 204, cleared.text
    yield tokens_server


# -- the commands ------------------------------------------------------------------------


def test_list_cached_as_a_table_and_as_json(node: RunningServer) -> None:
    first, second = cached_image(node, os.urandom(64 << 10)), cached_image(node, os.urandom(3 << 20))
    table = as_admin(node, "list-cached")
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line.split() for line in table.stdout.splitlines()[2:]}
    assert set(rows) == {first, second}
    assert rows[first][1:4] == ["64.0", "KiB", "0"] and rows[second][1:4] == ["3.0", "MiB", "0"]

    listed = as_admin(node, "--doc-root", "/v2", "list-cached", "--json")
    assert listed.returncode == 0 and listed.stderr == ""
    assert {entry["image_id"]: entry for entry in json.loads(listed.stdout)} == cache_state(node)["cached"]


def test_queue_list_and_unqueue(node: RunningServer) -> None:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    done = as_admin(node, "queue-image", first, "not-a-uuid", second)
    assert done.returncode == 1  # one id failed; the others were still queued
    assert done.stdout.splitlines() == [f"Queued image {first} for caching", f"Queued image {second} for caching"]
    assert done.stderr == (
        "Could not queue image not-a-uuid: 400 Bad Request: Invalid image id: an image id is a UUID.\n"
    )
    assert cache_state(node)["queued"] == sorted([first, second])

    listed = as_admin(node, "--json", "list-queued")
    assert listed.returncode == 0 and sorted(json.loads(listed.stdout)) == sorted([first, second])

    removed = as_admin(node, "delete-queued-image", first)
    assert removed.returncode == 0 and removed.stdout == f"Deleted queued image {first}\n"
    assert cache_state(node)["queued"] == [second]


def test_delete_cached_image(node: RunningServer) -> None:
    kept, dropped = cached_image(node, os.urandom(32 << 10)), cached_image(node, os.urandom(32 << 10))
    done = as_admin(node, "--json", "delete-cached-image", dropped)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"deleted": [dropped], "failed": []}
    assert list(cache_state(node)["cached"]) == [kept]
    assert not (node.data_dir / "image-cache" / dropped).exists()


def test_delete_all_asks_first_and_force_does_not(node: RunningServer) -> None:
    image_id = cached_image(node, os.urandom(32 << 10))
    queued(node, str(uuid.uuid4()))

    declined = as_admin(node, "delete-all-cached-images", answers="n\n")
    assert declined.returncode == 1 and declined.stdout == ""
    assert declined.stderr.startswith(f"Delete all cached images on 127.0.0.1:{node.port}? [y/N]: ")
    assert declined.stderr.endswith("Error: nothing deleted (--force deletes without asking)\n")
    assert list(cache_state(node)["cached"]) == [image_id]

    forced = as_admin(node, "delete-all-cached-images", "--force")
    assert forced.returncode == 0 and forced.stdout == "Deleted 1 cached image.\n" and forced.stderr == ""
    emptied = as_admin(node, "--json", "delete-all-queued-images", "-f")
    assert emptied.returncode == 0 and json.loads(emptied.stdout) == {"num_deleted": 1}
    assert cache_state(node) == {"cached": {}, "queued": []}


# -- failures: one line on stderr, exit 1, nothing on stdout ----------------------------------------


@pytest.mark.parametrize("who", ["bad token", "member", "unreachable"])
def test_failures_are_one_line_and_exit_1(tokens_server: RunningServer, who: str) -> None:
    assert tokens_server.tokens is not None
    port, token, expected = {
        "bad token": (tokens_server.port, "not-a-known-token",
                      "Error: 401 Unauthorized: The request you have made requires authentication"),
        "member": (tokens_server.port, tokens_server.tokens.alice, f"Error: 403 Forbidden: {FORBIDDEN}"),
        "unreachable": (free_port(), tokens_server.tokens.admin, "Error: cannot connect to 127.0.0.1:"),
    }[who]
    done = manage(port, "--json", "list-queued", token=token)
    assert done.returncode == 1
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith(expected), done.stderr


def test_a_token_from_keystone_in_the_environment(node: RunningServer) -> None:
    assert node.tokens is not None
    image_id = str(uuid.uuid4())
    queued(node, image_id)
    with FakeKeystone(tokens=[node.tokens.admin], image_url=node.url) as keystone:
        env = {"OS_AUTH_URL": keystone.url + "/v3", "OS_USERNAME": keystone.username,
               "OS_PASSWORD": keystone.password, "OS_PROJECT_NAME": keystone.project}
        done = manage(node.port, "list-queued", "--json", env=env)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == [image_id]
        assert keystone.token_requests == 1


@pytest.mark.parametrize("as_json", [False, True])
def test_all_nodes_on_a_node_alone_says_there_is_no_fleet_here(node: RunningServer, as_json: bool) -> None:
    cached_image(node, os.urandom(32 << 10))
    done = as_admin(node, *(["--json"] if as_json else []), "list-cached", "--all-nodes")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        f"Error: 127.0.0.1:{node.port} has no central index, so it knows of no other nodes: --all-nodes needs a "
        "node whose image_cache_driver is central\n"
    )
    plain = as_admin(node, "list-cached")  # without --all-nodes, the node's own cache as before
    assert plain.returncode == 0 and len(plain.stdout.splitlines()) == 3
