"""UpstreamApp: the proxy itself, one urllib3 pool per app and the answers it gives when it gets none.

One pool per app, shared by every thread of a gthread worker.  A GET or
HEAD whose connection breaks before any answer (a pooled keep-alive
connection the upstream had just closed) is tried once more; nothing else
is retried, and no timeout is waited for twice.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self

import urllib3
from urllib3 import BaseHTTPResponse
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    SSLError,
)
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util import Retry, Timeout

from imagecache.http.causes import chain, innermost
from imagecache.http.errors import UPSTREAM_ERROR_HEADER, send_error
from imagecache.http.types import StartResponse, WSGIEnvironment
from imagecache.upstream.base_url import parse_base_url
from imagecache.upstream.forwarding import LOG
from imagecache.upstream.request import ClientBodyError, request_body, request_headers, request_path
from imagecache.upstream.response import UpstreamBody, response_headers, status_line, via_for_version

#: Methods a lost connection may be retried for (they have no body).
_RETRYABLE = frozenset({"GET", "HEAD"})
#: A "%" that starts no escape.  urllib3 re-encodes *every* "%" of a target
#: holding one (so "%2F" would become "%252F"); quoting it first keeps the
#: valid escapes as they are.
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


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
            raise MaxRetryError(_pool, url or "", error) from error  # type: ignore[arg-type]  # urllib3 passes its optional pool on the same way
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
        self.scheme, self.host, self.port, self.prefix = parse_base_url(base_url)
        self.where = f"{self.host}:{self.port}"
        if not timeout > 0:
            raise ValueError(f"the upstream timeout must be a positive number of seconds, not {timeout!r}")
        if connect_timeout is not None and not connect_timeout > 0:
            raise ValueError(
                f"the upstream connect timeout must be a positive number of seconds, not {connect_timeout!r}"
            )
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

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        target = self.prefix + request_path(environ)
        if environ.get("QUERY_STRING"):
            target += "?" + environ["QUERY_STRING"]
        target = _LONE_PERCENT.sub("%25", target if target.startswith("/") else "/" + target)
        headers = request_headers(environ)
        try:
            body, chunked = request_body(environ, headers)
        except ClientBodyError as exc:
            return send_error(environ, start_response, exc.status, f"{exc}.")
        pool = self._pools.connection_from_host(self.host, port=self.port, scheme=self.scheme)
        # urllib3 sends the body under the *connect* timeout: an upload the
        # upstream reads slowly must get the full timeout.
        connect_timeout = self.connect_timeout if body is None else max(self.connect_timeout, self.timeout)
        try:
            resp = pool.urlopen(
                method, target,
                body=body, headers=headers, chunked=chunked,
                timeout=Timeout(connect=connect_timeout, read=self.timeout),
                retries=_RETRY_ONCE if method in _RETRYABLE and body is None else False,
                redirect=False, assert_same_host=False,
                preload_content=False, decode_content=False, release_conn=False,
            )
        except ClientBodyError as exc:
            LOG.info("%s %s: the client's body broke off: %s", method, target, exc)
            return send_error(environ, start_response, 400, f"The request body broke off: {exc}.")
        except MaxRetryError as exc:
            return self._unreachable(environ, start_response, method, target, exc.reason or exc)
        except (HTTPError, OSError) as exc:
            return self._unreachable(environ, start_response, method, target, exc)
        start_response(status_line(resp), response_headers(resp.headers, via_for_version(resp.version)))
        return UpstreamBody(resp, self.where, f"{method} {target}", send_body=method != "HEAD")

    def _unreachable(
        self, environ: WSGIEnvironment, start_response: StartResponse, method: str, target: str, error: BaseException
    ) -> Iterable[bytes]:
        """The 502 or 504 for a request that got no answer, saying why in words."""
        cause = innermost(error)
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
        return send_error(environ, start_response, status, message, [(UPSTREAM_ERROR_HEADER, kind)])


def _timed_out(error: BaseException) -> bool:
    """Whether a timeout is behind ``error``: urllib3 files one while sending the body
    under ProtocolError("Connection aborted."), not under its timeouts."""
    for current in chain(error):
        if isinstance(current, NewConnectionError):
            return False
        if isinstance(current, (Urllib3Timeout, TimeoutError)):
            return True
    return False
