"""python-glanceclient's own commands against our server, unchanged.

HOME points at an empty directory: glanceclient caches schemas under
~/.glanceclient, which would hide a missing endpoint.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.waiting import wait_until

from .conftest import RunningServer

GLANCE = os.path.join(os.path.dirname(sys.executable), "glance")


@pytest.fixture
def glance(cache_node: RunningServer, tmp_path):
    home = tmp_path / "home"
    home.mkdir()

    def run(*args: str, user: str = "admin", check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            "OS_IMAGE_URL": cache_node.url,
            "OS_AUTH_TOKEN": cache_node.tokens.token(user),
        }
        done = subprocess.run([GLANCE, *args], check=False, env=env, capture_output=True, text=True, timeout=120)
        if check:
            assert done.returncode == 0, f"glance {' '.join(args)}: {done.stdout}{done.stderr}"
        return done

    return run


def field(table: str, name: str) -> str:
    """A value from glanceclient's ``| Property | Value |`` table."""
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] == name:
            return cells[1]
    raise AssertionError(f"no {name!r} in:\n{table}")


def cached_ids(server: RunningServer) -> set[str]:
    return {e["image_id"] for e in server.request("GET", "/v2/cache", user="admin").json()["cached_images"]}


def test_glanceclient_image_and_cache_commands(glance, cache_node, tmp_path):
    source = tmp_path / "disk.raw"
    source.write_bytes(os.urandom(2 << 20))
    made = glance("--os-image-api-version", "2", "image-create", "--name", "gc", "--disk-format", "raw",
                  "--container-format", "bare", "--file", str(source), user="alice").stdout
    image_id = field(made, "id")
    assert field(made, "status") == "active" and int(field(made, "size")) == source.stat().st_size
    assert image_id in glance("image-list", user="alice").stdout
    assert "active" in glance("image-show", image_id, user="alice").stdout

    for n in range(2):  # a miss, then a hit: glanceclient verifies the bytes itself
        out = tmp_path / f"out{n}"
        glance("image-download", "--file", str(out), image_id, user="alice")
        assert out.read_bytes() == source.read_bytes()
        wait_until(lambda: image_id in cached_ids(cache_node), f"image {image_id} to be cached")

    assert image_id in glance("cache-list").stdout
    assert glance("cache-list", user="alice", check=False).returncode != 0  # admin only

    glance("cache-delete", image_id)
    assert image_id not in cached_ids(cache_node)
    glance("cache-queue", image_id)  # queued, then prefetched promptly
    wait_until(lambda: image_id in cached_ids(cache_node), f"queued image {image_id} to be prefetched")
    glance("cache-clear", "--target", "cache")
    assert cached_ids(cache_node) == set()
    created = glance("image-create", "--name", "q", "--disk-format", "raw", "--container-format", "bare")
    other = field(created.stdout, "id")
    cache_node.request("PUT", f"/v1/queued_images/{other}", user="admin")
    glance("cache-clear", "--target", "queue")
    assert cache_node.request("GET", "/v2/cache", user="admin").json()["queued_images"] == []
    glance("cache-clean")
    glance("cache-prune")
    glance("image-delete", image_id, user="alice")
    assert glance("image-show", image_id, user="alice", check=False).returncode != 0
