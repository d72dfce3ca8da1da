"""The order a fill tries its peers in (``order_sources``), for every mix of peers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from imagecache.cache.drivers.base import PeerSource
from imagecache.cache.drivers.central_peers import order_sources

SITES = ["eu", "us", "ap"]

sources = st.builds(
    PeerSource,
    url=st.sampled_from([f"http://n{k}:9292" for k in range(6)]),
    site=st.sampled_from(SITES),
    filling=st.booleans(),
    size=st.one_of(st.none(), st.integers(min_value=0, max_value=1 << 40)),
    bytes=st.integers(min_value=0, max_value=1 << 40),
)
found = st.lists(sources, max_size=15)


def _key(source: PeerSource, site: str) -> tuple[bool, bool, int]:
    return source.site != site, source.filling, -source.bytes


@given(found, st.sampled_from(SITES), st.text(max_size=10))
def test_same_site_first_then_holders_then_most_bytes(peers: list[PeerSource], site: str, reader: str) -> None:
    ordered = order_sources(peers, site, reader)
    keys = [_key(source, site) for source in ordered]
    assert keys == sorted(keys)


@given(found, st.sampled_from(SITES), st.text(max_size=10))
def test_each_peer_once_with_its_best_entry(peers: list[PeerSource], site: str, reader: str) -> None:
    ordered = order_sources(peers, site, reader)
    assert sorted(s.url for s in ordered) == sorted({s.url for s in peers})
    for source in ordered:
        entries = [p for p in peers if p.url == source.url]
        assert source in entries
        assert _key(source, site) == min(_key(p, site) for p in entries)


@given(found, st.sampled_from(SITES), st.text(max_size=10), st.randoms(use_true_random=False))
def test_the_order_the_index_answers_in_does_not_matter(peers, site, reader, rnd) -> None:  # type: ignore[no-untyped-def]
    shuffled = list(peers)
    rnd.shuffle(shuffled)
    assert order_sources(shuffled, site, reader) == order_sources(peers, site, reader)


def test_readers_spread_over_equal_holders() -> None:
    """Holders of the whole image are equal: different readers must not all pick the same one."""
    holders = [PeerSource(f"http://h{k}:9292", "eu", False, 100, 100) for k in range(4)]
    firsts = {order_sources(holders, "eu", f"http://reader{r}:9292")[0].url for r in range(40)}
    assert len(firsts) > 1


def test_one_url_with_two_sites_orders_the_same_whichever_comes_first() -> None:
    """Found by hypothesis: entries equal but for a site neither reader shares tied, so input order decided."""
    us, eu = (PeerSource("http://n0:9292", name, False, 100, 100) for name in ("us", "eu"))
    assert order_sources([us, eu], "asia") == order_sources([eu, us], "asia")
