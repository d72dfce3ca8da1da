"""The client's failures: one exception class per kind, with the server's own message.

Also how an error answer's body becomes that message, whichever shape the
server used (our cache API's JSON, webob's JSON, text or HTML pages).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

#: Longest server message kept in an exception (error pages can be long).
MAX_MESSAGE = 500


class ClientError(Exception):
    """Anything the client could not do; ``status`` is the HTTP status, if any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class ConfigurationError(ClientError, ValueError):
    """The client was set up with options that cannot work (no request made)."""


class Unreachable(ClientError):
    """No answer: connection refused, timed out, reset, or TLS failed."""


class TLSError(Unreachable):
    """The TLS handshake failed (certificate not trusted, wrong host, no client cert)."""


class InvalidResponse(ClientError):
    """The server answered success with a body the API never sends."""


class HTTPStatusError(ClientError):
    """The server answered with an error status; ``message`` is its explanation."""

    status: int  # always given here, unlike on ClientError

    def __init__(self, message: str, status: int, body: bytes = b"") -> None:
        super().__init__(message, status)
        self.body = body

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"


class BadRequest(HTTPStatusError):
    """400: the request was refused as malformed (an image id that is no UUID, ...)."""


class Unauthorized(HTTPStatusError):
    """401: no token, an unknown or expired one, or credentials Keystone refused."""


class Forbidden(HTTPStatusError):
    """403: authenticated, but not allowed (the cache API is for admins)."""


class NotFound(HTTPStatusError):
    """404: no such resource."""


class ServerError(HTTPStatusError):
    """5xx: the server failed."""


ERRORS_BY_STATUS: Mapping[int, type[HTTPStatusError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
}


def error_for_status(status: int, message: str, body: bytes = b"") -> HTTPStatusError:
    """The exception for an error answer: by status, 5xx as ServerError, else the base."""
    if status >= 500:
        return ServerError(message, status, body)
    return ERRORS_BY_STATUS.get(status, HTTPStatusError)(message, status, body)


_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def _tidy(text: str) -> str:
    """One line without markup: webob's JSON messages carry ``<br />`` and newlines."""
    tidy = _SPACE.sub(" ", _TAG.sub(" ", text)).strip()
    return tidy if len(tidy) <= MAX_MESSAGE else tidy[: MAX_MESSAGE - 3] + "..."


def error_message(body: bytes, content_type: str | None, status: int | None = None, reason: str = "") -> str:
    """The explanation in an error body, whichever shape the server used.

    Our cache API sends ``{"error": {"message": ...}}``; webob's error pages
    (the image service) send ``{"message": ...}``, or plain text or HTML
    that repeat the status line first.  Falls back to the status line's
    reason when the body says nothing.
    """
    text = body.decode("utf-8", "replace")
    if "json" in (content_type or "").lower() or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            inner = data.get("error")
            for source in (inner if isinstance(inner, dict) else {}, data):
                for key in ("message", "title"):
                    value = source.get(key)
                    if isinstance(value, str) and _tidy(value):
                        return _tidy(value)
    if "html" in (content_type or "").lower():
        text = re.sub(r"(?is)<(head|title|style|script)\b.*?</\1>", " ", text)
    tidy = _tidy(text)
    if status is not None and reason:
        # webob's pages start with "404 Not Found" (text) or an <h1> of it (HTML).
        tidy = tidy.removeprefix(f"{status} {reason}").strip()
    return tidy or reason or "no explanation given"
