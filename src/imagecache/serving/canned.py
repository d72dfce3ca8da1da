"""The few answers the event loop gives by itself, before any thread or app.

Refusals of a connection (over the limit, too slow, too large) are decided
on the worker's event loop and must cost nothing: prebuilt bytes, sent
without blocking, then the connection is closed.
"""

from __future__ import annotations

import json
from http import HTTPStatus

#: How soon a refused client may try again.
RETRY_AFTER_SECONDS = 1


def refusal(status: int, message: str, *, retry_after: int | None = None) -> bytes:
    """A complete ``Connection: close`` response with the project's JSON error body."""
    phrase = HTTPStatus(status).phrase
    body = json.dumps({"error": {"code": status, "title": phrase, "message": message}}).encode()
    lines = [
        f"HTTP/1.1 {status} {phrase}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    if retry_after is not None:
        lines.append(f"Retry-After: {retry_after}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


BUSY = refusal(503, "This node is serving as many connections as it may; try again shortly.",
               retry_after=RETRY_AFTER_SECONDS)
HEADER_TIMEOUT = refusal(408, "The request header did not arrive in time.")
