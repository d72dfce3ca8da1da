"""The prefetcher: cache queued images without waiting for anyone to download them.

It reads each image through the app the cache sits in front of (an
:class:`~imagecache.wsgi.image_source.ImageSource`), as a given caller, so
visibility and status are decided there, exactly as for a download; and it
writes through :meth:`ImageCache.cache_image_iter`, so only bytes that match
the image's size, md5 and multihash are ever published.

Two ways in, usable from the server and from the CLI alike:

* :meth:`Prefetcher.run` walks the queue once (the periodic job;
  :meth:`Prefetcher.fetch_queued` is the same walk, image by image, for the CLI);
* :meth:`Prefetcher.fetch_soon` fetches one image on a background daemon
  thread right away (``PUT /v2/cache/{id}``).  At most one fetch per image
  runs at a time, and at most ``max_concurrent`` fetches overall.

A failed fetch leaves the image queued for the next run; it is logged, never
raised out of :meth:`run` or a background thread.

Like the cleaner and the pruner it is a :class:`~imagecache.jobs.base.CacheApp`;
:meth:`Prefetcher.for_settings` builds one from settings alone (its own cache,
the embedded image service in-process, acting as an admin), as a cron job needs.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from imagecache.cache import ImageCache, ImageVerificationError
from imagecache.cache.layout import validate_image_id
from imagecache.config import Settings
from imagecache.http.closing import quiet_close
from imagecache.http.context import RequestContext, set_context
from imagecache.http.types import WSGIApplication
from imagecache.jobs.base import CacheApp
from imagecache.origin import open_image_service
from imagecache.wsgi.bodies import CountingBody
from imagecache.wsgi.image_source import ImageSource

LOG = logging.getLogger(__name__)

#: Background fetches that may run at once (each one reads and hashes a whole image).
DEFAULT_MAX_CONCURRENT = 2


#: Told how a fetch goes: (image id, bytes read so far, image size or None).
#: Called once with 0 bytes when the data starts, then after every chunk.
ProgressCallback = Callable[[str, int, int | None], None]


class RunResult(NamedTuple):
    fetched: int
    failed: int


def caller_environ(context: RequestContext) -> dict[str, Any]:
    """A WSGI environ that makes sub-requests as ``context`` (with its token, if any)."""
    environ: dict[str, Any] = {}
    set_context(environ, context)
    if context.auth_token:
        environ["HTTP_X_AUTH_TOKEN"] = context.auth_token
    return environ


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _discard(body: Iterator[bytes]) -> None:
    """Close a body we will not read.

    The body may be a generator that closes the app's response in a
    ``finally``; closing a generator that never started skips that, so it is
    started first (an error body's first chunk is small).
    """
    with contextlib.suppress(Exception):
        next(body, None)
    quiet_close(body)


def _then(first: Callable[[int], None], second: Callable[[int], None]) -> Callable[[int], None]:
    def both(n: int) -> None:
        first(n)
        second(n)

    return both


def _reporting(count: Callable[[int], None], image_id: str, size: int | None,
               progress: ProgressCallback) -> Callable[[int], None]:
    """``count``, also telling ``progress`` how far the image has come (from 0 now)."""
    done = 0
    progress(image_id, 0, size)

    def each_chunk(n: int) -> None:
        nonlocal done
        count(n)
        done += n
        progress(image_id, done, size)

    return each_chunk


class Prefetcher(CacheApp):
    """Fetches queued images into the cache, as ``context`` (normally an admin)."""

    def __init__(
        self,
        cache: ImageCache,
        source: ImageSource,
        context: RequestContext,
        *,
        max_concurrent: int = DEFAULT_MAX_CONCURRENT,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        super().__init__(cache=cache)
        self.source = source
        self.context = context
        self.max_concurrent = max_concurrent
        self._state = threading.Condition()
        self._claimed: set[str] = set()  # ids being fetched, or waiting for a worker
        self._pending: collections.deque[tuple[str, RequestContext]] = collections.deque()
        self._workers = 0
        self._closers: list[Callable[[], None]] = []

    @classmethod
    def for_settings(
        cls,
        settings: Settings,
        *,
        cache: ImageCache | None = None,
        app: WSGIApplication | None = None,
        context: RequestContext | None = None,
        max_concurrent: int = DEFAULT_MAX_CONCURRENT,
    ) -> Prefetcher:
        """A prefetcher from settings alone, as ``imagecache prefetch`` needs.

        ``app`` is the image service to read from (default: the upstream
        proxy in edge mode, else the embedded one over ``settings.data_dir``,
        in-process); ``context`` whom to read as (default: an admin, with
        ``upstream_auth_token``).  What it opens itself (the cache, the embedded
        service's database) :meth:`close` closes.
        """
        closers: list[Callable[[], None]] = []
        if app is None:
            app, close = open_image_service(settings)
            closers.append(close)
        prefetcher = cls(
            cache if cache is not None else ImageCache(settings),
            ImageSource(app),
            context if context is not None else RequestContext.admin(auth_token=settings.upstream_auth_token),
            max_concurrent=max_concurrent,
        )
        prefetcher._owns_cache = cache is None
        prefetcher._closers = closers
        return prefetcher

    def close(self) -> None:
        """Close what :meth:`for_settings` opened; a cache passed in stays open."""
        super().close()
        closers, self._closers = self._closers, []
        for close in closers:
            close()

    # -- one image -------------------------------------------------------------
    def fetch_image_into_cache(
        self,
        image_id: str,
        context: RequestContext | None = None,
        *,
        progress: ProgressCallback | None = None,
        throttle: Callable[[int], None] | None = None,
    ) -> bool:
        """Cache one image; True when it is cached (now or already), False on failure.

        On success the image leaves the queue; on failure it stays queued.
        ``progress`` hears about every chunk read; ``throttle`` is told each
        chunk's size once it is read, and may wait (the pre-warm rate limit).
        Raises InvalidImageId for an id that is not a UUID.
        """
        image_id = validate_image_id(image_id)
        if self.cache.is_cached(image_id):
            self.cache.delete_queued_image(image_id)
            return True
        environ = caller_environ(context if context is not None else self.context)
        image = self._active_image(environ, image_id)
        if image is None:
            return False
        self.cache.metrics.origin_requests.labels(reason="prefetch").inc()
        status, headers, body = self.source.data(environ, image_id)
        if status != 200:
            _discard(body)
            LOG.warning("prefetch of image %s: the image service answered %d for its data", image_id, status)
            return False
        if not self._cache_body(image_id, image, headers, body, progress, throttle):
            return False
        self.cache.delete_queued_image(image_id)
        LOG.info("prefetched image %s into the cache", image_id)
        return True

    def _active_image(self, environ: Mapping[str, Any], image_id: str) -> Mapping[str, Any] | None:
        meta = self.source.metadata(environ, image_id)
        if not meta.found or meta.image is None:
            LOG.warning("prefetch of image %s: the image service answered %d for its metadata", image_id, meta.status)
            return None
        if meta.image.get("status") != "active":
            LOG.warning("prefetch of image %s: status is %r, not 'active'; not caching it",
                        image_id, meta.image.get("status"))
            return None
        return meta.image

    def _cache_body(
        self,
        image_id: str,
        image: Mapping[str, Any],
        headers: Mapping[str, str],
        body: Iterator[bytes],
        progress: ProgressCallback | None = None,
        throttle: Callable[[int], None] | None = None,
    ) -> bool:
        """Write the body into the cache, verified; True when the image ends up cached."""
        lowered = {key.lower(): value for key, value in headers.items()}
        checksum = image.get("checksum") or lowered.get("content-md5")
        size = _int_or_none(image.get("size"))
        if size is None:
            size = _int_or_none(lowered.get("content-length"))
        on_bytes: Callable[[int], None] = self.cache.metrics.from_origin("prefetch")
        if progress is not None:
            on_bytes = _reporting(on_bytes, image_id, size, progress)
        if throttle is not None:
            on_bytes = _then(on_bytes, throttle)
        body = CountingBody(body, on_bytes)
        try:
            cached = self.cache.cache_image_iter(
                image_id,
                body,
                checksum,
                os_hash_algo=image.get("os_hash_algo"),
                os_hash_value=image.get("os_hash_value"),
                size=size,
            )
        except ImageVerificationError as exc:
            LOG.error("prefetch of image %s failed verification: %s; it stays queued", image_id, exc)
            return False
        except Exception:  # a broken stream (upstream gone, disk trouble) is a failed fetch
            LOG.exception("prefetch of image %s failed while reading its data; it stays queued", image_id)
            return False
        if cached or self.cache.is_cached(image_id):
            return True
        LOG.warning("prefetch of image %s: the cache did not keep it (too large, no room, or being filled)", image_id)
        return False

    # -- the whole queue ---------------------------------------------------------
    def run(self) -> RunResult:
        """Fetch every queued image once, oldest first: (fetched, failed).

        Images a background fetch is already working on are skipped.
        """
        fetched = failed = 0
        for _, ok in self.fetch_queued():
            fetched += ok
            failed += not ok
        if fetched or failed:
            LOG.info("prefetcher run: %d fetched, %d failed", fetched, failed)
        return RunResult(fetched, failed)

    def fetch_queued(self, progress: ProgressCallback | None = None) -> Iterator[tuple[str, bool]]:
        """Fetch the queued images one by one, oldest first, yielding (image id, cached?).

        Never raises for one image; images a background fetch is working on
        are skipped (not yielded).
        """
        for image_id in self.cache.get_queued_images():
            if not self._claim(image_id):
                continue
            try:
                ok = self.fetch_image_into_cache(image_id, progress=progress)
            except Exception:  # one bad image must not stop the run
                LOG.exception("prefetch of image %s failed", image_id)
                ok = False
            finally:
                self._release(image_id)
            yield image_id, ok

    # -- in the background -------------------------------------------------------
    def fetch_soon(self, image_id: str, context: RequestContext | None = None) -> bool:
        """Fetch one image on a background thread; False if it is already being fetched.

        ``context`` is whom to fetch as (e.g. the admin who asked for it, whose
        token an upstream image service accepts); the prefetcher's own by default.
        """
        image_id = validate_image_id(image_id)
        with self._state:
            if image_id in self._claimed:
                return False
            self._claimed.add(image_id)
            self._pending.append((image_id, context if context is not None else self.context))
            if self._workers < self.max_concurrent:
                self._workers += 1
                threading.Thread(target=self._work, name="imagecache-prefetch", daemon=True).start()
        return True

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no fetch is running or waiting; False if ``timeout`` ran out first."""
        with self._state:
            return self._state.wait_for(lambda: not self._claimed and self._workers == 0, timeout)

    def _work(self) -> None:
        """A worker thread: fetch pending images until there are none left."""
        while True:
            with self._state:
                if not self._pending:
                    self._workers -= 1
                    self._state.notify_all()
                    return
                image_id, context = self._pending.popleft()
            try:
                self.fetch_image_into_cache(image_id, context)
            except Exception:  # a background thread has nobody to raise to
                LOG.exception("background prefetch of image %s failed", image_id)
            finally:
                self._release(image_id)

    def _claim(self, image_id: str) -> bool:
        with self._state:
            if image_id in self._claimed:
                return False
            self._claimed.add(image_id)
            return True

    def _release(self, image_id: str) -> None:
        with self._state:
            self._claimed.discard(image_id)
            self._state.notify_all()

