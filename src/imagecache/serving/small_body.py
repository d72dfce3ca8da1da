"""A small response whose body is known sent in one ``sendall``: status line, headers and body together.

gunicorn writes the header block and then each body chunk with a
``sendall`` of its own, and the worker used to hand even a 4 KiB cached
file to the event loop (headers from the thread, the body by ``sendfile``
after a hop to a pool thread that counts the hit).  For a body of at most
:data:`SMALL` bytes that is all overhead: one segment carries it, and a
thread that sends it at once is cheaper than the hops.  Larger bodies, and
bodies that are not known in advance (generators, fills being followed),
keep their paths.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

#: Largest body sent together with its headers (larger ones stream).
SMALL = 64 * 1024


def payload(req: Any, resp: Any, body: Any) -> bytes | None:
    """The whole body of a small, known response (``b""`` has none to send), or None to stream it.

    Known means a sized list of bytes (a WebOb answer, a JSON error) or a
    file range (``sendfile_source``) whose length is the Content-Length.  A
    file range is read here, and its ``on_bytes`` and ``complete`` run (the
    hit counted) once the bytes are in hand, just before they are sent.
    """
    length = resp.response_length
    if resp.headers_sent or resp.chunked or length is None or length > SMALL:
        return None
    if req.method == "HEAD" or resp.status_code < 200 or resp.status_code in (204, 304):
        return None  # gunicorn already sends these headers alone, in one write
    if isinstance(body, (list, tuple)):
        if not all(isinstance(item, bytes) for item in body):
            return None  # gunicorn's own error for it
        data = b"".join(body)
        return data if len(data) == length else None
    source_of: Callable[[], tuple[int, int, int] | None] | None = getattr(body, "sendfile_source", None)
    source = source_of() if source_of is not None else None
    if source is None or source[2] != length:
        return None
    read = _read_range(*source)
    if read is None:
        return None  # the file is shorter than said: the streaming path reports it
    body.on_bytes(len(read))
    body.complete()
    return read


def send(resp: Any, data: bytes) -> None:
    """``resp``'s status line and headers (as gunicorn writes them) and ``data``, in one ``sendall``."""
    lines = resp.default_headers()
    lines.extend(f"{name}: {value}\r\n" for name, value in resp.headers)
    head = ("".join(lines) + "\r\n").encode("latin-1")
    resp.headers_sent = True
    resp.sent = len(data)
    resp.sock.sendall(head + data)


def _read_range(fd: int, offset: int, length: int) -> bytes | None:
    parts, position, remaining = [], offset, length
    while remaining > 0:
        piece = os.pread(fd, remaining, position)
        if not piece:
            return None
        parts.append(piece)
        position += len(piece)
        remaining -= len(piece)
    return b"".join(parts)
