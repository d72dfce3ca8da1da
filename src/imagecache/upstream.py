"""UpstreamApp: a streaming reverse proxy to an upstream image API (edge mode).

Every request it gets goes to ``base_url`` as it came (method, raw path and
query, end-to-end headers, body), and the upstream's answer comes back as it
is (status, end-to-end headers, body): redirects are passed on, not
followed.  Bodies stream both ways in chunks of at most 1 MiB, so a
multi-GB image upload or download never sits in memory.

What the proxy says itself:

* a 502 (the upstream cannot be reached: refused, no such host, TLS failed,
  connection dropped before an answer) or a 504 (no connection or no answer
  in time), with a JSON body shaped like the server's other errors and the
  header ``X-Imagecache-Upstream-Error: unreachable|timeout``, so the cache
  filter tells them from an upstream's own 502, 503 or 504;
* a 400 when the client's own request body breaks off during the upload.

A body that breaks off in the middle raises :class:`UpstreamBodyError` out
of the response iterator: the client sees a broken transfer, never a short
body that looks complete.

One urllib3 pool per app, shared by every thread of a gthread worker.  A
GET or HEAD whose connection breaks before any answer (a pooled keep-alive
connection the upstream had just closed) is tried once more; nothing else is
retried, and no timeout is waited for twice.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from http import HTTPStatus
from types import TracebackType
from typing import IO, Any, Self
from urllib.parse import quote, unquote_to_bytes, urlsplit

import urllib3
from urllib3 import BaseHTTPResponse, HTTPHeaderDict
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    LocationParseError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    SSLError,
)
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util import SKIP_HEADER, Retry, Timeout, parse_url

LOG = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
Environ = Mapping[str, Any]

#: Largest piece of a body read or sent at once, either way.
CHUNK_SIZE = 1 << 20
#: A response abandoned with at most this much left is read to its end so its
#: connection goes back to the pool; with more left the connection is closed.
DRAIN_LIMIT = 64 << 10
#: Set on the 502 and 504 the proxy answers itself (see module docstring).
UPSTREAM_ERROR_HEADER = "X-Imagecache-Upstream-Error"
VIA_PSEUDONYM = "imagecache"

#: Hop-by-hop fields (RFC 9110 §7.6.1, plus the obsolete ones still seen),
#: never forwarded either way; so is every field named in ``Connection``.
#: Response headers the WSGI server sets itself.
_SERVER_SET = frozenset({"date", "server"})
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "te", "transfer-encoding",
    "upgrade", "proxy-authorization", "proxy-authenticate", "trailer",
})
#: Request fields not forwarded besides: urllib3 sets the upstream's Host,
#: and the proxy reads the whole body before the upstream could say 100.
_REQUEST_ONLY_DROPPED = frozenset({"host", "expect"})
#: Fields the WSGI server keeps outside ``HTTP_*``, and their names.
_CGI_HEADERS = {"CONTENT_TYPE": "Content-Type", "CONTENT_LENGTH": "Content-Length"}
#: Characters left as they are when a decoded path has to be quoted again.
_PATH_SAFE = "/:@!$&'()*+,;=~"
#: Methods a lost connection may be retried for (they have no body).
_RETRYABLE = frozenset({"GET", "HEAD"})
_PROTOCOL = re.compile(r"HTTP/(\d+(?:\.\d+)?)\Z")
#: A "%" that starts no escape.  urllib3 re-encodes *every* "%" of a target
#: holding one (so "%2F" would become "%252F"); quoting it first keeps the
#: valid escapes as they are.
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


class UpstreamBodyError(ConnectionError):
    """The upstream's body broke off (reset, closed early, stalled past the timeout).

    A ``ConnectionError`` with ``errno`` ECONNRESET: the WSGI server then
    drops the client's connection and logs at most a debug line, since
    this module has already logged the failure once.
    """


class ClientBodyError(Exception):
    """The client's request body cannot be sent: malformed framing, or it broke off."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class _RetryLostConnection(Retry):
    """One more try for a connection that broke before an answer, never after a timeout.

    A slow upstream is not made twice as slow: timeouts (other than a
    refused connection, which urllib3 files under connect timeouts) end the
    request at once.
    """

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        if isinstance(error, Urllib3Timeout) and not isinstance(error, NewConnectionError):
            raise MaxRetryError(_pool, url or "", error) from error  # type: ignore[arg-type]
        return super().increment(method, url, response, error, _pool, _stacktrace)


