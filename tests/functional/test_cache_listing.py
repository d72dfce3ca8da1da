"""The cache listing of a few thousand entries through a real ``imagecache serve``: streamed, complete, in order."""

from __future__ import annotations

import http.client
import json
import socket
import uuid
from pathlib import Path

import pytest

from imagecache import ImageCache, Settings
from imagecache.cache import CachedImage
from imagecache.cache.drivers.base import MANUAL

from .conftest import RunningServer

ENTRIES = 3000
PIN_EVERY = 7
FILE_SIZE = 8


def fill(data_dir: Path) -> list[CachedImage]:
    """Files in the layout and their rows, put straight into the index (no downloads); every 7th pinned."""
    cache_dir = data_dir / "image-cache"
    cache_dir.mkdir(parents=True)
    images = [
        CachedImage(str(uuid.uuid4()), FILE_SIZE, hits=i % 5, last_accessed=1_700_000_000.0 + i / 3,
                    last_modified=1_600_000_000.0 + i)
        for i in range(ENTRIES)
    ]
    for image in images:
        (cache_dir / image.image_id).write_bytes(b"x" * FILE_SIZE)
    cache = ImageCache(Settings(data_dir=str(data_dir), image_cache_dir=str(cache_dir)))
    try:
        cache.driver.add_many(images)
        for image in images[::PIN_EVERY]:
            cache.driver.pin(image.image_id, MANUAL)
    finally:
        cache.close()
    return images


@pytest.fixture(scope="module")
def listed(start_module_server, tmp_path_factory) -> tuple[RunningServer, list[CachedImage]]:
    data_dir = tmp_path_factory.mktemp("listing") / "data"
    images = fill(data_dir)
    return start_module_server(auth="tokens", data_dir=data_dir), images


def test_every_entry_is_listed_newest_first_with_its_pin(listed) -> None:
    server, images = listed
    answer = server.request("GET", "/v2/cache", user="admin")
    assert answer.status == 200 and answer.headers["content-type"] == "application/json"
    document = answer.json()
    assert list(document) == ["cached_images", "queued_images"] and document["queued_images"] == []
    entries = document["cached_images"]
    assert len(entries) == ENTRIES
    pinned = {image.image_id for image in images[::PIN_EVERY]}
    expected = [
        {"image_id": image.image_id, "hits": image.hits, "last_accessed": image.last_accessed,
         "last_modified": image.last_modified, "size": FILE_SIZE, "pinned": image.image_id in pinned}
        for image in reversed(images)  # the most recently accessed first
    ]
    assert entries == expected


def test_the_listing_is_chunked_and_the_connection_kept_alive(listed) -> None:
    server, _ = listed
    headers = server.headers("admin")
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        connection.request("GET", "/v2/cache", headers=headers)
        first = connection.getresponse()
        body = first.read()
        assert first.status == 200 and first.getheader("Transfer-Encoding") == "chunked"
        assert first.getheader("Content-Length") is None and not first.will_close
        connection.request("GET", "/v1/cached_images", headers=headers)  # the same connection again
        legacy = connection.getresponse()
        assert legacy.status == 200
        assert json.loads(legacy.read())["cached_images"] == json.loads(body)["cached_images"]
    finally:
        connection.close()


def test_an_http_1_0_client_reads_the_listing_to_the_close(listed) -> None:
    server, _ = listed
    token = server.headers("admin")["X-Auth-Token"]
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        sock.sendall(f"GET /v2/cached_images HTTP/1.0\r\nX-Auth-Token: {token}\r\n\r\n".encode())
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") or head.startswith(b"HTTP/1.1 200")
    assert b"chunked" not in head.lower()
    assert len(json.loads(body)["cached_images"]) == ENTRIES
