"""HTTP Range parsing: examples from RFC 9110 and properties against slicing."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from imagecache.http.ranges import (
    ByteRange,
    IntRange,
    SuffixRange,
    Unsatisfiable,
    parse_range,
    parse_range_header,
    resolve,
)

# -- examples ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-499", 10000, ByteRange(0, 499, 10000)),
        ("bytes=500-999", 10000, ByteRange(500, 999, 10000)),
        ("bytes=-500", 10000, ByteRange(9500, 9999, 10000)),
        ("bytes=9500-", 10000, ByteRange(9500, 9999, 10000)),
        ("bytes=0-0", 10000, ByteRange(0, 0, 10000)),
        ("bytes=-1", 10000, ByteRange(9999, 9999, 10000)),
        ("bytes=0-", 1, ByteRange(0, 0, 1)),
        # last-pos beyond the end is clamped
        ("bytes=5-100", 10, ByteRange(5, 9, 10)),
        # suffix longer than the entity: the whole entity
        ("bytes=-100", 10, ByteRange(0, 9, 10)),
        # leading zeros are still numbers
        ("bytes=007-0008", 10, ByteRange(7, 8, 10)),
        # a number too long for int() is just "beyond the end"
        ("bytes=0-" + "9" * 5000, 10, ByteRange(0, 9, 10)),
        ("bytes=-" + "9" * 5000, 10, ByteRange(0, 9, 10)),
    ],
)
def test_satisfiable(header: str, size: int, expected: ByteRange) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    ("header", "size"),
    [
        ("bytes=10-", 10),
        ("bytes=10-20", 10),
        ("bytes=" + "9" * 5000 + "-", 10),
        ("bytes=-0", 10),
        ("bytes=0-0", 0),
        ("bytes=0-", 0),
        ("bytes=-5", 0),
        ("bytes=-0", 0),
    ],
)
def test_unsatisfiable(header: str, size: int) -> None:
    result = parse_range(header, size)
    assert result == Unsatisfiable(size)
    assert isinstance(result, Unsatisfiable)
    assert result.content_range == f"bytes */{size}"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "bytes",
        "bytes=",
        "bytes=,",
        "bytes=-",
        "bytes=a-b",
        "bytes=5-1",  # first > last is invalid syntax, not unsatisfiable
        "bytes=" + "9" * 70 + "-" + "9" * 69,
        "bytes=1-2-3",
        "bytes=--1",
        "bytes=+1-2",
        "bytes=1 -2",
        "bytes=1- 2",
        "bytes =1-2",
        "bytes= =1-2",
        "bytes=0x1-2",
        "bytes=１-2",  # non-ASCII digits are not DIGIT
        "bytes=0-1,5-6",  # several ranges: we serve the whole entity
        "bytes=0-1, -1",
        "items=0-1",
        "by tes=0-1",
        "=0-1",
        "0-1",
        "bytes 0-1/10",
        "bytes=0-1;x",
    ],
)
def test_ignored(header: str | None) -> None:
    assert parse_range(header, 10) is None


@pytest.mark.parametrize(
    "header",
    [
        "bytes=2-4",
        "  bytes=2-4\t",
        "BYTES=2-4",
        "Bytes=2-4",
        "bytes= 2-4",
        "bytes=2-4 ",
        "bytes=2-4,",
        "bytes=,2-4",
        "bytes=, ,2-4 , ,",
        "bytes=\t2-4\t,",
    ],
)
def test_whitespace_and_empty_elements(header: str) -> None:
    assert parse_range(header, 10) == ByteRange(2, 4, 10)


def test_byte_range_helpers() -> None:
    selected = ByteRange(2, 4, 10)
    assert selected.length == 3
    assert selected.content_range == "bytes 2-4/10"
    assert b"0123456789"[selected.as_slice()] == b"234"


@pytest.mark.parametrize(("first", "last", "size"), [(-1, 2, 10), (3, 2, 10), (0, 10, 10), (0, 0, 0)])
def test_byte_range_rejects_impossible_values(first: int, last: int, size: int) -> None:
    with pytest.raises(ValueError):
        ByteRange(first, last, size)


def test_resolve_rejects_negative_size() -> None:
    with pytest.raises(ValueError):
        resolve(IntRange(0), -1)


def test_parse_header_without_size() -> None:
    assert parse_range_header("bytes=3-") == IntRange(3, None)
    assert parse_range_header("bytes=3-7") == IntRange(3, 7)
    assert parse_range_header("bytes=-7") == SuffixRange(7)
    assert parse_range_header("bytes=3-7,9-") is None


# -- properties ------------------------------------------------------------------------

sizes = st.integers(min_value=0, max_value=3000)
positions = st.integers(min_value=0, max_value=4000)


def expected_slice(form: str, a: int, b: int, size: int) -> slice | None:
    """What Python slicing selects for a range form; None when unsatisfiable."""
    if size == 0:
        return None
    if form == "suffix":
        return None if a == 0 else slice(-a, None)
    if a >= size:
        return None
    return slice(a, None) if form == "open" else slice(a, b + 1)


@given(
    size=sizes,
    form=st.sampled_from(["closed", "open", "suffix"]),
    a=positions,
    b=positions,
    pad=st.sampled_from(["", " ", "\t", " \t "]),
)
@example(size=0, form="suffix", a=1, b=0, pad="")
@example(size=5, form="suffix", a=5, b=0, pad="")
@example(size=5, form="closed", a=4, b=4, pad="")
def test_selected_bytes_match_python_slicing(size: int, form: str, a: int, b: int, pad: str) -> None:
    if form == "closed" and a > b:
        a, b = b, a
    spec = {"closed": f"{a}-{b}", "open": f"{a}-", "suffix": f"-{a}"}[form]
    header = f"{pad}bytes={pad}{spec}{pad}"
    data = bytes(i % 251 for i in range(size))

    result = parse_range(header, size)
    wanted = expected_slice(form, a, b, size)

    if wanted is None:
        assert result == Unsatisfiable(size)
        return
    assert isinstance(result, ByteRange)
    chunk = data[result.as_slice()]
    assert chunk == data[wanted]
    assert len(chunk) == result.length > 0
    assert result.content_range == f"bytes {result.first}-{result.last}/{size}"
    assert data[result.first : result.last + 1] == chunk


@given(size=sizes, a=positions, b=positions)
def test_first_after_last_is_ignored(size: int, a: int, b: int) -> None:
    if a <= b:
        a, b = b + 1, a
    assert parse_range(f"bytes={a}-{b}", size) is None


@given(size=sizes, ranges=st.lists(st.tuples(positions, positions), min_size=2, max_size=5))
def test_several_ranges_are_ignored(size: int, ranges: list[tuple[int, int]]) -> None:
    header = "bytes=" + ", ".join(f"{min(r)}-{max(r)}" for r in ranges)
    assert parse_range(header, size) is None


range_alphabet = st.sampled_from([*"bytesBYTES=-,0123456789 \t;*/xX", "１", "\x00", "\n"])


@given(
    header=st.one_of(st.text(), st.text(alphabet=range_alphabet), st.binary().map(lambda b: b.decode("latin-1"))),
    size=sizes,
)
@example(header="bytes=" + "1" * 10000 + "-", size=10)
def test_malformed_input_never_raises(header: str, size: int) -> None:
    result = parse_range(header, size)
    assert result is None or isinstance(result, (ByteRange, Unsatisfiable))
    if isinstance(result, ByteRange):
        assert 0 <= result.first <= result.last < size


@given(header=st.text(alphabet=range_alphabet, max_size=30).map(lambda t: "bytes=" + t), size=sizes)
def test_parse_then_resolve_is_parse_range(header: str, size: int) -> None:
    spec = parse_range_header(header)
    assert parse_range(header, size) == (None if spec is None else resolve(spec, size))
