"""small_body: gunicorn's own header bytes and the body, in one send, on a real socket pair."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Any, ClassVar

from gunicorn.http.wsgi import Response

from imagecache.http.file_body import FileRangeBody
from imagecache.serving import small_body


class Req:
    """What gunicorn's Response reads of a request."""

    def __init__(self, method: str = "GET") -> None:
        self.method = method
        self.version = (1, 1)
        self.headers: list[tuple[str, str]] = []

    def should_close(self) -> bool:
        return False


class Cfg:
    secure_scheme_headers: ClassVar[dict[str, str]] = {}
    forwarded_allow_ips: ClassVar[list[str]] = []
    sendfile = False
    is_ssl = False
    header_map = "drop"


def _response(sock: socket.socket, method: str, status: str, headers: list[tuple[str, str]]) -> Any:
    resp = Response(Req(method), sock, Cfg())
    resp.start_response(status, headers)
    return resp


def _received(sock: socket.socket) -> bytes:
    sock.settimeout(5)
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def _no_date(raw: bytes) -> bytes:
    """The bytes with the (clock-dependent) Date header's value blanked."""
    return re.sub(rb"Date: [^\r]*\r\n", b"Date: -\r\n", raw, count=1)


def test_the_header_block_is_gunicorns_and_the_body_follows(tmp_path: Path) -> None:
    data = os.urandom(5000)
    (tmp_path / "f").write_bytes(data)
    ours, theirs = socket.socketpair()
    gunicorn_a, gunicorn_b = socket.socketpair()
    headers = [("Content-Type", "application/octet-stream"), ("Content-Length", "90")]
    completed = []
    with open(tmp_path / "f", "rb") as fh:
        body = FileRangeBody(fh, 10, 90, on_complete=lambda: completed.append(True))
        resp = _response(ours, "GET", "206 Partial Content", headers)
        sent = small_body.payload(resp.req, resp, body)
        assert sent == data[10:100] and completed == [True]
        small_body.send(resp, sent)
    ours.close()
    reference = _response(gunicorn_a, "GET", "206 Partial Content", headers)
    reference.send_headers()
    gunicorn_a.close()
    expected_head = _received(gunicorn_b)
    got = _received(theirs)
    assert _no_date(got) == _no_date(expected_head) + data[10:100]


def test_lists_of_bytes_are_joined_and_the_rest_streams() -> None:
    ours, _theirs = socket.socketpair()
    resp = _response(ours, "GET", "200 OK", [("Content-Length", "6")])
    assert small_body.payload(resp.req, resp, [b"abc", b"def"]) == b"abcdef"
    assert small_body.payload(resp.req, resp, [b"abc"]) is None  # shorter than said: gunicorn's path
    assert small_body.payload(resp.req, resp, (x for x in [b"abcdef"])) is None  # not known in advance
    head = _response(ours, "HEAD", "200 OK", [("Content-Length", "6")])
    assert small_body.payload(head.req, head, [b""]) is None  # headers alone: gunicorn sends them in one write
    big = _response(ours, "GET", "200 OK", [("Content-Length", str(small_body.SMALL + 1))])
    assert small_body.payload(big.req, big, [b"x" * (small_body.SMALL + 1)]) is None
    chunked = _response(ours, "GET", "200 OK", [])
    assert small_body.payload(chunked.req, chunked, [b"abc"]) is None