_RETRY_ONCE = _RetryLostConnection(
    total=1, connect=1, read=1, other=0, status=0, redirect=0,
    allowed_methods=_RETRYABLE, raise_on_redirect=False, raise_on_status=False,
)


class UpstreamApp:
    """WSGI app forwarding every request to ``base_url`` and streaming the answer back.

    ``timeout`` bounds each wait for the upstream (an answer, the next bytes
    of a body); ``connect_timeout`` (default: ``timeout``) bounds opening a
    connection.  ``ca_file`` verifies an https upstream against that CA
    instead of the system's; ``insecure`` skips the verification.  A bad
    ``base_url`` or option is a ValueError here, not a failure per request.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 60.0,
        connect_timeout: float | None = None,
        pool_maxsize: int = 32,
        ca_file: str | None = None,
        insecure: bool = False,
    ) -> None:
        self.scheme, self.host, self.port, self.prefix = _parse_base_url(base_url)
        self.where = f"{self.host}:{self.port}"
        if not timeout > 0:
            raise ValueError(f"the upstream timeout must be a positive number of seconds, not {timeout!r}")
        if connect_timeout is not None and not connect_timeout > 0:
            raise ValueError(f"the upstream connect timeout must be a positive number of seconds, not {connect_timeout!r}")
        if pool_maxsize < 1:
            raise ValueError(f"the upstream pool size must be at least 1, not {pool_maxsize!r}")
        if ca_file is not None and not os.path.isfile(ca_file):
            raise ValueError(f"the upstream CA file {ca_file} does not exist")
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout) if connect_timeout is not None else self.timeout
        tls: dict[str, Any] = (
            {"cert_reqs": "CERT_NONE", "assert_hostname": False}
            if insecure
            else {"cert_reqs": "CERT_REQUIRED", "ca_certs": ca_file}
        )
        if insecure and self.scheme == "https":
            LOG.warning("the upstream %s is reached without verifying its TLS certificate (insecure)", self.where)
        self._pools = urllib3.PoolManager(num_pools=1, maxsize=pool_maxsize, block=False, retries=False, **tls)

    def __repr__(self) -> str:
        return f"<UpstreamApp {self.scheme}://{self.where}{self.prefix}>"

    def close(self) -> None:
        """Close the pooled connections (the app stays usable)."""
        self._pools.clear()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        target = self.prefix + request_path(environ)
        if environ.get("QUERY_STRING"):
            target += "?" + environ["QUERY_STRING"]
        target = _LONE_PERCENT.sub("%25", target if target.startswith("/") else "/" + target)
        headers = request_headers(environ)
        try:
            body, chunked = request_body(environ, headers)
        except ClientBodyError as exc:
            return _error(environ, start_response, exc.status, f"{exc}.")
        pool = self._pools.connection_from_host(self.host, port=self.port, scheme=self.scheme)
        try:
            resp = pool.urlopen(
                method, target,
                body=body, headers=headers, chunked=chunked,
                # urllib3 sends the body under the *connect* timeout: an upload
                # the upstream reads slowly must get the full timeout.
                timeout=Timeout(connect=self.connect_timeout if body is None else max(self.connect_timeout, self.timeout),
                                read=self.timeout),
                retries=_RETRY_ONCE if method in _RETRYABLE and body is None else False,
                redirect=False, assert_same_host=False,
                preload_content=False, decode_content=False, release_conn=False,
            )
        except ClientBodyError as exc:
            LOG.info("%s %s: the client's body broke off: %s", method, target, exc)
            return _error(environ, start_response, 400, f"The request body broke off: {exc}.")
        except MaxRetryError as exc:
            return self._unreachable(environ, start_response, method, target, exc.reason or exc)
        except (HTTPError, OSError) as exc:
            return self._unreachable(environ, start_response, method, target, exc)
        start_response(_status_line(resp), response_headers(resp.headers, _via_for_version(resp.version)))
        return UpstreamBody(resp, self.where, f"{method} {target}", send_body=method != "HEAD")

    def _unreachable(
        self, environ: Environ, start_response: StartResponse, method: str, target: str, error: BaseException
    ) -> Iterable[bytes]:
        """The 502 or 504 for a request that got no answer, saying why in words."""
        cause = _innermost(error)
        if isinstance(error, ConnectTimeoutError) and not isinstance(error, NewConnectionError):
            status, kind = 504, "timeout"
            message = f"The image service at {self.where} did not accept a connection in time ({cause})."
        elif _timed_out(error):
            status, kind = 504, "timeout"
            message = f"The image service at {self.where} did not answer within {self.timeout:g} s."
        else:
            status, kind = 502, "unreachable"
            if isinstance(error, SSLError):
                message = f"TLS with the image service at {self.where} failed: {cause}."
            elif isinstance(error, ProtocolError):
                message = f"The image service at {self.where} closed the connection without answering: {cause}."
            else:
                message = f"The image service at {self.where} cannot be reached: {cause}."
        LOG.warning("%s %s: %s", method, target, message)
        return _error(environ, start_response, status, message, {UPSTREAM_ERROR_HEADER: kind})


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
            message = f"the image service at {self._where} broke off {self._request} after {self._sent} bytes: {_innermost(exc)}"
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


def _timed_out(error: BaseException) -> bool:
    """Whether a timeout is behind ``error``: urllib3 files one while sending the body
    under ProtocolError("Connection aborted."), not under its timeouts."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, NewConnectionError):
            return False
        if isinstance(current, (Urllib3Timeout, TimeoutError)):
            return True
        current = current.__cause__ or current.__context__ or next(
            (arg for arg in current.args if isinstance(arg, BaseException)), None
        )
    return False


