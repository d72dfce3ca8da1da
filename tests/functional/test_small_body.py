"""Small known bodies go out with their headers: the exact bytes on a real socket.

A small cached image (whole, a Range, HEAD), and the node's own small JSON,
read from a raw socket on one kept-alive connection: status line, headers
and body must be exactly what HTTP says, one response after another.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from .test_cache_http import cache_listing, create
from .test_slow_clients import get

SMALL = 4096


def _read_response(
    sock: socket.socket, buffer: bytearray, *, head: bool = False
) -> tuple[bytes, dict[str, str], bytes]:
    """One response from ``sock``: (status line, headers, body); the rest stays in ``buffer``."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, f"closed mid-header: {bytes(buffer)!r}"
        buffer += chunk
    end = buffer.index(b"\r\n\r\n")
    status, *lines = bytes(buffer[:end]).split(b"\r\n")
    del buffer[: end + 4]
    headers = {}
    for line in lines:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = 0 if head else int(headers["content-length"])
    while len(buffer) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed mid-body"
        buffer += chunk
    body = bytes(buffer[:length])
    del buffer[:length]
    return status, headers, body


def test_small_hits_ranges_head_and_json_are_exact_on_one_connection(start_server: Any) -> None:
    server = start_server(auth="none")
    data = os.urandom(SMALL)
    image_id = create(server, "admin", data)
    assert get(server, f"/v2/images/{image_id}/file")[2] == data  # the fill: cached from now on
    path = f"/v2/images/{image_id}/file"
    asks = [
        (f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n", b"HTTP/1.1 200 OK", data, False),
        (f"GET {path} HTTP/1.1\r\nHost: t\r\nRange: bytes=10-99\r\n\r\n", b"HTTP/1.1 206 Partial Content",
         data[10:100], False),
        (f"GET {path} HTTP/1.1\r\nHost: t\r\nRange: bytes=-5\r\n\r\n", b"HTTP/1.1 206 Partial Content",
         data[-5:], False),
        (f"HEAD /v1/images/{image_id} HTTP/1.1\r\nHost: t\r\n\r\n", b"HTTP/1.1 200 OK", b"", True),
        ("GET /versions HTTP/1.1\r\nHost: t\r\n\r\n", b"HTTP/1.1 200 OK", None, False),
    ]
    buffer = bytearray()
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        for request, status_line, expected, head in asks:
            sock.sendall(request.encode())
            status, headers, body = _read_response(sock, buffer, head=head)
            assert status == status_line
            if expected is not None:
                assert body == expected
            if not head:
                assert int(headers["content-length"]) == len(body)
            if status_line.endswith(b"206 Partial Content"):
                first, last = (10, 99) if len(body) == 90 else (SMALL - 5, SMALL - 1)
                assert headers["content-range"] == f"bytes {first}-{last}/{SMALL}"
            if head:
                assert headers["x-image-meta-size"] == str(SMALL)
        sock.sendall(b"GET /versions HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        status, headers, body = _read_response(sock, buffer)
        assert status == b"HTTP/1.1 200 OK" and b'"versions"' in body
        assert sock.recv(1) == b"" and not buffer  # nothing after the last response: closed
    assert cache_listing(server)[image_id]["hits"] == 3  # the whole hit and both ranges
