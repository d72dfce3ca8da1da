"""The server's JSON error: ``{"error": {"code", "title", "message"}}``, built in one place.

Every error the node answers itself (the proxy's 502 and 504, a 401, the
cache API's refusals, the worker's connection refusals) has this shape, the
one glanceclient shows as it is.  The title is the status's standard phrase.
Pure: bytes and header lists in, bytes and header lists out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus

from imagecache.http.types import StartResponse, WSGIEnvironment

__all__ = ["JSON", "UPSTREAM_ERROR_HEADER", "ErrorAnswer", "error_answer", "error_body", "send_error"]

JSON = "application/json"
#: Set on the 502 and 504 a proxy answers itself when its upstream failed, so the
#: cache filter (``wsgi/image_source.upstream_failed``) tells them from the upstream's own.
UPSTREAM_ERROR_HEADER = "X-Imagecache-Upstream-Error"


def error_body(status: int, message: str) -> bytes:
    """The body of an error answer with ``status``, saying ``message``."""
    error = {"code": status, "title": HTTPStatus(status).phrase, "message": message}
    return json.dumps({"error": error}).encode("utf-8")


@dataclass(frozen=True)
class ErrorAnswer:
    """A whole error answer: status line, headers (Content-Type and -Length first), body."""

    status: str
    headers: list[tuple[str, str]]
    body: bytes


def error_answer(status: int, message: str, extra: Iterable[tuple[str, str]] = ()) -> ErrorAnswer:
    """The answer for ``status``, with ``extra`` headers (Allow, Retry-After, WWW-Authenticate ...) last."""
    body = error_body(status, message)
    headers = [("Content-Type", JSON), ("Content-Length", str(len(body))), *extra]
    return ErrorAnswer(f"{status} {HTTPStatus(status).phrase}", headers, body)


def send_error(
    environ: WSGIEnvironment,
    start_response: StartResponse,
    status: int,
    message: str,
    extra: Iterable[tuple[str, str]] = (),
) -> list[bytes]:
    """Answer a WSGI request with the error: the body goes, except to a HEAD."""
    answer = error_answer(status, message, extra)
    start_response(answer.status, answer.headers)
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else [answer.body]
