"""Prometheus metrics: counters per process, summed over gunicorn workers.

Nothing here touches prometheus_client's default ``REGISTRY``: each
:class:`Metrics` owns a private :class:`~prometheus_client.CollectorRegistry`,
so two caches in one process (tests, embedders) never share or clash.

Under gunicorn every worker is a process with its own counters, and a scrape
lands on one worker only.  prometheus_client's multiprocess mode solves that:
each process writes its values to mmap'd ``*.db`` files in a shared directory
and the scrape sums the files.  The server therefore

1. calls :func:`reset_multiprocess_dir` in the master at start (stale files
   from a previous run would be summed in forever);
2. calls :func:`enable_multiprocess` in each worker, then builds
   ``Metrics(multiprocess_dir=...)``;
3. serves :class:`MetricsApp` at ``/metrics``.

The cache sizes are gauges computed at scrape time by the caller (one
``du``-like answer for the whole node), never stored per process, so summing
workers cannot multiply them.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Literal, NamedTuple, Protocol, get_args
from wsgiref.types import StartResponse, WSGIEnvironment  # not http.types: the cache imports this module

from prometheus_client import CollectorRegistry, Counter, generate_latest, values
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

log = logging.getLogger(__name__)

#: What :func:`~prometheus_client.generate_latest` emits (the classic text
#: format).  prometheus_client 0.26's ``CONTENT_TYPE_LATEST`` says
#: ``version=1.0.0``, which its own WSGI app only sends when the scraper asks
#: for it; without negotiation it answers 0.0.4, and so do we.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

SOURCES = ("cache", "upstream")
FILL_RESULTS = ("completed", "failed", "abandoned")
#: How a fill that read from peers ended: verified, stopped (finished elsewhere), or failed verification.
PEER_FILL_RESULTS = ("completed", "failed", "suspect")

#: Why image bytes went to a client without being stored, decided before the answer started: the
#: ``reason`` of ``imagecache_not_stored_total`` and ``imagecache_origin_requests_total``, and the
#: answer's ``Cache-Status`` detail (README "Cache-Status").  A closed set: dashboards group by it.
PassReason = Literal["range-uncached", "too-large", "disk-full", "cache-error", "verify-failed", "not-active",
                     "no-metadata", "origin-error", "raced"]
#: Why an image was not stored: a pass-through, or a fill that ended without publishing (``abandoned``:
#: nobody was reading it any more; ``no-room``: evicting what it may did not make room for it at publish).
NotStoredReason = Literal[PassReason, "abandoned", "no-room"]
#: Why image bytes were read from the image service: a fill (``fill``), the rest of a fill that peers
#: could not finish (``peer-fallback``), the rest of a followed fill that stopped (``resume``), the
#: prefetcher (``prefetch``), or a pass-through.
OriginReason = Literal["fill", "peer-fallback", "resume", "prefetch", PassReason]
PASS_REASONS: tuple[PassReason, ...] = get_args(PassReason)
NOT_STORED_REASONS: tuple[NotStoredReason, ...] = get_args(NotStoredReason)
ORIGIN_REASONS: tuple[OriginReason, ...] = get_args(OriginReason)

_HAS_CREATED = frozenset({"counter", "histogram", "summary"})


class PinFacts(NamedTuple):
    """The pins' gauges, read at scrape time (see imagecache.cache.pins)."""

    cached: int  # pinned images in the cache
    uncached: int  # pinned, not (yet) cached
    bytes: int  # bytes of the cached ones
    over_limit: bool  # pinned images alone exceed image_cache_max_size


def pin_gauges(pins: PinFacts) -> list[Metric]:
    """``imagecache_pinned_images{state}``, ``imagecache_pinned_bytes``, ``imagecache_pinned_over_limit``."""
    images = GaugeMetricFamily("imagecache_pinned_images", "Pinned images, in the cache or not yet.",
                               labels=["state"])
    images.add_metric(["cached"], pins.cached)
    images.add_metric(["uncached"], pins.uncached)
    return [
        images,
        GaugeMetricFamily("imagecache_pinned_bytes", "Bytes of the pinned images in the cache.", value=pins.bytes),
        GaugeMetricFamily("imagecache_pinned_over_limit",
                          "1 while pinned images alone exceed image_cache_max_size (nothing else is cached).",
                          value=int(pins.over_limit)),
    ]


