"""The fill's source in isolation: the order of its choices, and resuming at the offset reached.

The index and the peers are fakes here (the driver's side is tested with
PostgreSQL, the reader against real sockets): what is tested is the logic
between them, exhaustively where it is pure.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagecache.cache import PeerSource
from imagecache.metrics import Metrics
from imagecache.peers.origin import origin_reader
from imagecache.peers.reader import PeerFailed
from imagecache.peers.source import FillSource, choose_peers
from tests.unit.peers.doubles import FakeIndex

IMAGE_ID = str(uuid.uuid4())


def peer(name: str, *, filling: bool = False) -> PeerSource:
    return PeerSource(url=f"http://{name}:9292", site="default", filling=filling, size=None, bytes=0)


def test_peers_that_have_the_image_come_first_and_nothing_is_claimed() -> None:
    index = FakeIndex(answers=[[peer("a"), peer("b", filling=True)]])
    assert [p.url for p in choose_peers(index, IMAGE_ID)] == ["http://a:9292", "http://b:9292"]
    assert index.calls == ["peer_sources"]


def test_without_peers_the_node_claims_the_cluster_fill_and_the_winner_reads_the_origin() -> None:
    index = FakeIndex(answers=[[]], won=True)
    assert choose_peers(index, IMAGE_ID) == []
    assert index.calls == ["peer_sources", "claim"]


def test_a_lost_claim_reads_the_winner_or_else_the_origin() -> None:
    winner = peer("winner", filling=True)
    index = FakeIndex(answers=[[], [winner]], won=False)
    assert choose_peers(index, IMAGE_ID) == [winner]
    assert index.calls == ["peer_sources", "claim", "peer_sources"]
    died = FakeIndex(answers=[[], []], won=False)
    assert choose_peers(died, IMAGE_ID) == []
    assert died.calls == ["peer_sources", "claim", "peer_sources"]


def test_an_index_that_cannot_answer_is_a_node_alone() -> None:
    broken = FakeIndex(answers=[RuntimeError("db down")], won=RuntimeError("db down"))
    assert choose_peers(broken, IMAGE_ID) == []
    assert broken.calls == ["peer_sources", "claim"]


# -- the source ------------------------------------------------------------------------------


@dataclass
class FakePeers:
    """Peers that each send the image from the offset asked, in ``chunk``-byte pieces, and fail at their
    ``fail_at`` (None: they send it all; ``fail_at`` <= the start: they refuse)."""

    data: bytes
    fail_at: Mapping[str, int | None]
    chunk: int = 1000
    asked: list[tuple[str, int]] = field(default_factory=list)

    def __call__(self, peer: str, image_id: str, *, start: int, size: int | None) -> Iterator[bytes]:
        self.asked.append((peer, start))
        stop = self.fail_at[peer]
        end = len(self.data) if stop is None else max(start, stop)
        for first in range(start, end, self.chunk):
            yield self.data[first:min(first + self.chunk, end)]
        if stop is not None:
            raise PeerFailed(peer, image_id, end, "test")


@dataclass
class FakeOrigin:
    """The app's data answers: 206 from the offset, or (``ignores_range``) 200 with the whole image."""

    data: bytes
    ignores_range: bool = False
    asked: list[int] = field(default_factory=list)

    def __call__(self, start: int) -> tuple[int, Mapping[str, str], Iterable[bytes]]:
        self.asked.append(start)
        if start >= len(self.data):
            return 416, {"Content-Range": f"bytes */{len(self.data)}"}, iter([b"{}"])
        if start == 0 or self.ignores_range:
            return 200, {}, iter([self.data[i:i + 4096] for i in range(0, len(self.data), 4096)])
        headers = {"Content-Range": f"bytes {start}-{len(self.data) - 1}/{len(self.data)}"}
        return 206, headers, iter([self.data[start:]])


def source_of(data: bytes, peers: FakePeers, names: list[str], origin: FakeOrigin, metrics: Metrics,
              *, known_size: bool = True) -> FillSource:
    size = len(data) if known_size else None
    return FillSource(
        IMAGE_ID, size, [peer(name) for name in names], peers,
        origin_reader(origin, IMAGE_ID, size, metrics.upstream_bytes.inc),
        on_peer_bytes=metrics.peer_bytes.inc,
    )


def counted(metrics: Metrics) -> tuple[float, float]:
    return metrics.peer_bytes._value.get(), metrics.upstream_bytes._value.get()


DATA = hashlib.sha512(b"image").digest() * 400  # 25,600 bytes


def test_a_peer_dying_mid_transfer_leaves_the_rest_to_the_origin_from_that_offset() -> None:
    metrics = Metrics()
    peers, origin = FakePeers(DATA, {"http://a:9292": 7000}), FakeOrigin(DATA)
    source = source_of(DATA, peers, ["a"], origin, metrics)
    assert b"".join(source) == DATA
    assert origin.asked == [7000]
    assert source.senders == {"http://a:9292": 7000}
    assert counted(metrics) == (7000, len(DATA) - 7000)


