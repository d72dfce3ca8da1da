"""The fills in progress as the cache directory shows them, and the /proc/locks parser behind the reader count."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from imagecache import ImageCache
from imagecache.cache.fill_source import record_peer_source
from imagecache.cache.in_progress import fills_in_progress, shared_flocks

IMAGE = "6a1f9e3c-5b2d-4c8e-9f0a-1b2c3d4e5f60"

keys = st.tuples(st.integers(0, 4095), st.integers(0, 1 << 20), st.integers(0, 1 << 62))
kinds = st.sampled_from(["READ", "WRITE"])
lock_types = st.sampled_from(["FLOCK", "POSIX", "OFDLCK", "LEASE"])


def _line(number: int, lock_type: str, kind: str, key: tuple[int, int, int], blocked: bool) -> str:
    major, minor, inode = key
    arrow = " ->" if blocked else ""
    return f"{number}:{arrow} {lock_type}  ADVISORY  {kind} {1000 + number} {major:02x}:{minor:02x}:{inode} 0 EOF"


@given(st.lists(st.tuples(lock_types, kinds, keys, st.booleans()), max_size=30))
def test_shared_flocks_count_exactly_the_held_shared_flock_lines(entries) -> None:
    text = "\n".join(_line(n, *entry) for n, entry in enumerate(entries, 1))
    expected: dict[tuple[int, int, int], int] = {}
    for lock_type, kind, key, blocked in entries:
        if lock_type == "FLOCK" and kind == "READ" and not blocked:
            expected[key] = expected.get(key, 0) + 1
    assert dict(shared_flocks(text)) == expected


@given(st.text(max_size=300))
def test_shared_flocks_never_fail_on_odd_text(text: str) -> None:
    counts = shared_flocks(text)
    assert all(count > 0 for count in counts.values())


def test_a_claimed_fill_shows_its_bytes_expected_size_and_readers(cache: ImageCache) -> None:
    claim = cache.claim_fill(IMAGE, size=1000)
    assert claim is not None
    try:
        claim.writer.write(b"x" * 300)
        [fill] = fills_in_progress(cache.layout)
        assert (fill.image_id, fill.bytes, fill.expected_size, fill.readers, fill.source) == (IMAGE, 300, 1000, 0,
                                                                                                "origin")
        reader = cache.follow(IMAGE, 1000)
        assert reader is not None
        try:
            [fill] = fills_in_progress(cache.layout)
            assert fill.readers == (1 if os.path.exists("/proc/locks") else None)
        finally:
            reader.close()
    finally:
        claim.cancel()
    assert fills_in_progress(cache.layout) == []


def test_an_incomplete_file_without_a_writer_is_not_a_fill(cache: ImageCache) -> None:
    with open(cache.layout.incomplete_path(IMAGE), "wb") as fh:
        fh.write(b"left by a crash")
    assert fills_in_progress(cache.layout) == []


def test_a_fill_marked_as_read_from_peers_says_so_until_its_writer_lets_go(cache: ImageCache) -> None:
    claim = cache.claim_fill(IMAGE, size=1000)
    assert claim is not None
    record_peer_source(cache.layout, IMAGE)
    try:
        [fill] = fills_in_progress(cache.layout)
        assert fill.source == "peer"
    finally:
        claim.cancel()
    again = cache.claim_fill(IMAGE, size=1000)
    assert again is not None
    try:
        [fill] = fills_in_progress(cache.layout)
        assert fill.source == "origin"  # the mark went with the fill that made it
    finally:
        again.cancel()