class _Collector(Protocol):
    def collect(self) -> Iterable[Metric]: ...


def enable_multiprocess(directory: str) -> None:
    """Switch this process to prometheus_client's multiprocess values.

    prometheus_client chooses how metric values are stored once, when
    ``prometheus_client.values`` is imported: ``ValueClass`` becomes the
    mmap-backed class only if ``PROMETHEUS_MULTIPROC_DIR`` was already set.
    Our package (or gunicorn's config, or a test) usually imports it before
    the server knows its directory, so setting the variable alone would leave
    every counter in process memory, invisible to the scrape that lands on
    another worker.  Re-running ``values.get_value_class()`` after setting the
    variable fixes that for every metric constructed afterwards (metrics built
    before keep their old storage, hence "before constructing Metrics").
    """
    os.environ[MULTIPROC_ENV] = directory
    # prometheus_client leaves get_value_class unannotated.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def reset_multiprocess_dir(directory: str) -> None:
    """Create ``directory``, or delete the ``*.db`` files a previous run left.

    The collector sums every file it finds; a dead run's counters would be
    added to this run's forever (prometheus_client asks for a wipe before
    start).  Only ``*.db`` files go: the directory may be shared or watched.
    """
    os.makedirs(directory, exist_ok=True)
    for path in glob.glob(os.path.join(glob.escape(directory), "*.db")):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def _check_multiprocess(directory: str) -> None:
    """Fail at construction rather than silently count in process memory."""
    enabled = os.environ.get(MULTIPROC_ENV)
    same_dir = enabled is not None and os.path.realpath(enabled) == os.path.realpath(directory)
    if not (getattr(values.ValueClass, "_multiprocess", False) and same_dir):
        raise ValueError(
            f"multiprocess metrics in {directory!r} need enable_multiprocess({directory!r}) "
            "in this process before Metrics is constructed"
        )
    if not os.path.isdir(directory):
        raise ValueError(f"multiprocess metrics directory {directory!r} does not exist")


class _Exposition:
    """One scrape's families: the counters (minus ``_created``) and the gauges.

    ``_created`` samples only exist in single-process mode (the multiprocess
    collector has no creation time to report), so dropping them gives one
    exposition shape whatever the deployment.
    """

    def __init__(self, counters: _Collector, gauges: Iterable[Metric]) -> None:
        self.counters = counters
        self.gauges = list(gauges)

    def collect(self) -> Iterator[Metric]:
        for family in self.counters.collect():
            if family.type not in _HAS_CREATED:
                yield family
                continue
            trimmed = Metric(family.name, family.documentation, family.type, family.unit)
            created = family.name + "_created"
            trimmed.samples = [s for s in family.samples if s.name != created]
            yield trimmed
        yield from self.gauges


