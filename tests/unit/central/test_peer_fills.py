"""The library on the central index: a node's fills are visible to its peers while they run.

Two caches (nodes) on one scratch schema; one fills an image from a source
held open at a gate, the other asks the index what it can read, and from
whom.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterator

import pytest

from imagecache import ImageCache
from imagecache.cache import ImageVerificationError
from imagecache.cache.drivers.base import PeerSource
from tests.support.waiting import wait_until

from .pg import table

SIZE = 3 << 20
CHUNK = 1 << 20


def _data() -> bytes:
    block = hashlib.sha256(b"peer fill").digest()
    return (block * (SIZE // len(block) + 1))[:SIZE]


def _pair(make_cache) -> tuple[ImageCache, ImageCache]:  # type: ignore[no-untyped-def]
    a, b = make_cache("node-a", node_site="eu"), make_cache("node-b", node_site="eu")
    for cache in (a, b):
        cache.driver.heartbeat()
    a.driver.peers.progress.interval = 0.05  # type: ignore[attr-defined]
    return a, b


def test_a_fill_is_a_peer_source_while_it_runs_and_a_holder_once_done(make_cache, db_url) -> None:
    a, b = _pair(make_cache)
    data, image_id = _data(), str(uuid.uuid4())
    gate = threading.Event()

    def source() -> Iterator[bytes]:
        yield data[:CHUNK]
        gate.wait(30)  # the origin pauses after the first MiB
        for start in range(CHUNK, SIZE, CHUNK):
            yield data[start:start + CHUNK]

    fill = a.claim_fill(image_id, hashlib.md5(data).hexdigest(), os_hash_value=hashlib.sha512(data).hexdigest(),
                        size=SIZE)
    assert fill is not None
    assert a.claim_cluster_fill(image_id) is True and b.claim_cluster_fill(image_id) is False
    reader = fill.start(source())
    wait_until(lambda: b.peer_sources(image_id) == [PeerSource("http://node-a:9292", "eu", True, SIZE, CHUNK)],
               "node-a filling, one MiB in", describe=lambda: b.peer_sources(image_id))
    gate.set()
    assert b"".join(reader) == data
    reader.close()
    fill.thread.join(30)
    assert b.peer_sources(image_id) == [PeerSource("http://node-a:9292", "eu", False, SIZE, SIZE)]
    assert table(db_url, "fills") == [] and table(db_url, "cluster_fills") == []
    assert b.claim_cluster_fill(image_id) is True  # released with the fill


def test_a_failed_fill_leaves_nothing_for_peers(make_cache, db_url) -> None:
    a, b = _pair(make_cache)
    data, image_id = _data(), str(uuid.uuid4())
    with pytest.raises(ImageVerificationError):
        a.cache_image_iter(image_id, [data[:CHUNK], b"not the image"], hashlib.md5(data).hexdigest(), size=SIZE)
    assert b.peer_sources(image_id) == []
    assert table(db_url, "fills") == []
    assert [(e.url, e.filling) for e in b.fleet()] == []
