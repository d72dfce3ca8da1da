"""Builds the WSGI pipeline and runs it under gunicorn.

The pipeline, outermost first::

    Router            /healthcheck, /metrics and /openapi.json answered here
      PeerEndpoint    /peer/v1/images/{id} for the other nodes (only with peer_token)
        AuthMiddleware  sets the RequestContext, or 401
          CacheFilter         hits, fills and followers (see :func:`build_node`)
            CacheManageFilter the cache management API
              app             the embedded images app, or the upstream proxy (--upstream)

Each gunicorn worker builds its own pipeline after the fork, so nothing the
app opens (sqlite connections, locks, threads) is ever shared across
processes.  The master checks first what a user can get wrong and builds the
pipeline once itself (:func:`preflight`, :func:`rehearse_build`), so a bad
setting or a broken install ends the command with one clear line before
anything listens.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from gunicorn.app.base import BaseApplication
from gunicorn.errors import AppImportError

from imagecache.cache import CacheError, ImageCache
from imagecache.config import ConfigError, Settings, effective_min_free
from imagecache.jobs.prewarmer import prewarm_jobs
from imagecache.jobs.scheduler import Job, PeriodicJobs
from imagecache.metrics import DiskFacts, Metrics, MetricsApp, PinFacts, enable_multiprocess, reset_multiprocess_dir
from imagecache.openapi import OpenAPIApp
from imagecache.origin import embedded_lookup, open_image_service
from imagecache.peers.endpoint import PeerEndpoint
from imagecache.serving.forked_check import run_forked
from imagecache.serving.log_setup import configure_logging
from imagecache.serving.options import bind_address, gunicorn_options, raise_file_limit
from imagecache.wsgi.auth import AuthMiddleware, TokenTable, load_tokens_file
from imagecache.wsgi.cache_filter import CacheFilter
from imagecache.wsgi.cache_manage import CacheManageFilter
from imagecache.wsgi.request_metrics import RequestCounters, RequestMetrics
from imagecache.wsgi.versions import CacheVersions

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """The application cannot be built although the settings are fine (e.g. a module is missing)."""


# -- the pipeline -------------------------------------------------------------


class Router:
    """Sends a few exact paths to their own apps and everything else on.

    These paths sit outside auth on purpose: load balancers and Prometheus
    probe them without credentials.
    """

    def __init__(self, routes: Mapping[str, WSGIApplication], default: WSGIApplication) -> None:
        self.routes = dict(routes)
        self.default = default

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        app = self.routes.get(environ.get("PATH_INFO", ""), self.default)
        return app(environ, start_response)


def _plain(
    start_response: StartResponse,
    status: str,
    text: str,
    method: str,
    extra: Iterable[tuple[str, str]] = (),
) -> list[bytes]:
    body = text.encode("utf-8")
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        *extra,
    ]
    start_response(status, headers)
    return [] if method == "HEAD" else [body]


class Healthcheck:
    """``GET /healthcheck``: 200 ``OK``, or 503 when the data dir is not writable.

    A node that cannot write its data dir can neither store uploads nor cache
    images, so a load balancer should send the traffic elsewhere.
    """

    #: The methods it answers; any other is a 405.
    METHODS = ("GET", "HEAD")

    def __init__(self, data_dir: str) -> None:
        self.data_dir = data_dir

    def healthy(self) -> bool:
        # access(2) reports EROFS for a read-only mount, not just mode bits.
        return os.path.isdir(self.data_dir) and os.access(self.data_dir, os.W_OK | os.X_OK)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in self.METHODS:
            return _plain(
                start_response, "405 Method Not Allowed", "GET or HEAD only\n", method,
                [("Allow", ", ".join(self.METHODS))],
            )
        if self.healthy():
            return _plain(start_response, "200 OK", "OK", method)
        log.warning("healthcheck: data dir %s is not writable", self.data_dir)
        return _plain(
            start_response, "503 Service Unavailable", "data dir is not writable\n", method
        )


def make_inner_app(settings: Settings) -> WSGIApplication:
    """The app at the bottom of the pipeline: the upstream proxy, or the embedded image service."""
    app, _ = open_image_service(settings)  # lives as long as the worker
    return app


@dataclass(frozen=True)
class Node:
    """One worker's application and the parts that live beside it."""

    app: WSGIApplication
    cache: ImageCache
    #: The cleaner, pruner and prefetcher on a timer; started by the caller
    #: (a gunicorn worker after the fork), never by building.
    jobs: PeriodicJobs
    #: The pre-warm policy's job, on a thread of its own; None when no policy is set.
    prewarm: PeriodicJobs | None = None


