"""The peer endpoint's pure rules: its path, its token, its one form of Range (exhaustively, with hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagecache.http import ranges
from imagecache.peers import protocol

ID = "0b6e3c2e-6a3f-4f3e-9d7e-1c2b3a4d5e6f"


@pytest.mark.parametrize(("path", "segment"), [
    (f"/peer/v1/images/{ID}", ID),
    (f"/peer/v1/images/{ID.upper()}", ID.upper()),  # validated (and made canonical) later, by the cache's rule
    ("/peer/v1/images/not-a-uuid", "not-a-uuid"),
    (f"/peer/v1/images/{ID}/", None),
    (f"/peer/v1/images/{ID}/file", None),
    ("/peer/v1/images/", None),
    ("/peer/v1/images", None),
    (f"/peer/v2/images/{ID}", None),
    (f"/v2/images/{ID}/file", None),
    (f"/x/peer/v1/images/{ID}", None),
        (f"/peer/v1/images/{ID}\n", f"{ID}\n"),  # a bad id, for the cache's rule to refuse
])
def test_only_the_endpoint_path_is_the_endpoints(path, segment):
    assert protocol.path_image_id(path) == segment


def test_image_path_is_what_the_endpoint_matches():
    assert protocol.path_image_id(protocol.image_path(ID)) == ID


@given(st.text())
def test_a_token_matches_only_itself(token):
    # A WSGI header value is latin-1 text: the bytes the peer sent, here the token's UTF-8.
    sent = token.encode("utf-8").decode("latin-1")
    assert protocol.token_matches(sent, token) is True


@given(st.text(), st.text())
def test_any_other_header_value_is_a_wrong_token(presented, token):
    sent_bytes = presented.encode("latin-1", "replace")
    expected = sent_bytes == token.encode("utf-8")
    assert protocol.token_matches(presented, token) is expected


def test_no_token_is_a_wrong_token():
    assert protocol.token_matches(None, "s3cret") is False
    assert protocol.token_matches("", "s3cret") is False


@given(st.integers(min_value=0, max_value=10**30), st.sampled_from(["", " ", "\t"]))
def test_an_open_range_gives_its_offset(offset, space):
    assert protocol.requested_offset(f"{space}bytes={offset}-{space}") == offset


def test_no_range_is_no_offset():
    assert protocol.requested_offset(None) is None


@pytest.mark.parametrize("header", [
    "", "bytes=0-10", "bytes=5-5", "bytes=-5", "bytes=1-,5-", "items=0-", "bytes=abc-", "bytes=",
    "bytes 0-", "bytes=+1-", "bytes=1 -", "0-", "bytes=10-5",
])
def test_every_other_range_is_refused(header):
    with pytest.raises(protocol.BadRange):
        protocol.requested_offset(header)


@given(st.text(max_size=40))
def test_any_header_is_an_offset_or_refused(header):
    try:
        offset = protocol.requested_offset(header)
    except protocol.BadRange:
        return
    assert isinstance(offset, int) and offset >= 0
    assert ranges.parse_range_header(header) == ranges.IntRange(offset)


@given(st.integers(min_value=0, max_value=1 << 40))
def test_without_a_range_the_whole_image(size):
    assert protocol.select(None, size) == ranges.Whole(size)


@given(st.integers(min_value=0, max_value=1 << 40), st.integers(min_value=0, max_value=1 << 41))
def test_an_offset_inside_the_image_is_206_to_its_end_else_416(size, offset):
    selected = protocol.select(offset, size)
    if offset < size:
        assert selected == ranges.ByteRange(offset, size - 1, size)
        assert selected.length == size - offset
    else:
        assert selected == ranges.Unsatisfiable(size)


@given(st.one_of(st.none(), st.integers(min_value=0)))
def test_of_an_unknown_size_the_whole_image_from_its_start(offset):
    selected = protocol.select(offset, None)
    assert isinstance(selected, protocol.Unknown)
    assert (selected.first, selected.status) == (0, 200)
