"""FileRangeBody: a window of an open file, its counters, and closing it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagecache.http.file_body import FileRangeBody

DATA = bytes(range(100))


@pytest.fixture
def path(tmp_path: Path) -> Path:
    file = tmp_path / "f"
    file.write_bytes(DATA)
    return file


def test_reads_a_window_and_closes(path: Path) -> None:
    file = open(path, "rb")  # noqa: SIM115
    chunks = FileRangeBody(file, 10, 25, chunk_size=7)
    assert [len(c) for c in chunks] == [7, 7, 7, 4]
    assert b"".join(chunks) == bytes(range(10, 35))
    chunks.close()
    assert file.closed


def test_fails_loudly_on_a_short_file(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_bytes(b"abc")
    chunks = FileRangeBody(open(short, "rb"), 0, 10)  # noqa: SIM115
    with pytest.raises(OSError):
        list(chunks)
    chunks.close()


def test_the_file_position_does_not_matter(path: Path) -> None:
    with open(path, "rb") as file:
        file.seek(77)
        assert b"".join(FileRangeBody(file, 5, 10)) == DATA[5:15]


def test_counts_every_chunk_and_completes_just_before_the_last(path: Path) -> None:
    events: list[object] = []
    body = FileRangeBody(open(path, "rb"), 0, 20, chunk_size=8,  # noqa: SIM115
                         on_bytes=events.append, on_complete=lambda: events.append("complete"))
    chunks = iter(body)
    assert next(chunks) == DATA[:8] and events == [8]
    assert next(chunks) == DATA[8:16] and events == [8, 8]
    # the hit is recorded before the server gets the last chunk
    assert next(chunks) == DATA[16:20] and events == [8, 8, 4, "complete"]
    assert list(chunks) == []
    body.close()
    assert events == [8, 8, 4, "complete"]


def test_an_empty_body_completes_when_iterated(path: Path) -> None:
    completed: list[bool] = []
    body = FileRangeBody(open(path, "rb"), 0, 0, on_complete=lambda: completed.append(True))  # noqa: SIM115
    assert completed == []
    assert list(body) == []
    assert completed == [True]
    body.close()


def test_a_body_closed_early_never_completes(path: Path) -> None:
    completed: list[bool] = []
    file = open(path, "rb")  # noqa: SIM115
    body = FileRangeBody(file, 0, 100, chunk_size=10, on_complete=lambda: completed.append(True))
    chunks = iter(body)
    next(chunks)
    body.close()
    assert completed == [] and file.closed


def test_the_file_may_be_unlinked_meanwhile(path: Path) -> None:
    body = FileRangeBody(open(path, "rb"), 90, 10)  # noqa: SIM115
    os.unlink(path)
    assert b"".join(body) == DATA[90:]
    body.close()


@pytest.mark.parametrize(("offset", "length", "chunk_size"), [(-1, 1, 1), (0, -1, 1), (0, 1, 0)])
def test_rejects_impossible_windows(path: Path, offset: int, length: int, chunk_size: int) -> None:
    with open(path, "rb") as file, pytest.raises(ValueError):
        FileRangeBody(file, offset, length, chunk_size=chunk_size)


@settings(max_examples=60, deadline=None)
@given(first=st.integers(0, 99), length=st.integers(0, 100), chunk_size=st.integers(1, 64))
def test_any_window_is_python_slicing(tmp_path_factory: pytest.TempPathFactory, first: int, length: int,
                                      chunk_size: int) -> None:
    length = min(length, len(DATA) - first)
    file = tmp_path_factory.mktemp("w") / "f"
    file.write_bytes(DATA)
    seen: list[int] = []
    body = FileRangeBody(open(file, "rb"), first, length, chunk_size=chunk_size, on_bytes=seen.append)  # noqa: SIM115
    assert b"".join(body) == DATA[first:first + length]
    assert sum(seen) == length and all(0 < n <= chunk_size for n in seen)
    body.close()