def build_node(
    settings: Settings,
    *,
    app: WSGIApplication | None = None,
    tokens: TokenTable | None = None,
    metrics: Metrics | None = None,
) -> Node:
    """The whole WSGI application for ``settings``, its cache and its periodic jobs.

    ``app`` replaces the innermost app (tests, embedders); ``tokens`` saves
    re-reading the tokens file when the caller already loaded it; ``metrics``
    are the counters to use (a gunicorn worker passes its multiprocess ones).
    The cache filter sits in front of the management filter as in Glance's
    ``cache cachemanage`` pipeline, so the prefetcher's sub-requests go
    straight to the images app; auth comes first so every layer sees the
    caller's context.
    """
    if settings.auth_strategy == "tokens" and tokens is None:
        assert settings.tokens_file is not None  # Settings validates this
        tokens = load_tokens_file(settings.tokens_file)
    metrics = metrics if metrics is not None else Metrics()
    inner = app if app is not None else make_inner_app(settings)
    if settings.upstream_url:
        inner = CacheVersions(inner)  # this node serves the cache API, whatever the upstream has
    cache = ImageCache(settings, metrics=metrics)
    manage = CacheManageFilter.for_app(inner, cache)
    pipeline = AuthMiddleware(
        CacheFilter.for_app(manage, cache, settings, embedded_lookup(inner, settings)),
        strategy=settings.auth_strategy,
        tokens=tokens,
        forward_unknown=bool(settings.upstream_url),
    )
    # Peers present the cluster's token, not a user's: they are answered before user authentication.
    front: WSGIApplication = PeerEndpoint(pipeline, cache, settings, metrics) if settings.peer_token else pipeline
    routes: dict[str, WSGIApplication] = {
        "/healthcheck": Healthcheck(settings.data_dir),
        "/metrics": MetricsApp(metrics, lambda: (cache.get_cache_size(), settings.image_cache_max_size),
                               lambda: pin_facts(cache), disk=lambda: disk_facts(cache)),
        "/openapi.json": OpenAPIApp(),
    }
    # The management API's own prefetcher: a periodic run and a PUT /v2/cache/{id}
    # never fetch the same image at once.
    jobs = PeriodicJobs.for_cache(cache, prefetcher=manage.prefetcher, settings=settings)
    counted = RequestMetrics(Router(routes, front), RequestCounters(metrics.registry))
    return Node(counted, cache, jobs, prewarm_jobs(cache, manage.prefetcher))


def pin_facts(cache: ImageCache) -> PinFacts:
    """The pins' gauges, at scrape time."""
    state = cache.pins.state()
    return PinFacts(cached=state.cached, uncached=state.pinned - state.cached, bytes=state.bytes,
                    over_limit=state.over_limit)


def disk_facts(cache: ImageCache) -> DiskFacts:
    """The disk's gauges, at scrape time: free space, the floor kept free, fills writing."""
    usage = cache.layout.disk_usage()
    fills = sum(1 for facts in cache.layout.incomplete() if cache.is_being_cached(facts.image_id))
    return DiskFacts(free=usage.free, min_free=effective_min_free(cache.settings, usage.total), fills=fills)


def build_app(
    settings: Settings,
    *,
    app: WSGIApplication | None = None,
    tokens: TokenTable | None = None,
    metrics: Metrics | None = None,
) -> WSGIApplication:
    """The WSGI application of :func:`build_node` (no periodic jobs running)."""
    return build_node(settings, app=app, tokens=tokens, metrics=metrics).app


def metrics_dir(settings: Settings) -> str:
    """Where the gunicorn workers keep their counters (emptied at every start)."""
    return os.path.join(settings.data_dir, "metrics")


# -- running it ---------------------------------------------------------------