def _nearly_done(resp: BaseHTTPResponse) -> bool:
    remaining = resp.length_remaining
    return remaining is not None and remaining <= DRAIN_LIMIT


# -- the request ---------------------------------------------------------------------


def request_path(environ: Environ) -> str:
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
    return quote(data, safe=_PATH_SAFE)


def _raw_path(raw: str) -> str | None:
    if not raw.startswith("/"):
        if "://" not in raw:
            return None  # "*" or garbage
        raw = urlsplit(raw).path  # absolute-form request target
    return raw.partition("?")[0].partition("#")[0]


def _decoded(raw: str) -> str:
    return unquote_to_bytes(raw).decode("latin-1")


def _connection_tokens(value: str | None) -> set[str]:
    return {token.strip().lower() for token in (value or "").split(",") if token.strip()}


def request_headers(environ: Environ) -> HTTPHeaderDict:
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
    dropped = HOP_BY_HOP | _REQUEST_ONLY_DROPPED | _connection_tokens(found.get("Connection"))
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


def _server_host(environ: Environ) -> str:
    name, port = environ.get("SERVER_NAME", ""), str(environ.get("SERVER_PORT", ""))
    default = "443" if environ.get("wsgi.url_scheme") == "https" else "80"
    return name if not port or port == default else f"{name}:{port}"


def _via(environ: Environ) -> str:
    """Our Via entry for a request: the protocol the client spoke, then who we are."""
    match = _PROTOCOL.match(environ.get("SERVER_PROTOCOL", ""))
    return f"{match.group(1) if match else '1.1'} {VIA_PSEUDONYM}"


def _via_for_version(version: int) -> str:
    """Our Via entry for a response: the protocol the upstream spoke (http.client's 10, 11)."""
    spoken = f"{version // 10}.{version % 10}" if version in (10, 11) else "1.1"
    return f"{spoken} {VIA_PSEUDONYM}"


def request_body(environ: Environ, headers: HTTPHeaderDict) -> tuple[Iterator[bytes] | None, bool]:
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
            raise ClientBodyError("A chunked request body needs a Content-Length here (the server cannot delimit it)", 411)
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
    except Exception as exc:  # noqa: BLE001 - the server's input failing is the client's body failing
        raise ClientBodyError(f"reading it failed: {_innermost(exc)}") from exc


