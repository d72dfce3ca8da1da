"""Reading request bodies with and without Content-Length."""

from __future__ import annotations

import io
from typing import Any

import pytest

from imagecache.images.body import BodyError, body_chunks, read_body


def environ(data: bytes, length: str | None) -> dict[str, Any]:
    env: dict[str, Any] = {"wsgi.input": io.BytesIO(data)}
    if length is not None:
        env["CONTENT_LENGTH"] = length
    return env


def test_reads_exactly_content_length() -> None:
    assert b"".join(body_chunks(environ(b"abcdef", "4"), chunk_size=3)) == b"abcd"


def test_reads_until_eof_without_content_length() -> None:
    chunks = list(body_chunks(environ(b"x" * 10, None), chunk_size=4))
    assert [len(c) for c in chunks] == [4, 4, 2]
    assert b"".join(body_chunks(environ(b"abc", ""), chunk_size=4)) == b"abc"


def test_short_body_is_an_error() -> None:
    with pytest.raises(BodyError) as caught:
        list(body_chunks(environ(b"abc", "10")))
    assert caught.value.status == 400


@pytest.mark.parametrize("length", ["-1", "abc", "1e3", "１"])
def test_malformed_content_length(length: str) -> None:
    with pytest.raises(BodyError):
        list(body_chunks(environ(b"abc", length)))


def test_limit() -> None:
    with pytest.raises(BodyError) as caught:
        read_body(environ(b"x" * 10, "10"), limit=5)
    assert caught.value.status == 413
    with pytest.raises(BodyError):
        read_body(environ(b"x" * 10, None), limit=5)
    assert read_body(environ(b"x" * 5, None), limit=5) == b"x" * 5


def test_server_input_errors_become_body_errors() -> None:
    class Broken:
        def read(self, size: int) -> bytes:
            raise ValueError("invalid chunk size")

    with pytest.raises(BodyError):
        list(body_chunks({"wsgi.input": Broken()}))


def test_missing_input_is_empty() -> None:
    assert list(body_chunks({})) == []