class Metrics:
    """The counters of one process (one per gunicorn worker, or one in tests/library use).

    With ``multiprocess_dir`` the counters are written to that directory (see
    :func:`enable_multiprocess`, which must run first) and :meth:`render`
    reports the sum over every process writing there.
    """

    def __init__(self, *, multiprocess_dir: str | None = None) -> None:
        if multiprocess_dir is not None:
            _check_multiprocess(multiprocess_dir)
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        r = self.registry
        self.cache_hits = Counter(
            "imagecache_cache_hits",
            "Downloads served from a verified cached file (Range included).",
            registry=r,
        )
        self.cache_misses = Counter(
            "imagecache_cache_misses",
            "Downloads not served from a verified cached file.",
            registry=r,
        )
        self.served_bytes = Counter(
            "imagecache_served_bytes",
            "Image bytes sent to clients, by where they came from.",
            ["source"],
            registry=r,
        )
        self.upstream_bytes = Counter(
            "imagecache_upstream_bytes",
            "Image bytes read from the app or upstream (fills and pass-throughs); peers' bytes not included.",
            registry=r,
        )
        self.peer_bytes = Counter(
            "imagecache_peer_bytes",
            "Image bytes this node's fills received from peers.",
            registry=r,
        )
        self.peer_served_bytes = Counter(
            "imagecache_peer_served_bytes",
            "Image bytes this node sent to peers filling from it.",
            registry=r,
        )
        self.peer_fills = Counter(
            "imagecache_peer_fills",
            "Fills that read from a peer, by how they ended.",
            ["result"],
            registry=r,
        )
        self.fills = Counter(
            "imagecache_fills",
            "Cache fills that ended, by result.",
            ["result"],
            registry=r,
        )
        self.fill_followers = Counter(
            "imagecache_fill_followers",
            "Requests that streamed from a fill in progress.",
            registry=r,
        )
        self.evictions = Counter(
            "imagecache_evictions",
            "Cached images removed.",
            registry=r,
        )
        self.not_stored = Counter(
            "imagecache_not_stored",
            "Downloads and fills whose image was not stored, by reason.",
            ["reason"],
            registry=r,
        )
        self.origin_requests = Counter(
            "imagecache_origin_requests",
            "Image-data requests to the image service (the origin), by reason.",
            ["reason"],
            registry=r,
        )
        self.origin_bytes = Counter(
            "imagecache_origin_bytes",
            "Image bytes read from the image service, by reason (they add up to imagecache_upstream_bytes_total).",
            ["reason"],
            registry=r,
        )
        # Children exist only once touched; create them so a dashboard sees 0,
        # not "no data", before the first fill fails.
        for source in SOURCES:
            self.served_bytes.labels(source=source)
        for result in FILL_RESULTS:
            self.fills.labels(result=result)
        for result in PEER_FILL_RESULTS:
            self.peer_fills.labels(result=result)
        for reason in NOT_STORED_REASONS:
            self.not_stored.labels(reason=reason)
        for origin_reason in ORIGIN_REASONS:
            self.origin_requests.labels(reason=origin_reason)
            self.origin_bytes.labels(reason=origin_reason)

    def from_origin(self, reason: OriginReason) -> Callable[[int], None]:
        """A counter of image bytes read from the origin for ``reason`` (into the total and the per-reason count)."""
        by_reason = self.origin_bytes.labels(reason=reason)

        def count(n: int) -> None:
            self.upstream_bytes.inc(n)
            by_reason.inc(n)

        return count

    def origin_request(self, reason: OriginReason) -> Callable[[int], None]:
        """Count one image-data request to the origin for ``reason``; the counter of its bytes."""
        self.origin_requests.labels(reason=reason).inc()
        return self.from_origin(reason)

    def count_not_stored(self, reason: NotStoredReason) -> None:
        self.not_stored.labels(reason=reason).inc()

    def render(
        self,
        cache_size: int | None = None,
        cache_max_size: int | None = None,
        pins: PinFacts | None = None,
        disk: DiskFacts | None = None,
    ) -> tuple[str, bytes]:
        """(content type, body) in Prometheus text format.

        With ``multiprocess_dir``, the sum over all processes writing there.

        ``cache_size`` / ``cache_max_size`` become the gauges
        ``imagecache_cache_size_bytes`` and ``imagecache_cache_max_size_bytes``
        (computed at scrape time by the caller, so they are never stored per
        process); omitted when None.  So are the gauges of ``pins`` (:func:`pin_gauges`) and of ``disk``
        (:func:`disk_gauges`).
        """
        counters: _Collector
        if self.multiprocess_dir is not None:
            # A fresh registry per scrape holding only the file collector:
            # adding self.registry too would count this process twice.
            # prometheus_client leaves MultiProcessCollector's __init__ unannotated.
            counters = MultiProcessCollector(None, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        else:
            counters = self.registry
        gauges: list[Metric] = []
        if cache_size is not None:
            gauges.append(GaugeMetricFamily(
                "imagecache_cache_size_bytes", "Bytes of verified images in the cache.",
                value=cache_size,
            ))
        if cache_max_size is not None:
            gauges.append(GaugeMetricFamily(
                "imagecache_cache_max_size_bytes", "The cache's size limit (image_cache_max_size).",
                value=cache_max_size,
            ))
        if pins is not None:
            gauges.extend(pin_gauges(pins))
        if disk is not None:
            gauges.extend(disk_gauges(disk))
        registry = CollectorRegistry()
        registry.register(_Exposition(counters, gauges))
        return CONTENT_TYPE, generate_latest(registry)


class DiskFacts(NamedTuple):
    """The node's disk and fills, read at scrape time: what a dashboard sets the cache size against."""

    free: int  # bytes free on the cache's filesystem
    min_free: int  # bytes the cache keeps free there (image_cache_min_free, or its default)
    fills: int  # fills writing on this node now (an incomplete file with a live writer)


def disk_gauges(disk: DiskFacts) -> list[Metric]:
    """``imagecache_filesystem_free_bytes``, ``imagecache_cache_min_free_bytes``, ``imagecache_fills_in_progress``."""
    return [
        GaugeMetricFamily("imagecache_filesystem_free_bytes", "Bytes free on the cache's filesystem.",
                          value=disk.free),
        GaugeMetricFamily("imagecache_cache_min_free_bytes",
                          "Bytes the cache keeps free on its filesystem (image_cache_min_free).", value=disk.min_free),
        GaugeMetricFamily("imagecache_fills_in_progress", "Fills writing on this node now.", value=disk.fills),
    ]


def _plain(
    start_response: StartResponse,
    status: str,
    body: bytes,
    method: str,
    content_type: str = "text/plain; charset=utf-8",
    extra: Iterable[tuple[str, str]] = (),
) -> list[bytes]:
    start_response(status, [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        *extra,
    ])
    return [] if method == "HEAD" else [body]


class MetricsApp:
    """WSGI app for GET/HEAD /metrics: 200 with the text format.

    Other methods get 405 with ``Allow: GET, HEAD``.

    An exception while collecting answers 500 with a one-line text message
    and logs it (no traceback to the client).  ``sizes()`` returns
    ``(cache_size, cache_max_size)``; if it raises, the gauges are left out
    and the counters still render: a broken disk must not blind monitoring.
    ``pins()`` and ``disk()`` give the pins' and the disk's gauges, each left out the same way when it raises.
    """

    #: The methods it answers; any other is a 405.
    METHODS = ("GET", "HEAD")

    def __init__(
        self,
        metrics: Metrics,
        sizes: Callable[[], tuple[int, int]] | None = None,
        pins: Callable[[], PinFacts] | None = None,
        disk: Callable[[], DiskFacts] | None = None,
    ) -> None:
        self.metrics = metrics
        self.sizes = sizes
        self.pins = pins
        self.disk = disk

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in self.METHODS:
            return _plain(
                start_response, "405 Method Not Allowed", b"GET or HEAD only\n", method,
                extra=[("Allow", ", ".join(self.METHODS))],
            )
        cache_size: int | None = None
        cache_max_size: int | None = None
        if self.sizes is not None:
            try:
                cache_size, cache_max_size = self.sizes()
            except Exception:
                log.exception("metrics: cannot measure the cache; size gauges left out")
        pins: PinFacts | None = None
        if self.pins is not None:
            try:
                pins = self.pins()
            except Exception:
                log.exception("metrics: cannot read the pins; pin gauges left out")
        disk: DiskFacts | None = None
        if self.disk is not None:
            try:
                disk = self.disk()
            except Exception:
                log.exception("metrics: cannot measure the disk; disk gauges left out")
        try:
            content_type, body = self.metrics.render(cache_size, cache_max_size, pins, disk)
        except Exception:
            log.exception("metrics: collecting failed")
            return _plain(
                start_response, "500 Internal Server Error", b"metrics collection failed\n", method
            )
        return _plain(start_response, "200 OK", body, method, content_type)
