"""Request metrics: how many requests, answered with which code, and how long until their headers.

``imagecache_http_requests_total{method,code}`` and
``imagecache_http_request_duration_seconds{method}`` carry what the access
log says about each request in aggregate, so a node with ``access_log =
off`` still shows its request rate, its errors and its latency.  They are
ordinary prometheus_client metrics on the node's :class:`~imagecache.metrics.Metrics`
registry, so under gunicorn they are counted per process into the
multiprocess directory and summed at the scrape, like every other counter.

The duration is the time until the answer's headers are decided (the
application returned with its status and headers), not until its last
byte: a download's end depends on the image's size and on how fast the
client reads, and would drown the node's own latency.  Labels are bounded:
the method from a fixed set (else ``OTHER``), the code as its three digits.
Requests the worker answers itself before any application runs (408, 431,
503 past the connection limit) are not counted here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from imagecache.http.types import StartResponse, WSGIApplication, WSGIEnvironment

#: Methods counted by name; any other is ``OTHER``.
METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"})
#: Seconds: a small hit answers in well under a millisecond of server time, a miss waits for its origin.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def method_label(method: str) -> str:
    """The ``method`` label: the method itself when it is one we know, else ``OTHER`` (pure)."""
    return method if method in METHODS else "OTHER"


def code_label(status: str) -> str:
    """The ``code`` label: a WSGI status line's three-digit code (``000`` for anything else; pure)."""
    code = status[:3]
    return code if len(code) == 3 and code.isascii() and code.isdigit() and status[3:4] in ("", " ") else "000"


class RequestCounters:
    """The two request metrics on ``registry``, with their labelled children kept (the label sets are few)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "imagecache_http_requests_total",
            "HTTP requests answered by the node's application, by method and status code.",
            ["method", "code"], registry=registry,
        )
        self.duration = Histogram(
            "imagecache_http_request_duration_seconds",
            "Seconds from a request reaching the application to its status and headers being decided "
            "(not to the body's last byte, which depends on the size and on the client).",
            ["method"], registry=registry, buckets=BUCKETS,
        )
        self._counted: dict[tuple[str, str], Callable[[], None]] = {}
        self._timed: dict[str, Callable[[float], None]] = {}

    def observe(self, method: str, status: str, seconds: float) -> None:
        method = method_label(method)
        key = (method, code_label(status))
        count = self._counted.get(key)
        if count is None:
            count = self._counted.setdefault(key, self.requests.labels(*key).inc)
        count()
        timed = self._timed.get(method)
        if timed is None:
            timed = self._timed.setdefault(method, self.duration.labels(method).observe)
        timed(seconds)


class RequestMetrics:
    """WSGI middleware: counts and times every request through ``app`` into ``counters``.

    The body is passed on untouched (the worker sends file bodies itself and
    needs to see them as they are).
    """

    def __init__(self, app: WSGIApplication, counters: RequestCounters,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.app = app
        self.counters = counters
        self._clock = clock

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = self._clock()
        seen: list[str] = []

        def respond(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], object]:
            seen[:] = [status]
            return start_response(status, headers, exc_info)

        method = str(environ.get("REQUEST_METHOD", ""))
        try:
            body = self.app(environ, respond)
        except BaseException:
            self.counters.observe(method, "500", self._clock() - started)
            raise
        # An app that calls start_response only once iterated (rare here) is counted as it returns.
        self.counters.observe(method, seen[0] if seen else "000", self._clock() - started)
        return body
