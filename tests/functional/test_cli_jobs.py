"""`imagecache clean|prune|prefetch` as cron runs them: the installed command, next to a live server.

The jobs share the cache dir (files, sqlite index, flocks) with the server's
workers, so what a command does shows through the server's own cache API.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from imagecache import ImageCache, Settings
from tests.support.waiting import wait_until

from .conftest import RunningServer, clean_environment

IMAGECACHE = Path(sys.executable).with_name("imagecache")


def imagecache(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed ``imagecache`` entry point, run to completion."""
    return subprocess.run(
        [str(IMAGECACHE), *args], env=clean_environment(env), capture_output=True, text=True, timeout=120, check=False
    )


def create(server: RunningServer, data: bytes) -> str:
    made = server.request("POST", "/v2/images",
                          json_body={"name": "img", "disk_format": "raw", "container_format": "bare"})
    assert made.status == 201, made.text
    image_id = made.json()["id"]
    put = server.request("PUT", f"/v2/images/{image_id}/file", body=data,
                         headers={"Content-Type": "application/octet-stream"})
    assert put.status == 204, put.text
    return str(image_id)


def queue(server: RunningServer, image_id: str) -> None:
    """Queue only, behind the server's back (as a restart leaves what it interrupted).

    The server's own queueing routes start the fetch at once; this queue
    waits for a prefetcher, the command's or the server's periodic one.
    """
    cache = ImageCache(Settings(image_cache_dir=str(server.data_dir / "image-cache")))
    try:
        assert cache.queue_image(image_id)
    finally:
        cache.close()


def cache_state(server: RunningServer) -> dict[str, Any]:
    answer = server.request("GET", "/v2/cache")
    assert answer.status == 200
    body = answer.json()
    return {"cached": {e["image_id"]: e for e in body["cached_images"]}, "queued": body["queued_images"]}


def download(server: RunningServer, image_id: str) -> bytes:
    answer = server.request("GET", f"/v2/images/{image_id}/file")
    assert answer.status == 200
    return answer.body


def wait_cached(server: RunningServer, image_id: str, hits: int = 0) -> dict[str, Any]:
    """The cache entry once it is published with ``hits`` hits (both land just after the last byte)."""
    def entry() -> dict[str, Any] | None:
        found = cache_state(server)["cached"].get(image_id)
        return found if found is not None and found["hits"] >= hits else None

    return wait_until(entry, f"image {image_id} to be cached with {hits} hits", describe=lambda: cache_state(server))


@pytest.fixture
def server(start_server: Any) -> RunningServer:
    """A node whose own periodic prefetcher is an hour away: the command does the fetching."""
    return start_server(auth="none", settings={"prefetcher_interval": 3600.0})


def test_prefetch_caches_what_is_queued_and_the_server_then_hits(server) -> None:
    data = os.urandom(2 << 20)
    image_id = create(server, data)
    queue(server, image_id)
    assert cache_state(server)["queued"] == [image_id]
    done = imagecache("prefetch", "--data-dir", str(server.data_dir))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "fetched 1 image\n"
    state = cache_state(server)
    assert state["queued"] == [] and state["cached"][image_id]["size"] == len(data)
    assert download(server, image_id) == data
    assert wait_cached(server, image_id, hits=1)["hits"] == 1


def test_a_failed_prefetch_exits_1_and_the_image_stays_queued(server) -> None:
    good, corrupt = create(server, os.urandom(100_000)), create(server, os.urandom(100_000))
    stored = server.data_dir / "images" / corrupt
    data = stored.read_bytes()
    stored.write_bytes(bytes([data[0] ^ 0xFF]) + data[1:])  # a changed byte (a zero could be the same one)
    missing = str(uuid.uuid4())
    for image_id in (good, corrupt, missing):
        queue(server, image_id)
    done = imagecache("prefetch", "--data-dir", str(server.data_dir), "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout) == {"fetched": [good], "failed": [corrupt, missing]}
    assert "failed verification" in done.stderr
    state = cache_state(server)
    assert sorted(state["queued"]) == sorted([corrupt, missing]) and list(state["cached"]) == [good]


def test_prefetch_on_a_terminal_draws_progress(server) -> None:
    image_id = create(server, os.urandom(1 << 20))
    queue(server, image_id)
    done = imagecache("prefetch", "--data-dir", str(server.data_dir), env={"TTY_COMPATIBLE": "1", "COLUMNS": "160"})
    assert done.returncode == 0, done.stderr
    assert image_id in done.stdout and "1.0/1.0 MiB" in done.stdout
    assert done.stdout.rstrip().endswith("fetched 1 image")


def test_prune_evicts_least_recently_used_behind_the_server(server) -> None:
    size = 300_000
    first, second = create(server, os.urandom(size)), create(server, os.urandom(size))
    for image_id in (first, second):
        download(server, image_id)
        wait_cached(server, image_id)
    # The hit on first must come strictly later than second's last access.
    second_accessed = cache_state(server)["cached"][second]["last_accessed"]
    wait_until(lambda: time.time() > second_accessed, "the clock to pass the second image's last access")
    download(server, first)  # now second is the least recently used
    wait_cached(server, first, hits=1)
    done = imagecache("prune", "--data-dir", str(server.data_dir), "--image-cache-max-size", str(size), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"files_pruned": 1, "bytes_pruned": size, "cache_size": size, "max_size": size,
                                       "pinned_bytes": 0, "pinned_over_limit": False}
    assert list(cache_state(server)["cached"]) == [first]


def test_clean_removes_invalid_and_stalled_files(tmp_path) -> None:
    cache_dir = tmp_path / "cache"
    for name in ("invalid", "incomplete"):
        (cache_dir / name).mkdir(parents=True)
    invalid = cache_dir / "invalid" / str(uuid.uuid4())
    stalled = cache_dir / "incomplete" / str(uuid.uuid4())
    fresh = cache_dir / "incomplete" / str(uuid.uuid4())
    for path in (invalid, stalled, fresh):
        path.write_bytes(b"left behind")
    os.utime(stalled, (time.time() - 7200,) * 2)
    done = imagecache("clean", "--image-cache-dir", str(cache_dir), "--stall-time", "3600")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "removed 1 invalid and 1 stalled file\n"
    assert not invalid.exists() and not stalled.exists() and fresh.exists()


@pytest.mark.parametrize("command", ["clean", "prune", "prefetch"])
def test_bad_configuration_exits_2_with_one_line(command: str, tmp_path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("image_cache_max_size = [\n")
    done = imagecache(command, "--config", str(config), "--data-dir", str(tmp_path))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("Error: config file") and len(done.stderr.strip().splitlines()) == 1