def is_loopback_host(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name: assume it reaches the network


class ImagecacheApplication(BaseApplication):  # type: ignore[misc]  # gunicorn is untyped
    """gunicorn configured from :class:`Settings` only (no files, no argv)."""

    def __init__(
        self,
        settings: Settings,
        tokens: TokenTable | None,
        app_factory: Callable[[Settings], WSGIApplication] | None = None,
    ) -> None:
        self.settings = settings
        self.tokens = tokens
        self.app_factory = app_factory
        self.options = gunicorn_options(settings)
        super().__init__(prog="imagecache")

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> WSGIApplication:
        """Runs in each worker after the fork.

        Each worker counts in its own files under :func:`metrics_dir`;
        ``/metrics`` on any worker sums them all.
        """
        directory = metrics_dir(self.settings)
        os.makedirs(directory, exist_ok=True)  # the master emptied it; a bare load() (tests) did not
        enable_multiprocess(directory)
        metrics = Metrics(multiprocess_dir=directory)
        # gunicorn prints an AppImportError as one line (its traceback at debug
        # level) and stops with "App failed to load" (status 4), rather than
        # booting more workers that would fail the same way.
        try:
            app = self.app_factory(self.settings) if self.app_factory is not None else None
            node = build_node(self.settings, app=app, tokens=self.tokens, metrics=metrics)
        except (ConfigError, CacheError) as exc:
            raise AppImportError(f"imagecache: {exc}") from None
        except Exception as exc:
            raise AppImportError(f"imagecache: {build_failure(exc)}") from exc
        # gunicorn calls worker_exit in the worker at every exit but a SIGKILL (SIGTERM, SIGQUIT, SIGINT):
        # closing the cache writes the hits it still holds in memory.
        self.cfg.set("worker_exit", lambda arbiter, worker: node.cache.close())
        # Every worker runs the timer; a lock per job in the cache dir lets one
        # of them run each job once per interval.
        node.jobs.start()
        if node.prewarm is not None:
            node.prewarm.start()
        start_heartbeat(node.cache)
        return node.app


def start_heartbeat(cache: ImageCache) -> PeriodicJobs | None:
    """Keep this node alive in a shared index (an index without nodes needs no beat: None).

    A job of its own thread, so a long prune never delays a heartbeat; one
    worker beats per interval, as for the other jobs.
    """
    interval = cache.driver.heartbeat_interval
    if interval is None:
        return None
    jobs = PeriodicJobs(cache.settings.image_cache_dir, [Job("heartbeat", interval, cache.driver.heartbeat)],
                        thread_name="imagecache-heartbeat")
    jobs.start()
    return jobs


def preflight(
    settings: Settings, app_factory: Callable[[Settings], WSGIApplication] | None = None
) -> TokenTable | None:
    """What the master checks before forking: every user mistake we can see.

    Creates the data dir, reads the tokens file, checks the upstream URL, then
    reconciles the index and builds the workers' application once
    (:func:`rehearse_build`), both in a forked child.  Raises
    :class:`ConfigError` or :class:`StartupError`; returns the token table.
    """
    if settings.upstream_url:
        _, close = open_image_service(settings)  # a bad URL ends the command here, in one line
        close()
    try:
        os.makedirs(settings.data_dir, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create data dir {settings.data_dir}: {exc.strerror}") from None
    if not os.access(settings.data_dir, os.W_OK | os.X_OK):
        raise ConfigError(f"data dir {settings.data_dir} is not writable")
    tokens = None
    if settings.auth_strategy == "tokens":
        assert settings.tokens_file is not None  # Settings validates this
        tokens = load_tokens_file(settings.tokens_file)
    # In a child (serving/forked_check.py): what recovery and the rehearsal load never stays in the master.
    run_forked(lambda: _recover_and_rehearse(settings, tokens, app_factory is None), (ConfigError, StartupError))
    try:
        reset_multiprocess_dir(metrics_dir(settings))
    except OSError as exc:
        raise ConfigError(f"cannot use metrics dir {metrics_dir(settings)}: {exc.strerror}") from None
    return tokens


def _recover_and_rehearse(settings: Settings, tokens: TokenTable | None, own_inner_app: bool) -> None:
    # Crash recovery, once, before any worker serves: the index is made to
    # agree with the files (see ImageCache.reconcile).  A central index is
    # checked (schema at head) and this node registered as alive.
    try:
        cache = ImageCache(settings, reconcile=True)
        try:
            cache.driver.heartbeat()
        finally:
            cache.close()
    except OSError as exc:
        raise ConfigError(f"cannot use image cache dir {settings.image_cache_dir}: {exc.strerror}") from None
    except CacheError as exc:
        raise ConfigError(str(exc)) from None
    rehearse_build(settings, tokens, own_inner_app=own_inner_app)


def _stand_in(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """The innermost app of a rehearsal that must not call the embedder's factory."""
    start_response("404 Not Found", [("Content-Length", "0")])
    return []


def build_failure(exc: Exception) -> str:
    """One line saying why the application could not be built."""
    missing = isinstance(exc, ImportError)
    reason = f"{exc} (is imagecache installed with its dependencies?)" if missing else f"{type(exc).__name__}: {exc}"
    return " ".join(f"cannot build the application: {reason}".split())


def rehearse_build(settings: Settings, tokens: TokenTable | None, *, own_inner_app: bool = True) -> None:
    """Build the workers' application once before they start, and close it again.

    A worker that cannot build its app (a module missing from the install, a
    database it cannot open) fails only after gunicorn has bound the port,
    with a traceback per worker.  Here every module the pipeline imports
    (lazy ones too: image service, upstream proxy, index driver) is imported
    and every constructor runs, so the command ends with one line instead.

    Forking afterwards is safe because nothing built here reaches a worker:
    building opens only sqlite connections (cache index, embedded image
    database), a PostgreSQL engine or an HTTP pool, all from this thread and
    all closed here; it starts no thread (jobs and heartbeat start in
    :meth:`ImagecacheApplication.load`, prefetch workers on demand); its
    metrics are a private in-memory registry.  Workers build their own.

    ``own_inner_app=False`` (``run`` got an ``app_factory``): the factory is
    not called, since nothing says how to close what it opens; a stand-in
    takes its place and everything around it is built.
    """
    try:
        inner, close = open_image_service(settings) if own_inner_app else (_stand_in, lambda: None)
        try:
            build_node(settings, app=inner, tokens=tokens).cache.close()
        finally:
            close()
    except ConfigError:
        raise
    except CacheError as exc:
        raise ConfigError(str(exc)) from None
    except Exception as exc:
        log.debug("the application could not be built", exc_info=True)
        raise StartupError(build_failure(exc)) from None


def run(
    settings: Settings,
    app_factory: Callable[[Settings], WSGIApplication] | None = None,
    *,
    notices: Iterable[tuple[int, str]] = (),
) -> None:
    """Serve ``settings`` until SIGTERM (graceful) or SIGINT (quick).

    ``app_factory`` builds the innermost app in each worker instead of the
    embedded image service (embedders, and tests that need an origin that
    misbehaves on purpose).  ``notices`` are (level, line) logged once at
    start, such as the options of a config file that were not used.

    gunicorn's master answers SIGTERM by closing the listeners, giving
    in-flight requests ``GRACEFUL_TIMEOUT`` seconds and exiting with status 0.
    Raises :class:`ConfigError` for a setting the server cannot honour and
    :class:`StartupError` when the application cannot be built, both before
    anything listens.
    """
    configure_logging(settings.log_level)
    for level, line in notices:
        logging.getLogger("imagecache.config").log(level, "%s", line)
    tokens = preflight(settings, app_factory)
    if settings.auth_strategy == "none" and not is_loopback_host(settings.bind_host):
        log.warning(
            "=" * 72 + "\nSECURITY WARNING: --auth none on %s: EVERY CALLER IS AN ADMIN.\n"
            "Anyone who can reach port %d can read, change and delete every image.\n"
            "Use --auth tokens, or bind 127.0.0.1 for development.\n" + "=" * 72,
            settings.bind_host,
            settings.bind_port,
        )
    short = raise_file_limit(settings)
    if short is not None:
        log.warning("open files are limited to %d per process, and max_connections=%d needs about %d: "
                    "raise the hard limit (ulimit -Hn, LimitNOFILE=) or lower max_connections",
                    short[1], settings.max_connections, short[0])
    log.info(
        "imagecache serving on %s (auth: %s, data: %s, %d workers)",
        bind_address(settings.bind_host, settings.bind_port),
        settings.auth_strategy,
        settings.data_dir,
        settings.workers,
    )
    ImagecacheApplication(settings, tokens, app_factory).run()
