"""The peer endpoint sending a fill in progress: a fill the test drives, a real ImageCache in a tmp dir.

The fill's source is a queue the test feeds, so "all but the last byte is
out and the image is not verified yet" is a state the test holds, not a
moment it hopes to catch.
"""

from __future__ import annotations

import os
import threading

import pytest

from imagecache import ImageCache, Settings
from imagecache.cache.fill_size import recorded_size
from imagecache.peers import protocol
from imagecache.peers.endpoint import PeerEndpoint
from imagecache.peers.fill_body import PeerFillBody, PeerResponseCut
from tests.support.waiting import wait_until

from .endpoint_support import DrivenFill, Inner, PeerRead, anyone_reading, make_image, peer_environ

SIZE = 300_000


@pytest.fixture
def cache(tmp_path):
    cache = ImageCache(Settings(image_cache_dir=str(tmp_path / "cache"), image_cache_min_free=0, peer_token="t0k"))
    yield cache
    cache.close()


@pytest.fixture
def endpoint(cache):
    return PeerEndpoint(Inner(), cache, cache.settings, cache.metrics)


def read(endpoint, image_id, **request):
    return PeerRead(endpoint, protocol.image_path(image_id), token="t0k", **request)


def served(cache) -> float:
    return cache.metrics.peer_served_bytes._value.get()


def test_a_fill_is_sent_as_it_grows_and_its_last_byte_only_once_verified(cache, endpoint):
    image = make_image(SIZE)
    fill = DrivenFill(cache, image)
    fill.send(100_000)
    peer = read(endpoint, image.image_id)
    assert peer.status == "200 OK"
    assert peer.headers["content-length"] == str(SIZE)  # the size the fill recorded
    assert peer.headers[protocol.SIZE_HEADER.lower()] == str(SIZE)
    assert peer.headers["cache-status"] == "imagecache; fwd=miss; collapsed"  # the fill in progress, not the file
    wait_until(lambda: len(peer.received) == 100_000, "the bytes on disk to reach the peer")
    fill.send(SIZE)  # every byte is on disk; the source has not ended, so nothing is verified
    wait_until(lambda: len(peer.received) == SIZE - 1, "all but the last byte to reach the peer")
    assert not peer.done.is_set() and not cache.is_cached(image.image_id)
    fill.end()
    assert peer.finish() == image.data and peer.error is None
    assert cache.is_cached(image.image_id)
    assert served(cache) == SIZE


def test_the_worker_can_send_the_fill_from_its_loop(cache, endpoint):
    """What the worker's loop does with the body: runs while it grows, a wait, then a thread for the end."""
    image = make_image(SIZE)
    fill = DrivenFill(cache, image)
    fill.send(SIZE)
    statuses = []
    body = endpoint(peer_environ(protocol.image_path(image.image_id), token="t0k"),
                    lambda status, headers, exc_info=None: statuses.append(status))
    assert isinstance(body, PeerFillBody) and statuses == ["200 OK"]
    try:
        sent, run = 0, body.next_run()
        while isinstance(run, tuple):
            fd, offset, length = run
            assert offset == sent and os.pread(fd, length, offset) == image.data[offset:offset + length]
            sent += length
            body.on_bytes(length)
            run = body.next_run()
        assert (run, sent) == ("wait", SIZE - 1)  # the last byte waits for the verification
        moved = threading.Event()
        waiting = body.call_on_change(moved.set)
        fill.end()
        assert moved.wait(30) or not waiting
        assert body.next_run() == "handoff"  # verified: a thread sends the rest
        rest = [(offset, length) for _fd, offset, length in body.pieces()]
        assert rest == [(SIZE - 1, 1)]
        body.on_bytes(1)
    finally:
        body.close()
    assert cache.is_cached(image.image_id)
    assert served(cache) == SIZE


@pytest.mark.parametrize("offset", [0, 1, 120_000, SIZE - 1])
def test_a_range_of_a_fill_is_206_from_the_offset(cache, endpoint, offset):
    image = make_image(SIZE)
    fill = DrivenFill(cache, image)
    fill.send(50_000)  # the offset may be past what is on disk yet: the peer waits for it
    peer = read(endpoint, image.image_id, Range=f"bytes={offset}-")
    assert peer.status == "206 Partial Content"
    assert peer.headers["content-range"] == f"bytes {offset}-{SIZE - 1}/{SIZE}"
    assert peer.headers["content-length"] == str(SIZE - offset)
    fill.send(SIZE)
    wait_until(lambda: len(peer.received) == SIZE - 1 - offset, "all but the last byte from the offset")
    fill.end()
    assert peer.finish() == image.data[offset:]
    assert served(cache) == SIZE - offset


