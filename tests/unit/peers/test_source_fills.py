"""A miss with peer fill on, in-process: the cache filter, a real cache, peers on loopback, a fake index.

The index is a fake (the central driver's answers are the driver's tests');
the peers are real HTTP servers, and every byte goes through the node's own
fill and its verification.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagecache import ImageCache
from imagecache.http.context import RequestContext
from imagecache.wsgi.cache_filter import CacheFilter
from tests.support.waiting import wait_until
from tests.unit.central.pg import central_settings, scratch_schema
from tests.unit.peers.doubles import FakeIndex, Node, download, drain, make_node, peer_at, start_peer
from tests.unit.upstream_helpers import Upstream
from tests.unit.wsgi.test_fill_paths import upload

DATA = os.urandom((2 << 20) + 4321)


@pytest.fixture
def index() -> FakeIndex:
    return FakeIndex()


@pytest.fixture
def node(tmp_path: Path, index: FakeIndex) -> Iterator[Node]:
    made = make_node(tmp_path, index)
    yield made
    made.close()


@pytest.fixture
def peer() -> Iterator[Upstream]:
    server = start_peer(DATA)
    yield server
    server.stop()


def cached_bytes(node: Node, image_id: str) -> bytes:
    wait_until(lambda: node.cache.is_cached(image_id), "the fill to publish")
    with node.cache.open_for_read(image_id) as fh:
        return fh.read()


def test_a_miss_fills_from_a_peer_without_reading_the_origins_data(node: Node, peer: Upstream) -> None:
    image_id = upload(node.app, DATA)
    node.index.answers = [[peer_at(peer)]]
    answer = download(node.app, image_id)
    assert answer.status == 200 and answer.header("Content-Length") == str(len(DATA))
    assert drain(answer) == (DATA, None)
    assert cached_bytes(node, image_id) == DATA
    assert node.origin.data_requests == []
    assert node.index.calls == ["peer_sources"]
    assert node.counted() == (len(DATA), 0)
    wait_until(lambda: node.peer_fills("completed") == 1, "the peer fill to be counted")
    assert (node.peer_fills("failed"), node.peer_fills("suspect")) == (0, 0)


def test_a_peer_dying_mid_transfer_leaves_the_rest_to_the_origin(node: Node) -> None:
    image_id = upload(node.app, DATA)
    cut_at = (1 << 20) + 777
    dying = start_peer(DATA, cut_at=cut_at)
    try:
        node.index.answers = [[peer_at(dying)]]
        assert drain(download(node.app, image_id, token="tok-1")) == (DATA, None)
    finally:
        dying.stop()
    assert cached_bytes(node, image_id) == DATA
    # The origin is asked for the rest only, as the caller.
    assert node.origin.data_requests == [(f"bytes={cut_at}-", "tok-1")]
    assert node.counted() == (cut_at, len(DATA) - cut_at)
    wait_until(lambda: node.peer_fills("completed") == 1, "the peer fill to be counted")


def test_a_refusing_peer_is_passed_over_for_the_next(node: Node, peer: Upstream) -> None:
    image_id = upload(node.app, DATA)
    gone = Upstream()
    gone.stop()  # nobody listens there any more
    node.index.answers = [[peer_at(gone), peer_at(peer)]]
    assert drain(download(node.app, image_id)) == (DATA, None)
    assert cached_bytes(node, image_id) == DATA
    assert node.origin.data_requests == [] and node.counted() == (len(DATA), 0)


def test_a_lost_claim_reads_the_winner(node: Node, peer: Upstream) -> None:
    image_id = upload(node.app, DATA)
    node.index.answers, node.index.won = [[], [peer_at(peer, filling=True)]], False
    assert drain(download(node.app, image_id)) == (DATA, None)
    assert node.index.calls == ["peer_sources", "claim", "peer_sources"]
    assert node.origin.data_requests == [] and len(peer.requests) == 1


def test_the_cluster_claims_winner_reads_the_origin_as_without_peers(node: Node, peer: Upstream) -> None:
    image_id = upload(node.app, DATA)
    node.index.answers, node.index.won = [[]], True
    assert drain(download(node.app, image_id, token="tok-2")) == (DATA, None)
    assert cached_bytes(node, image_id) == DATA
    assert node.index.calls == ["peer_sources", "claim"]
    assert node.origin.data_requests == [(None, "tok-2")] and peer.requests == []
    assert node.counted() == (0, len(DATA))
    assert [node.peer_fills(r) for r in ("completed", "failed", "suspect")] == [0, 0, 0]  # no peer fill


def test_a_caller_who_may_not_see_the_image_asks_no_peer(node: Node, peer: Upstream) -> None:
    image_id = upload(node.app, DATA)  # private to project p1
    node.index.answers = [[peer_at(peer)]]
    stranger = RequestContext(project_id="p2", roles=("member",))
    answer = download(node.app, image_id, context=stranger)
    assert answer.status == 404
    answer.close()
    assert node.index.calls == [] and peer.requests == []
    assert not node.cache.is_cached(image_id) and not node.cache.is_being_cached(image_id)


def test_followers_on_the_node_tail_the_fill_from_a_peer(node: Node, peer: Upstream) -> None:
    image_id = upload(node.app, DATA)
    node.index.answers = [[peer_at(peer)]] * 3
    answers = [download(node.app, image_id) for _ in range(3)]
    assert [drain(answer) for answer in answers] == [(DATA, None)] * 3
    assert len(peer.requests) == 1 and node.index.calls == ["peer_sources"]
    assert node.counted() == (len(DATA), 0)


def test_peer_fill_is_built_only_when_it_is_on(tmp_path: Path) -> None:
    """Off (no central index or no token): the miss path is the one without peers."""
    from imagecache import Settings

    alone = ImageCache(Settings(data_dir=str(tmp_path / "alone"), peer_token="s3cret"))
    try:
        assert CacheFilter.for_app(lambda e, s: [], alone, alone.settings).peers is None
    finally:
        alone.close()
    with scratch_schema() as url:
        from imagecache.cache.layout import CacheLayout

        layout = CacheLayout(str(tmp_path / "central" / "image-cache"))
        on = central_settings(url, layout, node_url="http://node1.example:9292", peer_token="s3cret")
        cache = ImageCache(on)
        try:
            assert CacheFilter.for_app(lambda e, s: [], cache, on).peers is not None
            off = on.replace(peer_fill=False)
            assert CacheFilter.for_app(lambda e, s: [], cache, off).peers is None
        finally:
            cache.close()


def test_a_peer_fill_that_cannot_finish_counts_as_failed(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    """The peer dies and the origin will not send the rest: the download breaks visibly, nothing is cached."""
    image_id = upload(node.app, DATA)
    dying = start_peer(DATA, cut_at=1000)
    node.index.answers = [[peer_at(dying)]]

    def busy(environ, image_id, *, start=0):  # type: ignore[no-untyped-def]
        return 503, {"Retry-After": "5"}, iter([b"busy"])

    monkeypatch.setattr(node.app.source, "data", busy)
    try:
        got, error = drain(download(node.app, image_id))
    finally:
        dying.stop()
    assert got == DATA[:1000] and isinstance(error, OSError) and "503" in str(error)
    wait_until(lambda: node.peer_fills("failed") == 1, "the failed peer fill to be counted")
    assert node.peer_fills("completed") == node.peer_fills("suspect") == 0
    assert not node.cache.is_cached(image_id) and node.index.suspects == []