# -- the response --------------------------------------------------------------------


def response_headers(headers: HTTPHeaderDict, via: str) -> list[tuple[str, str]]:
    """The upstream's end-to-end response headers, with our Via appended.

    Transfer-Encoding goes (the WSGI server frames the body again), and with
    it any Content-Length, which a chunked message must not be judged by.
    Date and Server go too: gunicorn always sends its own, and two of each
    would reach the client.
    """
    chunked = "Transfer-Encoding" in headers
    dropped = HOP_BY_HOP | _SERVER_SET | _connection_tokens(", ".join(headers.getlist("Connection")))
    if chunked:
        dropped = dropped | {"content-length"}
    kept = [(name, value) for name, value in headers.items() if name.lower() not in dropped and name.lower() != "via"]
    previous = ", ".join(headers.getlist("Via"))
    kept.append(("Via", f"{previous}, {via}" if previous else via))
    return kept


def _status_line(resp: BaseHTTPResponse) -> str:
    reason = resp.reason
    if not reason:
        try:
            reason = HTTPStatus(resp.status).phrase
        except ValueError:
            reason = "Unknown"
    return f"{resp.status} {reason}"


def _error(
    environ: Environ, start_response: StartResponse, status: int, message: str, extra: Mapping[str, str] | None = None
) -> Iterable[bytes]:
    """A JSON error in the server's shape: ``{"error": {"code", "title", "message"}}``."""
    title = HTTPStatus(status).phrase
    body = json.dumps({"error": {"code": status, "title": title, "message": message}}).encode("utf-8")
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *(extra or {}).items()]
    start_response(f"{status} {title}", headers)
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


def _innermost(error: BaseException) -> str:
    """The most specific message in an exception chain (urllib3 wraps several deep)."""
    seen: set[int] = set()
    while id(error) not in seen:
        seen.add(id(error))
        inner = error.__cause__ or error.__context__
        if inner is None:  # urllib3 also carries causes as arguments or reasons
            inner = getattr(error, "reason", None) if isinstance(getattr(error, "reason", None), BaseException) else None
        if inner is None:
            inner = next((arg for arg in error.args if isinstance(arg, BaseException)), None)
        if inner is None:
            break
        error = inner
    return str(error) or type(error).__name__


# -- the base URL --------------------------------------------------------------------


def _parse_base_url(base_url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path prefix without its trailing slash), or ValueError."""
    if not isinstance(base_url, str) or not base_url.strip():
        raise ValueError("the upstream URL is empty; expected http(s)://host[:port][/path]")
    try:
        split = urlsplit(base_url.strip())
        port = split.port
        parsed = parse_url(base_url.strip())
    except (ValueError, LocationParseError):
        raise ValueError(f"the upstream URL {_redacted(base_url)} is not a valid URL (bad port or host?)") from None
    shown = _redacted(base_url)
    if split.scheme.lower() not in ("http", "https"):
        raise ValueError(f"the upstream URL {shown} must start with http:// or https://")
    if not split.hostname or not parsed.host:
        raise ValueError(f"the upstream URL {shown} has no host")
    if split.username is not None or split.password is not None:
        raise ValueError(
            f"the upstream URL {shown} carries credentials; they are not supported "
            "(each caller's X-Auth-Token is forwarded)"
        )
    if split.query or "?" in base_url:
        raise ValueError(f"the upstream URL {shown} has a query string; only a path prefix is allowed")
    if split.fragment or "#" in base_url:
        raise ValueError(f"the upstream URL {shown} has a fragment; only a path prefix is allowed")
    scheme = split.scheme.lower()
    prefix = quote(split.path, safe=_PATH_SAFE + "%").rstrip("/")
    return scheme, parsed.host, port or (443 if scheme == "https" else 80), prefix


def _redacted(url: str) -> str:
    """``url`` without any password in it, for messages."""
    return re.sub(r"(//[^/@]*?:)[^/@]*@", r"\1***@", str(url))
