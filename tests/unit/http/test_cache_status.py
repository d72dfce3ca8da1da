"""Cache-Status (RFC 9211): every value we write parses as an RFC 8941 List, with ours last.

The parser that judges is an independent one (``http_sf``, the reference
implementation of RFC 8941/9651), never our own validator.
"""

from __future__ import annotations

from typing import Any, get_args

import pytest
from http_sf import StructuredFieldError, Token, parse, ser
from hypothesis import assume, given
from hypothesis import strategies as st

from imagecache.http.cache_status import FIELD, CacheStatus, Fwd, combine, is_list, with_status

FWDS: tuple[Fwd, ...] = get_args(Fwd)


def sf_list(value: str) -> list[tuple[Any, dict[str, Any]]]:
    parsed: list[tuple[Any, dict[str, Any]]] = parse(value.encode("ascii"), tltype="list")
    return parsed


@pytest.mark.parametrize(("status", "written"), [
    (CacheStatus(hit=True), "imagecache; hit"),
    (CacheStatus(hit=True, detail="stale"), "imagecache; hit; detail=stale"),
    (CacheStatus(fwd="miss", stored=True), "imagecache; fwd=miss; stored"),
    (CacheStatus(fwd="miss", stored=True, detail="peer"), "imagecache; fwd=miss; stored; detail=peer"),
    (CacheStatus(fwd="miss", collapsed=True), "imagecache; fwd=miss; collapsed"),
    (CacheStatus(fwd="uri-miss", detail="too-large"), "imagecache; fwd=uri-miss; detail=too-large"),
    (CacheStatus(fwd="bypass", fwd_status=403, detail="not-active"),
     "imagecache; fwd=bypass; fwd-status=403; detail=not-active"),
    (CacheStatus(fwd="method"), "imagecache; fwd=method"),
    (CacheStatus(fwd="uri-miss", detail='no room "here"\n'), r'imagecache; fwd=uri-miss; detail="no room \"here\"?"'),
])
def test_members_are_written_as_rfc_9211_shows_them(status: CacheStatus, written: str) -> None:
    assert status.member == written
    assert len(sf_list(written)) == 1


@pytest.mark.parametrize("arguments", [
    {},  # neither hit nor fwd
    {"hit": True, "fwd": "miss"},
    {"hit": True, "stored": True},
    {"hit": True, "collapsed": True},
    {"hit": True, "fwd_status": 200},
    {"fwd": "miss", "fwd_status": 99},
    {"fwd": "miss", "fwd_status": 600},
    {"fwd": "miss", "name": "image cache"},
    {"fwd": "miss", "name": "1cache"},
])
def test_members_rfc_9211_forbids_cannot_be_made(arguments: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"\w"):  # a message that says what is wrong
        CacheStatus(**arguments)


token_text = st.from_regex(r"\A[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]{0,20}\Z")
statuses = st.one_of(
    st.builds(CacheStatus, hit=st.just(True), detail=st.none() | st.text(max_size=30), name=token_text),
    st.builds(
        CacheStatus,
        fwd=st.sampled_from(FWDS),
        fwd_status=st.none() | st.integers(100, 599),
        stored=st.booleans(),
        collapsed=st.booleans(),
        detail=st.none() | st.text(max_size=30),
        name=token_text,
    ),
)


@given(statuses)
def test_every_member_parses_as_a_list_of_one_and_says_what_it_was_built_with(status: CacheStatus) -> None:
    [(name, params)] = sf_list(status.member)
    assert name == Token(status.name)
    expected: dict[str, Any] = {"hit": True} if status.hit else {"fwd": Token(status.fwd or "")}
    if status.fwd_status is not None:
        expected["fwd-status"] = status.fwd_status
    expected.update({key: True for key, on in (("stored", status.stored), ("collapsed", status.collapsed)) if on})
    if status.detail is not None:
        printable = "".join(c if " " <= c <= "~" else "?" for c in status.detail)
        expected["detail"] = printable  # a Token compares equal to its text
    assert params == expected


# Text built from the characters the grammar cares about, so that valid and nearly valid lists both come up.
field_text = st.text(alphabet=st.sampled_from('ab*Z09-.:/;=,()" \t?\\@%'), max_size=40)
sf_items = st.one_of(
    st.from_regex(r"\A[a-z][a-z0-9\-]{0,8}\Z").map(Token),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=10),
    st.integers(-(10**15) + 1, 10**15 - 1),
    st.booleans(),
)
sf_params = st.dictionaries(st.from_regex(r"\A[a-z][a-z0-9_\-.]{0,6}\Z"), sf_items, max_size=3)
sf_members = st.lists(st.tuples(sf_items, sf_params), min_size=1, max_size=4)


@given(field_text)
def test_what_we_keep_from_upstream_always_parses(value: str) -> None:
    """Soundness of the validator: a value it accepts is one a real parser accepts."""
    if is_list(value):
        assert sf_list(value)


@given(sf_members)
def test_lists_others_serialise_are_kept(members: list[tuple[Any, dict[str, Any]]]) -> None:
    """And it keeps what caches really send: Tokens, Strings, Integers, Booleans, bare or as parameters."""
    value = ser(members)
    assert is_list(value), value


@given(st.lists(field_text, max_size=3), statuses)
def test_the_combined_field_always_parses_with_ours_last(existing: list[str], status: CacheStatus) -> None:
    combined = combine(existing, status)
    parsed = sf_list(combined)
    assert parsed[-1] == sf_list(status.member)[0]
    earlier = ", ".join(v.strip(" \t") for v in existing if v.strip(" \t"))
    if earlier and is_list(earlier):
        assert parsed[:-1] == sf_list(earlier)  # kept as it was, in its order
    else:
        assert len(parsed) == 1


@given(field_text)
def test_a_value_that_does_not_parse_is_never_kept(value: str) -> None:
    """Judged as HTTP delivers a field value: without leading and trailing SP and HTAB (RFC 9110 5.5)."""
    try:
        valid = bool(sf_list(value.strip(" \t")))
    except StructuredFieldError:
        valid = False
    assume(not valid)
    assert combine([value], CacheStatus(hit=True)) == "imagecache; hit"


def test_with_status_joins_the_field_lines_once_and_leaves_the_rest_in_order() -> None:
    headers = [("Content-Type", "x"), ("Cache-Status", "Edge; hit"), ("ETag", '"e"'),
               ("cache-status", "Other; fwd=miss")]
    assert with_status(headers, CacheStatus(fwd="uri-miss", detail="range-uncached")) == [
        ("Content-Type", "x"), ("ETag", '"e"'),
        (FIELD, "Edge; hit, Other; fwd=miss, imagecache; fwd=uri-miss; detail=range-uncached"),
    ]
    assert with_status([], CacheStatus(hit=True)) == [(FIELD, "imagecache; hit")]


def test_an_overlong_upstream_value_is_dropped() -> None:
    assert combine(["a, " * 2000 + "a"], CacheStatus(hit=True)) == "imagecache; hit"
