"""The upstream's answer as the client gets it: status line, end-to-end headers, streamed body.

A body read to its end gives its connection back to the pool; a body that
breaks off in the middle raises :class:`UpstreamBodyError` out of the
iterator, so the client sees a broken transfer, never a short body that
looks complete.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from http import HTTPStatus

from urllib3 import BaseHTTPResponse, HTTPHeaderDict
from urllib3.exceptions import HTTPError

from imagecache.http.causes import innermost
from imagecache.upstream.forwarding import CHUNK_SIZE, HOP_BY_HOP, LOG, VIA_PSEUDONYM, connection_tokens

#: A response abandoned with at most this much left is read to its end so its
#: connection goes back to the pool; with more left the connection is closed.
DRAIN_LIMIT = 64 << 10
#: Response headers the WSGI server sets itself.
_SERVER_SET = frozenset({"date", "server"})


class UpstreamBodyError(ConnectionError):
    """The upstream's body broke off (reset, closed early, stalled past the timeout).

    A ``ConnectionError`` with ``errno`` ECONNRESET: the WSGI server then
    drops the client's connection and logs at most a debug line, since
    this module has already logged the failure once.
    """


class UpstreamBody:
    """The upstream's response body as a WSGI iterable; close() settles the connection.

    A body read to its end (or abandoned with at most DRAIN_LIMIT bytes
    left, which are read) gives its connection back to the pool; otherwise
    the connection is closed: a half-read connection is never reused.
    """

    def __init__(self, resp: BaseHTTPResponse, where: str, request: str, *, send_body: bool = True) -> None:
        self._resp = resp
        self._where = where
        self._request = request
        self._send_body = send_body
        self._chunks: Iterator[bytes] | None = None
        self._sent = 0
        self._done = False
        self._failed = False
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if not self._send_body:
            raise StopIteration  # HEAD: close() reads the (empty) rest
        if self._chunks is None:
            self._chunks = self._resp.stream(CHUNK_SIZE, decode_content=False)
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self._done = not self._failed
            raise
        except (HTTPError, OSError) as exc:
            self._failed = True
            message = (
                f"the image service at {self._where} broke off {self._request} "
                f"after {self._sent} bytes: {innermost(exc)}"
            )
            LOG.warning("%s", message)
            raise UpstreamBodyError(errno.ECONNRESET, message) from exc
        self._sent += len(chunk)
        return chunk

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        resp = self._resp
        try:
            if self._done:
                pass  # urllib3 has already given the connection back
            elif self._failed or not _nearly_done(resp):
                resp.close()  # a half-read connection must not go back to the pool
            else:
                resp.drain_conn()  # also what closes http.client's response to a HEAD
        finally:
            resp.release_conn()  # a closed connection reconnects when next taken


def _nearly_done(resp: BaseHTTPResponse) -> bool:
    remaining = resp.length_remaining
    return remaining is not None and remaining <= DRAIN_LIMIT


def via_for_version(version: int) -> str:
    """Our Via entry for a response: the protocol the upstream spoke (http.client's 10, 11)."""
    spoken = f"{version // 10}.{version % 10}" if version in (10, 11) else "1.1"
    return f"{spoken} {VIA_PSEUDONYM}"


def response_headers(headers: HTTPHeaderDict, via: str) -> list[tuple[str, str]]:
    """The upstream's end-to-end response headers, with our Via appended.

    Transfer-Encoding goes (the WSGI server frames the body again), and with
    it any Content-Length, which a chunked message must not be judged by.
    Date and Server go too: gunicorn always sends its own, and two of each
    would reach the client.
    """
    chunked = "Transfer-Encoding" in headers
    dropped = HOP_BY_HOP | _SERVER_SET | connection_tokens(", ".join(headers.getlist("Connection")))
    if chunked:
        dropped = dropped | {"content-length"}
    kept = [(name, value) for name, value in headers.items() if name.lower() not in dropped and name.lower() != "via"]
    previous = ", ".join(headers.getlist("Via"))
    kept.append(("Via", f"{previous}, {via}" if previous else via))
    return kept


def status_line(resp: BaseHTTPResponse) -> str:
    """The upstream's status line, its reason phrase supplied when it sent none."""
    reason = resp.reason
    if not reason:
        try:
            reason = HTTPStatus(resp.status).phrase
        except ValueError:
            reason = "Unknown"
    return f"{resp.status} {reason}"
