"""CacheManageFilter: the image cache management API, as Glance serves it.

A WSGI middleware that answers the cache routes itself and passes every
other request to the app behind it, untouched:

* the v2 API python-glanceclient speaks (``glance cache-list``,
  ``cache-queue``, ``cache-delete``, ``cache-clear``, ``cache-clean``,
  ``cache-prune``): ``/v2/cache...``, with the central index's questions
  across nodes (``/v2/cache/nodes[/{id}]``);
* the legacy routes ``glance-cache-manage`` used, under ``/v1`` and ``/v2``:
  ``{prefix}/cached_images[/{id}]`` and ``{prefix}/queued_images[/{id}]``;
* our pins (:mod:`imagecache.wsgi.pins_api`): ``/v2/cache/pins`` and
  ``/v2/cache/{id}/pin``.  Listings mark each cached image ``pinned``;
* what the node is doing now (:mod:`imagecache.wsgi.activity`): ``/v2/cache/activity``.

Every route is for admins only (403 otherwise; on an edge node, 401 for a
token the upstream rejects).  Queueing an image, by any route, starts
caching it at once.  Whether an image exists, and whether the
caller may see it, is asked of the app behind (a metadata sub-request with
the caller's credentials), never decided here.

In a paste pipeline, put it behind the cache filter, as Glance does
(``... cache cachemanage rootapp``): the prefetcher's data sub-requests then
go straight to the images app.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from webob import Request, Response

from imagecache.cache import CacheError, ImageCache, InvalidImageId
from imagecache.cache.layout import validate_image_id
from imagecache.http.context import RequestContext, get_context
from imagecache.http.types import StartResponse, WSGIApplication, WSGIEnvironment
from imagecache.jobs.prefetcher import Prefetcher
from imagecache.wsgi import cache_routes
from imagecache.wsgi.activity import activity
from imagecache.wsgi.auth import BAD_TOKEN_MESSAGE, CHALLENGE
from imagecache.wsgi.cache_listing import listing_chunks
from imagecache.wsgi.cache_routes import Matched, Route, Unrouted, WrongMethod
from imagecache.wsgi.fleet import fleet_view
from imagecache.wsgi.image_source import ImageSource
from imagecache.wsgi.manage_responses import empty_response, error_response, json_response, streamed_json_response
from imagecache.wsgi.pins_api import PinsAPI
from imagecache.wsgi.token_check import UpstreamTokenCheck

LOG = logging.getLogger(__name__)

CLEAR_TARGET_HEADER = "x-image-cache-clear-target"
#: The answer of the routes across nodes on a node whose index has none (Glance's words).
NO_CENTRAL_INDEX = "Centralized caching is not enabled."


# -- the filter ----------------------------------------------------------------------


class CacheManageFilter:
    """Answers the cache management routes; everything else goes to ``app``."""

    def __init__(
        self,
        app: WSGIApplication,
        cache: ImageCache,
        source: ImageSource,
        prefetcher: Prefetcher,
        token_check: UpstreamTokenCheck | None = None,
    ) -> None:
        self.app = app
        self.cache = cache
        self.source = source
        self.prefetcher = prefetcher
        #: In front of an upstream: tells a token it rejects (401) from a non-admin's (403).
        self.token_check = token_check
        pins = PinsAPI(cache, source, self._queue_and_fetch)
        # Dispatch by table: routes on the collection, and routes on one image.
        self._collection: Mapping[Route, Callable[[Request], Response]] = {
            Route.CACHE_STATE: self.cache_state,
            Route.CACHE_CLEAR: self.clear_cache,
            Route.CACHE_CLEAN: self.clean_cache,
            Route.CACHE_PRUNE: self.prune_cache,
            Route.CACHE_FLEET: self.fleet,
            Route.CACHE_PINS: pins.list_pins,
            Route.CACHE_ACTIVITY: lambda request: activity(cache, source, request),
            Route.LIST_CACHED: self.list_cached,
            Route.DELETE_ALL_CACHED: self.delete_all_cached,
            Route.LIST_QUEUED: self.list_queued,
            Route.DELETE_ALL_QUEUED: self.delete_all_queued,
        }
        self._item: Mapping[Route, Callable[[Request, str], Response]] = {
            Route.CACHE_QUEUE: self.queue_from_api,
            Route.CACHE_DELETE: self.delete_cache_entry,
            Route.CACHE_NODES: self.cached_nodes,
            Route.CACHE_PIN: pins.pin,
            Route.CACHE_UNPIN: pins.unpin,
            Route.DELETE_CACHED: self.delete_cached,
            Route.QUEUE: self.queue_legacy,
            Route.DELETE_QUEUED: self.delete_queued,
        }


    @classmethod
    def for_app(cls, app: WSGIApplication, cache: ImageCache) -> CacheManageFilter:
        """The filter over ``app`` as the server and paste build it: the
        prefetcher reads images from ``app`` as an admin, with the
        ``upstream_auth_token`` when the app is an upstream that checks tokens."""
        settings = cache.settings
        source = ImageSource(app)
        context = RequestContext.admin(auth_token=settings.upstream_auth_token)
        token_check = UpstreamTokenCheck(source, ttl=settings.auth_cache_ttl) if settings.upstream_url else None
        return cls(app, cache, source, Prefetcher(cache, source, context), token_check)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        found = cache_routes.match(environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""))
        if found is None:
            return self.app(environ, start_response)
        response = self._respond(Request(environ), found)
        return response(environ, start_response)

    def _respond(self, request: Request, found: cache_routes.RouteResult) -> Response:
        if isinstance(found, Unrouted):
            return error_response(404, "No such image cache resource.")
        if isinstance(found, WrongMethod):
            allowed = ", ".join(found.allowed)
            return error_response(405, f"Method not allowed here; use {allowed}.", [("Allow", allowed)])
        if not get_context(request.environ).is_admin:
            if self.token_check is not None and self.token_check.rejects(request.environ):
                return error_response(401, BAD_TOKEN_MESSAGE, [CHALLENGE])
            return error_response(403, "You are not permitted to manage the image cache.")
        try:
            return self._dispatch(request, found)
        except (CacheError, OSError) as exc:
            LOG.exception("image cache management request %s %s failed", request.method, request.path_info)
            return error_response(500, f"The image cache failed: {exc}")

    def _dispatch(self, request: Request, found: Matched) -> Response:
        if found.image_id is None:
            return self._collection[found.route](request)
        try:
            image_id = validate_image_id(found.image_id)
        except InvalidImageId:
            return error_response(400, "Invalid image id: an image id is a UUID.")
        return self._item[found.route](request, image_id)

    # -- v2: /v2/cache ----------------------------------------------------------------
    def cache_state(self, request: Request) -> Response:
        """GET /v2/cache: what is cached and what is queued."""
        return self._listing({"queued_images": self.cache.get_queued_images()})

    def _listing(self, after: Mapping[str, Any]) -> Response:
        """The cached images, each marked ``pinned`` or not, streamed as the index is read; then ``after``'s keys.

        The query runs before the answer starts, so an index that fails it is
        a clean 500; one that fails later cuts the chunked body short (the
        client sees an incomplete answer, never a complete wrong one).
        """
        pinned = self.cache.pins.ids()
        return streamed_json_response(listing_chunks(self.cache.listing_rows(), pinned, after))

    def clear_cache(self, request: Request) -> Response:
        """DELETE /v2/cache: empty the cache, the queue or both (the header says which).

        Glance accepts no header (or an empty one), ``cache`` and ``queue``;
        ``both`` is accepted too, because it is what glanceclient's
        ``--target`` calls the default.
        """
        target = request.headers.get(CLEAR_TARGET_HEADER, "").strip().lower()
        if target not in ("", "both", "cache", "queue"):
            return error_response(400, f"If provided, '{CLEAR_TARGET_HEADER}' must be 'cache', 'queue' or 'both'.")
        cache_deleted = self.cache.delete_all_cached_images() if target != "queue" else 0
        queue_deleted = self.cache.delete_all_queued_images() if target != "cache" else 0
        LOG.info("cleared the image cache (%s): %d cached, %d queued images removed",
                 target or "both", cache_deleted, queue_deleted)
        return empty_response(204)

    def clean_cache(self, request: Request) -> Response:
        """POST /v2/cache/clean: remove invalid files and stalled incomplete ones."""
        result = self.cache.clean()
        return json_response({"invalid_removed": result.invalid_removed, "stalled_removed": result.stalled_removed})

    def prune_cache(self, request: Request) -> Response:
        """POST /v2/cache/prune: evict least recently used images down to the size limit."""
        files, size = self.cache.prune()
        return json_response({"total_files_pruned": files, "total_bytes_pruned": size})

    def queue_from_api(self, request: Request, image_id: str) -> Response:
        """PUT /v2/cache/{id}: queue an active image the caller can see, and fetch it now."""
        meta = self.source.metadata(request.environ, image_id)
        if meta.status != 200:
            return meta.response  # 404 (unknown, or hidden from the caller), 401, ... as the app said
        if meta.image is None:
            return error_response(502, "The image service gave an unreadable answer about this image.")
        if meta.image.get("status") != "active":
            return error_response(400, "Only images with status active can be targeted for queueing.")
        self._queue_and_fetch(request, image_id)
        return empty_response(202)

    def _queue_and_fetch(self, request: Request, image_id: str) -> None:
        """Queue the image and start caching it now, whatever the route.

        One fetch per image at a time and a bounded number overall (the
        prefetcher's rules); what a restart interrupts stays queued for the
        periodic prefetcher.  The fetch acts as the admin who asked: their
        token also works upstream.
        """
        queued = self.cache.queue_image(image_id)
        if queued or self.cache.is_queued(image_id):
            self.prefetcher.fetch_soon(image_id, get_context(request.environ))

    def delete_cache_entry(self, request: Request, image_id: str) -> Response:
        """DELETE /v2/cache/{id}: drop the image from the cache and from the queue.

        As in Glance, 404 only when the image is neither known to the caller
        nor cached nor queued.
        """
        if not (self.cache.is_cached(image_id) or self.cache.is_queued(image_id)):
            meta = self.source.metadata(request.environ, image_id)
            if meta.status != 200:
                return meta.response
        self._delete_copy(image_id)
        self.cache.delete_queued_image(image_id)
        return empty_response(204)

    def _delete_copy(self, image_id: str) -> None:
        """Drop the cached copy; a pinned image keeps its pin (and the pins' state is said again)."""
        self.cache.delete_cached_image(image_id)
        if self.cache.pins.is_pinned(image_id):
            self.cache.pins.check()

    def cached_nodes(self, request: Request, image_id: str) -> Response:
        """GET /v2/cache/nodes/{id}: the reference URLs of the live nodes caching an image.

        As in Glance: a JSON list of URLs (empty when no node caches it); 409
        when this node has no central index to ask; 404 when the image service
        does not know the image (whatever the index holds).  Nodes silent for
        ``node_stale_after`` seconds are left out.
        """
        nodes = self.cache.get_cached_nodes(image_id)
        if nodes is None:
            return error_response(409, NO_CENTRAL_INDEX)
        meta = self.source.metadata(request.environ, image_id)
        if meta.status != 200:
            return meta.response
        return json_response(nodes)

    def fleet(self, request: Request) -> Response:
        """GET /v2/cache/nodes: every image a node holds or is filling, with those nodes.

        ``{"images": [{"image_id", "nodes": [{"url", "site", "state", "size",
        "bytes", "live"}]}]}`` (:mod:`imagecache.wsgi.fleet`: images by id,
        this node's site first).  Stale nodes are listed too, ``"live":
        false``: the operator asks where the copies are, and a stale node's
        come back with it.  409 on a node whose index has no nodes, as
        ``GET /v2/cache/nodes/{id}``.
        """
        driver = self.cache.driver
        if driver.heartbeat_interval is None:  # the contract's mark of an index without nodes
            return error_response(409, NO_CENTRAL_INDEX)
        return json_response({"images": fleet_view(self.cache.fleet(), self.cache.settings.node_site)})

    # -- legacy: {prefix}/cached_images, {prefix}/queued_images ----------------------
    def list_cached(self, request: Request) -> Response:
        return self._listing({})

    def delete_all_cached(self, request: Request) -> Response:
        return json_response({"num_deleted": self.cache.delete_all_cached_images()})

    def delete_cached(self, request: Request, image_id: str) -> Response:
        self._delete_copy(image_id)
        return _legacy_done()

    def list_queued(self, request: Request) -> Response:
        return json_response({"queued_images": self.cache.get_queued_images()})

    def delete_all_queued(self, request: Request) -> Response:
        return json_response({"num_deleted": self.cache.delete_all_queued_images()})

    def queue_legacy(self, request: Request, image_id: str) -> Response:
        """PUT {prefix}/queued_images/{id}: queue, unchecked as Glance did, and cache it now.

        As in Glance 2026, a queued image is cached at once, not at the next
        prefetcher run; an image that cannot be fetched (unknown, not active)
        stays queued, as before.
        """
        self._queue_and_fetch(request, image_id)
        return _legacy_done()

    def delete_queued(self, request: Request, image_id: str) -> Response:
        self.cache.delete_queued_image(image_id)
        return _legacy_done()


def _legacy_done() -> Response:
    """Glance's old controller answered single-image calls 200 with a JSON ``null``."""
    return json_response(None)


# -- paste.deploy ------------------------------------------------------------------


def filter_factory(global_conf: Mapping[str, Any], **local_conf: Any) -> Callable[[WSGIApplication], CacheManageFilter]:
    """paste.deploy entry point.

    ::

        [filter:cachemanage]
        paste.filter_factory = imagecache.wsgi.cache_manage:filter_factory
        image_cache_dir = /var/lib/imagecache
        image_cache_max_size = 10737418240

    Options in the section are imagecache settings (Glance's names); an
    unknown one is a ConfigError.  ``global_conf`` holds paste's own keys.
    """
    from imagecache.config import load_settings

    settings = load_settings(None, {}, dict(local_conf))
    cache = ImageCache(settings)

    return lambda app: CacheManageFilter.for_app(app, cache)