def test_an_origin_that_ignores_the_range_is_read_past_what_the_peer_sent() -> None:
    metrics = Metrics()
    peers, origin = FakePeers(DATA, {"http://a:9292": 7000}), FakeOrigin(DATA, ignores_range=True)
    assert b"".join(source_of(DATA, peers, ["a"], origin, metrics)) == DATA
    assert counted(metrics) == (7000, len(DATA))  # every byte the app sent is an origin byte


def test_the_next_peer_goes_on_where_the_last_one_stopped() -> None:
    metrics = Metrics()
    fail_at = {"http://a:9292": 0, "http://b:9292": 12_000, "http://c:9292": None}
    peers, origin = FakePeers(DATA, fail_at), FakeOrigin(DATA)
    source = source_of(DATA, peers, ["a", "b", "c"], origin, metrics)
    assert b"".join(source) == DATA
    assert peers.asked == [("http://a:9292", 0), ("http://b:9292", 0), ("http://c:9292", 12_000)]
    assert origin.asked == []
    assert source.senders == {"http://b:9292": 12_000, "http://c:9292": len(DATA) - 12_000}
    assert counted(metrics) == (len(DATA), 0)


def test_a_peer_that_sent_every_byte_before_failing_needs_no_origin() -> None:
    peers, origin = FakePeers(DATA, {"http://a:9292": len(DATA)}), FakeOrigin(DATA)
    assert b"".join(source_of(DATA, peers, ["a"], origin, Metrics())) == DATA
    assert origin.asked == []


def test_an_origin_that_refuses_or_ends_early_fails_the_source() -> None:
    def refusing(start: int) -> tuple[int, Mapping[str, str], Iterable[bytes]]:
        return 403, {}, iter([b"no"])

    def short(start: int) -> tuple[int, Mapping[str, str], Iterable[bytes]]:
        return 206, {"Content-Range": f"bytes {start}-{len(DATA) - 1}/{len(DATA)}"}, iter([DATA[start:-1]])

    for origin, why in ((refusing, "403"), (short, "1 bytes early")):
        source = FillSource(IMAGE_ID, len(DATA), [peer("a")], FakePeers(DATA, {"http://a:9292": 100}),
                            origin_reader(origin, IMAGE_ID, len(DATA), lambda n: None))
        with pytest.raises(OSError, match=why):
            b"".join(source)


def test_closing_the_source_closes_what_it_reads() -> None:
    closed: list[str] = []

    def fetch(peer: str, image_id: str, *, start: int, size: int | None) -> Iterator[bytes]:
        try:
            yield DATA[:100]
            yield DATA[100:200]
        finally:
            closed.append(peer)

    source = FillSource(IMAGE_ID, len(DATA), [peer("a")], fetch, lambda start: iter([]))
    assert next(source) == DATA[:100]
    source.close()
    assert closed == ["http://a:9292"]


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(1, 20_000),
    stops=st.lists(st.one_of(st.none(), st.floats(0, 1.2)), max_size=4),
    chunk=st.integers(1, 5000),
    known_size=st.booleans(),
    ignores_range=st.booleans(),
)
def test_any_run_of_failing_peers_gives_the_image_once_and_counts_each_byte_once(
    size: int, stops: list[float | None], chunk: int, known_size: bool, ignores_range: bool
) -> None:
    data = (DATA * (size // len(DATA) + 1))[:size]
    names = [f"p{n}" for n in range(len(stops))]
    # A peer fails at a point of the image (or sends it all); past the end it has sent all there is.
    fail_at = {f"http://{name}:9292": None if stop is None else min(size, int(stop * size))
               for name, stop in zip(names, stops, strict=True)}
    metrics = Metrics()
    peers, origin = FakePeers(data, fail_at, chunk=chunk), FakeOrigin(data, ignores_range=ignores_range)
    source = source_of(data, peers, names, origin, metrics, known_size=known_size)
    assert b"".join(source) == data
    # Each source starts where the last one stopped, and the origin only once no peer is left.
    expected_starts, offset = [], 0
    for name in names:
        expected_starts.append((f"http://{name}:9292", offset))
        stop = fail_at[f"http://{name}:9292"]
        offset = size if stop is None else max(offset, stop)
        if offset >= size and (stop is None or known_size):
            break
    assert peers.asked == expected_starts
    from_peers = sum(source.senders.values())
    if origin.asked:
        assert origin.asked == [from_peers]
    peer_bytes, origin_bytes = counted(metrics)
    assert peer_bytes == from_peers
    if not origin.asked or from_peers >= size:
        assert origin_bytes == 0  # not asked, or asked past the end (a peer of unknown size sent it all)
    else:
        assert origin_bytes == (size if ignores_range else size - from_peers)
    assert all(sent > 0 for sent in source.senders.values())
