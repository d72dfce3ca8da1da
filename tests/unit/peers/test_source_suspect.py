"""A peer that lies: its bytes fail the node's verification, nobody gets the wrong image whole,
the peer is distrusted, and the image is filled again from the origin.

End to end at unit level: the cache filter over the embedded image app, a
real cache in a tmp dir, the peer a real HTTP server on loopback sending
one flipped byte; only the central index is a fake.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagecache.cache import FillResult
from imagecache.peers.fills import SUSPECT_FOR
from imagecache.peers.reader import READ_CHUNK
from imagecache.wsgi.bodies import ResponseAborted
from tests.support.waiting import wait_until
from tests.unit.peers.doubles import FakeIndex, Node, download, drain, make_node, peer_at, start_peer
from tests.unit.wsgi.test_fill_paths import upload

DATA = os.urandom((1 << 20) + 999)
WRONG = DATA[:5000] + bytes([DATA[5000] ^ 0x01]) + DATA[5001:]


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    made = make_node(tmp_path, FakeIndex())
    yield made
    made.close()


def test_a_peer_sending_a_flipped_byte_is_marked_and_the_origin_fills_the_image(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    image_id = upload(node.app, DATA)
    gate = threading.Event()
    liar = start_peer(WRONG, gate=gate, held=len(WRONG) - READ_CHUNK)
    node.index.answers = [[peer_at(liar)]]
    results: dict[str, tuple[bytes, BaseException | None]] = {}
    try:
        claimant = download(node.app, image_id, token="caller-token")
        assert claimant.status == 200
        # The peer's first bytes are in: a second client follows the same fill.
        incomplete = node.cache.layout.incomplete_path(image_id)
        wait_until(lambda: os.path.exists(incomplete) and os.path.getsize(incomplete) >= READ_CHUNK,
                   "the peer's bytes to arrive")
        follower = download(node.app, image_id, token="other-token")
        assert follower.status == 200 and node.metrics.fill_followers._value.get() == 1
        threads = [threading.Thread(target=lambda n=name, a=answer: results.__setitem__(n, drain(a)))
                   for name, answer in (("claimant", claimant), ("follower", follower))]
        for thread in threads:
            thread.start()
        with caplog.at_level(logging.WARNING, logger="imagecache.peers"):
            gate.set()
            for thread in threads:
                thread.join(30)
            wait_until(lambda: node.cache.is_cached(image_id), "the refill from the origin to publish")
    finally:
        gate.set()
        liar.stop()
    # Nobody got the wrong image whole: each response was cut off before its last byte.
    for got, error in results.values():
        assert isinstance(error, ResponseAborted)
        assert len(got) == len(DATA) - 1
    # The bad file went to invalid/, the right one is cached.
    with open(node.cache.layout.invalid_path(image_id), "rb") as fh:
        assert fh.read() == WRONG
    with node.cache.open_for_read(image_id) as fh:
        assert fh.read() == DATA
    # The peer is distrusted, said so once, counted once; the refill read the origin alone, as the caller.
    assert node.index.suspects == [(liar.url, SUSPECT_FOR)] and SUSPECT_FOR == 600
    warnings = [r.getMessage() for r in caplog.records if "failed verification with bytes from peer" in r.getMessage()]
    assert len(warnings) == 1 and liar.url in warnings[0] and image_id in warnings[0]
    assert node.peer_fills("suspect") == 1 and node.peer_fills("completed") == node.peer_fills("failed") == 0
    assert node.origin.data_requests == [(None, "caller-token")]
    assert node.counted() == (len(DATA), len(DATA))
    assert len(liar.requests) == 1
    wait_until(lambda: node.metrics.fills.labels(result=FillResult.COMPLETED.value)._value.get() == 1,
               "the refill to be counted")
    assert node.metrics.fills.labels(result="failed")._value.get() == 1
    # The clients' retries are hits now.
    assert drain(download(node.app, image_id)) == (DATA, None)
    assert node.index.calls == ["peer_sources", "mark_suspect"]


def test_a_retry_during_the_refill_follows_it(node: Node) -> None:
    image_id = upload(node.app, DATA)
    liar = start_peer(WRONG)
    node.index.answers = [[peer_at(liar)]]
    try:
        got, error = drain(download(node.app, image_id))
    finally:
        liar.stop()
    assert isinstance(error, ResponseAborted) and len(got) == len(DATA) - 1
    # At once, as a client would: the refill is in progress (or done), never a second peer read.
    assert drain(download(node.app, image_id)) == (DATA, None)
    assert node.index.calls == ["peer_sources", "mark_suspect"] and len(liar.requests) == 1
    wait_until(lambda: node.cache.is_cached(image_id), "the refill to publish")


def test_a_refill_that_fails_too_marks_nobody_else(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    """The origin itself disagrees with its metadata: the refill fails verification, with no peer to blame."""
    image_id = upload(node.app, DATA)
    liar = start_peer(WRONG)
    node.index.answers = [[peer_at(liar)]]
    # The origin's metadata promising other bytes stands in for a corrupt origin store.
    original = node.app.source.metadata

    def lying_metadata(environ, image_id):  # type: ignore[no-untyped-def]
        meta = original(environ, image_id)
        if meta.image is None:
            return meta
        return type(meta)(meta.status, {**meta.image, "os_hash_value": "0" * 128}, meta.response)

    monkeypatch.setattr(node.app.source, "metadata", lying_metadata)
    try:
        _, error = drain(download(node.app, image_id))
    finally:
        liar.stop()
    assert isinstance(error, ResponseAborted)
    wait_until(lambda: node.metrics.fills.labels(result="failed")._value.get() == 2, "the refill to fail too")
    assert node.index.suspects == [(liar.url, SUSPECT_FOR)]
    assert node.peer_fills("suspect") == 1
    assert not node.cache.is_cached(image_id)
