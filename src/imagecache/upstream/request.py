"""The request the proxy sends upstream: the client's path as it spelled it, end-to-end headers, body.

Bodies are read from ``wsgi.input`` in pieces, never whole, so a multi-GB
upload streams through.  A client body that cannot be sent (bad framing, or
it broke off) is a :class:`ClientBodyError`, which the app answers 400 (411
for a chunked body the server cannot delimit).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO
from urllib.parse import quote, unquote_to_bytes, urlsplit

from urllib3 import HTTPHeaderDict
from urllib3.util import SKIP_HEADER

from imagecache.http.causes import innermost
from imagecache.http.types import WSGIEnvironment
from imagecache.upstream.forwarding import CHUNK_SIZE, HOP_BY_HOP, PATH_SAFE, VIA_PSEUDONYM, connection_tokens

#: Request fields not forwarded besides: urllib3 sets the upstream's Host,
#: and the proxy reads the whole body before the upstream could say 100.
_REQUEST_ONLY_DROPPED = frozenset({"host", "expect"})
#: Fields the WSGI server keeps outside ``HTTP_*``, and their names.
_CGI_HEADERS = {"CONTENT_TYPE": "Content-Type", "CONTENT_LENGTH": "Content-Length"}
_PROTOCOL = re.compile(r"HTTP/(\d+(?:\.\d+)?)\Z")


class ClientBodyError(Exception):
    """The client's request body cannot be sent: malformed framing, or it broke off."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def request_path(environ: WSGIEnvironment) -> str:
    """PATH_INFO as the client spelled it: from RAW_URI/REQUEST_URI when it matches, else quoted.

    The raw target keeps percent-encodings exact (``%2F`` stays ``%2F``);
    it is used only when it decodes to SCRIPT_NAME + PATH_INFO, so a
    middleware that rewrote PATH_INFO (or a sub-request carrying a stale
    RAW_URI) is honoured.  SCRIPT_NAME is never forwarded.
    """
    script = environ.get("SCRIPT_NAME", "")
    path_info = environ.get("PATH_INFO", "")
    raw = _raw_path(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "")
    if raw is not None and _decoded(raw) == script + path_info:
        cuts = [i for i, ch in enumerate(raw) if ch == "/"] + [len(raw)]
        for cut in cuts:
            if _decoded(raw[:cut]) == script and _decoded(raw[cut:]) == path_info:
                return raw[cut:]
    try:
        data = path_info.encode("latin-1")  # PEP 3333: bytes as latin-1
    except UnicodeEncodeError:
        data = path_info.encode("utf-8")
    return quote(data, safe=PATH_SAFE)


def _raw_path(raw: str) -> str | None:
    if not raw.startswith("/"):
        if "://" not in raw:
            return None  # "*" or garbage
        raw = urlsplit(raw).path  # absolute-form request target
    return raw.partition("?")[0].partition("#")[0]


def _decoded(raw: str) -> str:
    return unquote_to_bytes(raw).decode("latin-1")


def request_headers(environ: WSGIEnvironment) -> HTTPHeaderDict:
    """The end-to-end request headers, plus X-Forwarded-* and Via.

    X-Forwarded-For gets the client's address appended; X-Forwarded-Host
    and X-Forwarded-Proto are set only when no proxy in front set them
    (theirs describe what the client used, and single values are what
    Glance's oslo middleware reads).  No User-Agent or Accept-Encoding is
    invented for a client that sent none.
    """
    found: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_") and key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
            found[key[5:].replace("_", "-").title()] = value
    for key, name in _CGI_HEADERS.items():
        if environ.get(key):
            found[name] = environ[key]
    dropped = HOP_BY_HOP | _REQUEST_ONLY_DROPPED | connection_tokens(found.get("Connection"))
    headers = HTTPHeaderDict({name: value for name, value in found.items() if name.lower() not in dropped})
    remote = environ.get("REMOTE_ADDR")
    if remote:
        chain = headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{chain}, {remote}" if chain else remote
    if "X-Forwarded-Host" not in headers:
        host = environ.get("HTTP_HOST") or _server_host(environ)
        if host:
            headers["X-Forwarded-Host"] = host
    if "X-Forwarded-Proto" not in headers and environ.get("wsgi.url_scheme"):
        headers["X-Forwarded-Proto"] = environ["wsgi.url_scheme"]
    via = _via(environ)
    headers["Via"] = f"{headers['Via']}, {via}" if headers.get("Via") else via
    for name in ("User-Agent", "Accept-Encoding"):
        headers.setdefault(name, SKIP_HEADER)
    return headers


def _server_host(environ: WSGIEnvironment) -> str:
    name, port = environ.get("SERVER_NAME", ""), str(environ.get("SERVER_PORT", ""))
    default = "443" if environ.get("wsgi.url_scheme") == "https" else "80"
    return name if not port or port == default else f"{name}:{port}"


def _via(environ: WSGIEnvironment) -> str:
    """Our Via entry for a request: the protocol the client spoke, then who we are."""
    match = _PROTOCOL.match(environ.get("SERVER_PROTOCOL", ""))
    return f"{match.group(1) if match else '1.1'} {VIA_PSEUDONYM}"


def request_body(environ: WSGIEnvironment, headers: HTTPHeaderDict) -> tuple[Iterator[bytes] | None, bool]:
    """(the body to send, whether chunked): wsgi.input read in chunks, never whole.

    With a Content-Length, exactly that many bytes (the header goes along,
    so urllib3 does not chunk); without one but with a chunked body the
    server has de-chunked (``wsgi.input_terminated``), chunked again until
    the input ends.  A chunked body the server cannot delimit is refused
    (ClientBodyError) rather than read forever.
    """
    stream: IO[bytes] | None = environ.get("wsgi.input")
    length = environ.get("CONTENT_LENGTH")
    if stream is None:  # a hand-made sub-request
        if length and length != "0":
            raise ClientBodyError(f"Content-Length {length!r} without a wsgi.input to read it from")
        return None, False
    if length:
        try:
            size = int(length)
        except ValueError:
            raise ClientBodyError(f"Content-Length {length!r} is not a number") from None
        if size < 0:
            raise ClientBodyError(f"Content-Length {length!r} is negative")
        return (_read_exactly(stream, size) if size else None), False
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        if not environ.get("wsgi.input_terminated"):
            raise ClientBodyError(
                "A chunked request body needs a Content-Length here (the server cannot delimit it)", 411
            )
        return _read_to_end(stream), True
    return None, False


def _read_exactly(stream: IO[bytes], size: int) -> Iterator[bytes]:
    remaining = size
    while remaining > 0:
        chunk = _read(stream, min(CHUNK_SIZE, remaining))
        if not chunk:
            raise ClientBodyError(f"it ended {remaining} of {size} bytes short of its Content-Length")
        remaining -= len(chunk)
        yield chunk


def _read_to_end(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := _read(stream, CHUNK_SIZE):
        yield chunk


def _read(stream: IO[bytes], size: int) -> bytes:
    try:
        return stream.read(size)
    except Exception as exc:  # the server's input failing is the client's body failing
        raise ClientBodyError(f"reading it failed: {innermost(exc)}") from exc
