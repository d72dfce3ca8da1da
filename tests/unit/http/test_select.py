"""The one Range rule: If-Range, select(), the answer's status and headers, Content-Range.

Examples from RFC 9110 section 13.1.5, and properties against the slicing
oracle of :mod:`tests.support.range_oracle`.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from imagecache.http.ranges import (
    ByteRange,
    ContentRange,
    Unsatisfiable,
    Whole,
    entity_headers,
    entity_tag,
    if_range_matches,
    parse_content_range,
    parse_range,
    response_headers,
    select,
    status_line,
)
from tests.support.range_oracle import Ask, asks

MD5 = hashlib.md5(b"image").hexdigest()
ETAG = f'"{MD5}"'

# -- validators ------------------------------------------------------------------------


def test_the_etag_is_the_checksum_quoted() -> None:
    assert entity_tag(MD5) == ETAG


@pytest.mark.parametrize("checksum", [None, "", 42, 'with"quote', "with space", "tab\there", "é\u0100"])
def test_no_etag_without_a_usable_checksum(checksum: object) -> None:
    assert entity_tag(checksum) is None


@pytest.mark.parametrize("value", [ETAG, f" {ETAG}", f"{ETAG}\t", f" \t{ETAG} \t"])
def test_if_range_with_the_same_strong_tag_matches(value: str) -> None:
    assert if_range_matches(value, ETAG)


@pytest.mark.parametrize(
    "value",
    [
        f"W/{ETAG}",  # weak tags never match for If-Range
        f"w/{ETAG}",
        f'"{MD5.upper()}"',  # strong comparison is octet by octet
        MD5,  # unquoted: not an entity tag
        f'"{MD5}',
        f'{ETAG}, "other"',  # two fields folded into one: not one entity tag
        "Sat, 29 Oct 1994 19:43:31 GMT",  # we issue no Last-Modified, so no date matches
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "*",
        "",
        '""',
    ],
)
def test_if_range_with_anything_else_does_not_match(value: str) -> None:
    assert not if_range_matches(value, ETAG)


def test_nothing_matches_data_without_an_etag() -> None:
    assert not if_range_matches('""', None)
    assert not if_range_matches(ETAG, None)


# -- select ----------------------------------------------------------------------------


def test_without_range_the_whole_entity() -> None:
    assert select(None, None, 10, ETAG) == Whole(10)
    assert select(None, ETAG, 10, ETAG) == Whole(10)  # If-Range without Range is ignored
    assert select(None, "W/\"x\"", 10, ETAG) == Whole(10)


def test_a_matching_if_range_lets_the_range_be_evaluated() -> None:
    assert select("bytes=2-4", ETAG, 10, ETAG) == ByteRange(2, 4, 10)
    assert select("bytes=20-", ETAG, 10, ETAG) == Unsatisfiable(10)
    assert select("bytes=0-1,3-4", ETAG, 10, ETAG) == Whole(10)  # a Range we ignore stays ignored


@pytest.mark.parametrize("validator", [f"W/{ETAG}", '"other"', "Sat, 29 Oct 1994 19:43:31 GMT", "", "junk"])
def test_an_if_range_that_does_not_match_means_the_whole_entity(validator: str) -> None:
    assert select("bytes=2-4", validator, 10, ETAG) == Whole(10)
    assert select("bytes=20-", validator, 10, ETAG) == Whole(10)  # not even 416


def test_without_if_range_select_is_parse_range() -> None:
    for header in ("bytes=2-4", "bytes=-3", "bytes=9-", "bytes=10-", "bytes=5-1", "junk"):
        expected = parse_range(header, 10)
        assert select(header, None, 10, ETAG) == (Whole(10) if expected is None else expected)


def test_whole_rejects_a_negative_size() -> None:
    with pytest.raises(ValueError):
        Whole(-1)


@settings(max_examples=100, deadline=None)
@given(size=st.integers(0, 300), ask=asks(400))
@example(size=0, ask=Ask("suffix", 1, 0, "", "same"))
@example(size=5, ask=Ask("closed", 4, 9, "", "same-padded"))
@example(size=5, ask=Ask("open", 5, 0, "", "weak"))
@example(size=5, ask=Ask("suffix", 0, 0, "", "none"))
def test_select_is_the_slicing_oracle(size: int, ask: Ask) -> None:
    data = bytes(i % 251 for i in range(size))
    etag = entity_tag(hashlib.md5(data).hexdigest())
    assert etag is not None
    headers = ask.headers(etag)
    selected = select(headers.get("Range"), headers.get("If-Range"), size, etag)
    expected = ask.expect(data)
    assert selected.status == expected.status
    if isinstance(selected, Unsatisfiable):
        assert selected.content_range == expected.content_range(size)
        return
    assert data[selected.first:selected.first + selected.length] == expected.body
    if isinstance(selected, ByteRange):
        assert selected.content_range == expected.content_range(size)
        assert selected.first == expected.first


# -- the answer --------------------------------------------------------------------------


def test_status_lines() -> None:
    assert status_line(Whole(3)) == "200 OK"
    assert status_line(ByteRange(0, 1, 3)) == "206 Partial Content"
    assert status_line(Unsatisfiable(3)) == "416 Range Not Satisfiable"


def test_headers_of_a_whole_answer() -> None:
    assert response_headers(Whole(10), ETAG, content_md5=MD5) == [
        ("Accept-Ranges", "bytes"), ("ETag", ETAG), ("Content-MD5", MD5), ("Content-Length", "10"),
    ]
    assert response_headers(Whole(10), None) == [("Accept-Ranges", "bytes"), ("Content-Length", "10")]


def test_headers_of_a_part_never_carry_the_whole_digest() -> None:
    assert response_headers(ByteRange(2, 4, 10), ETAG, content_md5=MD5) == [
        ("Accept-Ranges", "bytes"), ("ETag", ETAG), ("Content-Range", "bytes 2-4/10"), ("Content-Length", "3"),
    ]


def test_headers_of_a_416() -> None:
    assert response_headers(Unsatisfiable(10), ETAG, content_md5=MD5) == [
        ("Content-Range", "bytes */10"), ("Content-Length", "0"),
    ]


def test_entity_headers() -> None:
    assert entity_headers(ETAG) == [("Accept-Ranges", "bytes"), ("ETag", ETAG)]
    assert entity_headers(None) == [("Accept-Ranges", "bytes")]


def test_a_plain_range_header_for_a_part() -> None:
    assert ByteRange(2, 4, 10).header == "bytes=2-4"
    assert parse_range(ByteRange(2, 4, 10).header, 10) == ByteRange(2, 4, 10)


# -- Content-Range -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bytes 0-9/10", ContentRange(0, 9, 10)),
        ("  BYTES 3-4/*\t", ContentRange(3, 4, None)),
        ("bytes 7-7/8", ContentRange(7, 7, 8)),
        (None, None),
        ("", None),
        ("bytes 5-4/10", None),
        ("bytes 0-10/10", None),
        ("bytes */10", None),
        ("bytes 0-1", None),
        ("items 0-1/2", None),
        ("bytes 0-" + "9" * 5000 + "/*", ContentRange(0, 10**64, None)),
    ],
)
def test_parse_content_range(value: str | None, expected: ContentRange | None) -> None:
    assert parse_content_range(value) == expected


@settings(max_examples=60, deadline=None)
@given(first=st.integers(0, 10**12), length=st.integers(1, 10**6), extra=st.integers(0, 10**6))
def test_content_range_round_trips(first: int, length: int, extra: int) -> None:
    part = ByteRange(first, first + length - 1, first + length + extra)
    assert parse_content_range(part.content_range) == (part.first, part.last, part.size)
