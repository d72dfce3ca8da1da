"""The few answers the event loop gives by itself, before any thread or app.

Refusals of a connection (over the limit, too slow, too large) are decided
on the worker's event loop and must cost nothing: prebuilt bytes, sent
without blocking, then the connection is closed.  They are the server's
JSON error (:mod:`imagecache.http.errors`), as raw HTTP/1.1.
"""

from __future__ import annotations

from imagecache.http.errors import error_answer

#: How soon a refused client may try again.
RETRY_AFTER_SECONDS = 1


def refusal(status: int, message: str, *, retry_after: int | None = None) -> bytes:
    """A complete ``Connection: close`` response with the project's JSON error body."""
    extra = [("Connection", "close"), *([("Retry-After", str(retry_after))] if retry_after is not None else [])]
    answer = error_answer(status, message, extra)
    lines = [f"HTTP/1.1 {answer.status}", *(f"{name}: {value}" for name, value in answer.headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + answer.body


BUSY = refusal(503, "This node is serving as many connections as it may; try again shortly.",
               retry_after=RETRY_AFTER_SECONDS)
HEADER_TIMEOUT = refusal(408, "The request header did not arrive in time.")