@pytest.mark.parametrize("offset", [SIZE, SIZE + 1])
def test_an_offset_past_a_fills_size_is_416(cache, endpoint, offset):
    image = make_image(SIZE)
    fill = DrivenFill(cache, image)
    fill.send(1000)
    peer = read(endpoint, image.image_id, Range=f"bytes={offset}-")
    assert peer.status.startswith("416")
    assert peer.headers["content-range"] == f"bytes */{SIZE}"
    peer.finish()
    assert not anyone_reading(cache, image.image_id)  # the reader it opened is closed
    fill.end()


def test_head_of_a_fill_gives_its_headers_and_lets_the_reader_go(cache, endpoint):
    image = make_image(SIZE)
    fill = DrivenFill(cache, image)
    fill.send(1000)
    statuses = []
    body = endpoint(peer_environ(protocol.image_path(image.image_id), token="t0k", method="HEAD"),
                    lambda status, headers, exc_info=None: statuses.append((status, dict(headers))))
    assert body == []
    assert statuses[0][0] == "200 OK" and statuses[0][1]["Content-Length"] == str(SIZE)
    assert not anyone_reading(cache, image.image_id)
    fill.end()


def test_a_fill_that_fails_verification_cuts_the_peer_off_before_its_last_byte(cache, endpoint):
    image = make_image(SIZE)
    wrong = bytearray(image.data)
    wrong[SIZE // 2] ^= 0xFF  # same length: only the hashes can tell
    fill = DrivenFill(cache, image, data=bytes(wrong))
    fill.send(SIZE)
    peer = read(endpoint, image.image_id)
    wait_until(lambda: len(peer.received) == SIZE - 1, "all but the last byte to reach the peer")
    fill.end()
    received = peer.finish()
    assert isinstance(peer.error, PeerResponseCut) and isinstance(peer.error, ConnectionResetError)
    assert len(received) == SIZE - 1  # never the whole (wrong) image
    assert not cache.is_cached(image.image_id)
    assert os.path.exists(cache.layout.invalid_path(image.image_id))


def test_a_fill_that_stops_cuts_the_peer_off_where_it_stopped(cache, endpoint):
    image = make_image(SIZE)
    fill = DrivenFill(cache, image)
    fill.send(100_000)
    peer = read(endpoint, image.image_id)
    wait_until(lambda: len(peer.received) == 100_000, "the bytes on disk to reach the peer")
    fill.fail(OSError("the origin went away"))
    assert peer.finish() == image.data[:100_000]
    assert isinstance(peer.error, PeerResponseCut)
    assert not cache.is_cached(image.image_id)


def test_a_fill_of_unknown_size_is_sent_without_length_its_last_byte_held(cache, endpoint):
    image = make_image(SIZE)
    fill = DrivenFill(cache, image, size=None)
    assert recorded_size(cache.layout, image.image_id) is None
    fill.send(SIZE)
    peer = read(endpoint, image.image_id, Range="bytes=1000-")  # no part of an unknown size: the whole image
    assert peer.status == "200 OK"
    assert "content-length" not in peer.headers and protocol.SIZE_HEADER.lower() not in peer.headers
    wait_until(lambda: len(peer.received) == SIZE - 1, "all but the last byte on disk to reach the peer")
    assert not peer.done.is_set()
    fill.end()
    assert peer.finish() == image.data and peer.error is None


def test_a_fill_of_unknown_size_that_fails_verification_never_gives_its_last_byte(cache, endpoint):
    image = make_image(SIZE)
    fill = DrivenFill(cache, image, size=None, data=image.data[:-1] + bytes([image.data[-1] ^ 1]))
    fill.send(SIZE)
    peer = read(endpoint, image.image_id)
    wait_until(lambda: len(peer.received) == SIZE - 1, "all but the last byte on disk to reach the peer")
    fill.end()
    assert len(peer.finish()) == SIZE - 1
    assert isinstance(peer.error, PeerResponseCut)


def test_a_fill_published_between_the_looks_is_sent_from_its_file(cache, endpoint):
    image = make_image(SIZE)
    fill = DrivenFill(cache, image)
    fill.send(SIZE)
    fill.end()
    peer = read(endpoint, image.image_id)
    assert peer.finish() == image.data
    assert peer.headers["content-length"] == str(SIZE)


def test_a_peer_reading_a_fill_keeps_it_from_being_abandoned(tmp_path):
    settings = Settings(image_cache_dir=str(tmp_path / "cache"), image_cache_min_free=0, peer_token="t0k",
                        fill_abandon_after=0.0)  # given up at its first look without a reader
    cache = ImageCache(settings)
    try:
        endpoint = PeerEndpoint(Inner(), cache, settings, cache.metrics)
        image = make_image(SIZE)
        fill = DrivenFill(cache, image)  # its claimant's own reader is gone already
        peer = read(endpoint, image.image_id)
        for upto in range(50_000, SIZE + 1, 50_000):
            fill.send(upto)  # the fill looks for readers as it writes, and finds the peer
        fill.end()
        assert peer.finish() == image.data
        assert cache.is_cached(image.image_id)
    finally:
        cache.close()
