"""image_cache_verify on real servers: which metadata a fill is held to, under strongest and all.

The image service cannot be told to state a wrong digest over its API (it
computes them on upload), so each test edits the stored metadata in the
running server's own images.db, as a database the image service trusts
might say it: the server reads it as it reads any image.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import sqlite3
from typing import Any

import pytest

from tests.support.waiting import wait_until

from .conftest import RunningServer
from .test_cache_http import cache_listing, create, wait_cached
from .test_fills import MiB, metric, metrics


@pytest.fixture(scope="module", params=["strongest", "all"])
def node(request: pytest.FixtureRequest, start_module_server: Any) -> RunningServer:
    server: RunningServer = start_module_server(auth="none", workers=1, image_cache_verify=request.param)
    server.mode = request.param  # type: ignore[attr-defined]
    return server


def state(server: RunningServer, image_id: str, **columns: str | None) -> None:
    """Set the image's metadata columns in the server's image database."""
    assignments = ", ".join(f"{name} = ?" for name in columns)
    with contextlib.closing(sqlite3.connect(os.path.join(server.data_dir, "images.db"), timeout=30)) as db:
        db.execute(f"UPDATE images SET {assignments} WHERE id = ?", (*columns.values(), image_id))
        db.commit()


def download(server: RunningServer, image_id: str) -> bytes | None:
    """The whole body, or None when the transfer was cut off (the fill failed verification)."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=60)
    try:
        connection.request("GET", f"/v2/images/{image_id}/file")
        answer = connection.getresponse()
        assert answer.status == 200
        try:
            return answer.read()
        except (http.client.IncompleteRead, ConnectionError):
            return None
    finally:
        connection.close()


def failed_fills(server: RunningServer) -> float:
    return metric(metrics(server), "imagecache_not_stored_total", reason="verify-failed")


def assert_cached(server: RunningServer, image_id: str, data: bytes) -> dict:
    assert download(server, image_id) == data
    return wait_cached(server, image_id)


def assert_rejected(server: RunningServer, image_id: str, failed_before: float) -> None:
    assert download(server, image_id) is None  # cut off: never a whole wrong image
    wait_until(lambda: failed_fills(server) == failed_before + 1, "the failed verification to be counted")
    assert image_id not in cache_listing(server)
    assert os.path.exists(os.path.join(server.data_dir, "image-cache", "invalid", image_id))


def test_a_right_multihash_with_a_wrong_md5_is_cached_only_under_strongest(node: RunningServer) -> None:
    data = os.urandom(2 * MiB)
    image_id = create(node, "alice", data)
    state(node, image_id, checksum="0" * 32)
    before = failed_fills(node)
    if node.mode == "strongest":  # type: ignore[attr-defined]
        entry = assert_cached(node, image_id, data)
        assert entry["size"] == len(data)
    else:
        assert_rejected(node, image_id, before)


def test_a_wrong_multihash_is_rejected_in_both_modes(node: RunningServer) -> None:
    data = os.urandom(2 * MiB)
    image_id = create(node, "alice", data)
    state(node, image_id, os_hash_value="0" * 128)
    assert_rejected(node, image_id, failed_fills(node))


@pytest.mark.parametrize("md5", ["right", "wrong"])
def test_with_only_md5_offered_md5_is_checked(node: RunningServer, md5: str) -> None:
    data = os.urandom(2 * MiB)
    image_id = create(node, "alice", data)
    checksum = hashlib.md5(data).hexdigest() if md5 == "right" else "0" * 32
    state(node, image_id, checksum=checksum, os_hash_algo=None, os_hash_value=None)
    before = failed_fills(node)
    if md5 == "right":
        assert_cached(node, image_id, data)
    else:
        assert_rejected(node, image_id, before)


def test_with_no_digest_offered_the_size_is_checked_and_the_image_cached(node: RunningServer) -> None:
    data = os.urandom(2 * MiB)
    image_id = create(node, "alice", data)
    state(node, image_id, checksum=None, os_hash_algo=None, os_hash_value=None)
    entry = assert_cached(node, image_id, data)
    assert entry["size"] == len(data)
