"""CacheFilter: serve image data from the cache, fill it on a miss.

A WSGI middleware in front of an images app (the embedded service or the
upstream proxy).  It touches only image downloads and deletes:

* hit: the caller is first authorized by the app itself (a metadata
  sub-request with the caller's credentials), then the file is served with
  the headers the app would send, Range included; a completed response
  counts as a hit;
* miss: the request goes to the app and a 200 body is teed into the cache,
  verified against the image's metadata (image_cache_verify) before it is published;
* delete: a successful image delete evicts the cached file.

Range and If-Range follow one rule (:func:`imagecache.http.ranges.select`)
on every path, so an answer never depends on whether the image is cached,
being filled or neither, nor on how the app behind handles them (a real
Glance ignores If-Range): on a miss the filter decides from the image's
metadata and passes the app a plain ``Range`` or none at all.  Image data
carries the node's validator, ``ETag: "<checksum>"``, and says how it was
served in ``Cache-Status`` (RFC 9211; README "Cache-Status"): a hit, the
fill it stores, the fill it joined, or why it was not stored.

Every cache failure falls back to the app: the cache never fails a download.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from webob import Request, Response

from imagecache.cache import Declined, ImageCache
from imagecache.cache.opened import OpenedFile, open_published
from imagecache.config import Settings, peer_fill_on
from imagecache.http import ranges
from imagecache.http.cache_status import CacheStatus, with_status
from imagecache.http.context import ENVIRON_KEY, RequestContext, get_context
from imagecache.http.errors import send_error
from imagecache.http.types import StartResponse, WSGIApplication, WSGIEnvironment
from imagecache.metrics import Metrics, PassReason
from imagecache.peers.fills import PeerFills
from imagecache.wsgi import app_data, image_routes
from imagecache.wsgi.app_data import Passed, Representation
from imagecache.wsgi.bodies import FillBody
from imagecache.wsgi.cached_answer import OCTET_STREAM, send_cached
from imagecache.wsgi.image_routes import Action, ImageRoute
from imagecache.wsgi.image_source import ImageMeta, ImageSource, upstream_failed
from imagecache.wsgi.lead_fill import FillAnswer, FillLeader
from imagecache.wsgi.metadata_source import Lookup, direct_or_none

LOG = logging.getLogger(__name__)

SERVABLE_STATUSES = frozenset({"active", "deactivated"})
HIT = CacheStatus(hit=True)
#: A hit sent without the upstream's authorization (``serve_stale_on_upstream_error``).
STALE_HIT = CacheStatus(hit=True, detail="stale")
#: A request that streams a fill in progress.
COLLAPSED = CacheStatus(fwd="miss", collapsed=True)
#: A HEAD, which the filter always leaves to the app.
FORWARDED_HEAD = CacheStatus(fwd="method")


class CacheFilter:
    """The caching middleware (Glance's ``cache`` filter, rebuilt)."""

    def __init__(
        self,
        app: WSGIApplication,
        cache: ImageCache,
        source: ImageSource | None = None,
        metrics: Metrics | None = None,
        *,
        proxy: bool = False,
        serve_stale: bool = False,
        service_token: str | None = None,
        peers: PeerFills | None = None,
    ) -> None:
        self.app = app
        self.cache = cache
        self.source = source if source is not None else ImageSource(app)
        self.metrics = metrics if metrics is not None else cache.metrics
        #: In front of an upstream, the local context decides nothing about
        #: images: deactivated images are passed through for it to judge.
        self.proxy = proxy
        #: Serve hits without authorization while the upstream is unreachable.
        self.serve_stale = serve_stale
        #: Token of this node's own sub-requests (the "is it gone?" probe).
        self.service_token = service_token
        #: Where fills read from with peer fill on (None: the app, always).
        self.peers = peers
        self.leader = FillLeader(cache, self.source, self.metrics, peers)
        self._resume_read = self.metrics.from_origin("resume")

    @classmethod
    def for_app(cls, app: WSGIApplication, cache: ImageCache, settings: Settings, lookup: Lookup | None = None,
                ) -> CacheFilter:
        """The filter over ``app`` as the server and paste build it.

        Metadata answers are memoised only in front of an upstream, where each
        one costs a network round trip; the embedded app's ``lookup`` answers in process.
        """
        proxy = bool(settings.upstream_url)
        memo_ttl = settings.auth_cache_ttl if proxy else 0.0
        direct = None if proxy else direct_or_none(app, lookup)
        return cls(
            app,
            cache,
            ImageSource(app, memo_ttl=memo_ttl, changes=cache.layout if memo_ttl > 0 else None, metadata=direct),
            proxy=proxy,
            serve_stale=settings.serve_stale_on_upstream_error,
            service_token=settings.upstream_auth_token,
            peers=PeerFills.for_settings(cache, settings) if peer_fill_on(settings) else None,
        )

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        route = image_routes.match(environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""))
        if route is None:
            return self.app(environ, start_response)
        request = Request(environ)
        if route.action is Action.DELETE:
            response = self._delete(request, route)
        elif route.action is Action.CHANGE:
            response = self._change(request, route)
        elif route.action is Action.HEAD:
            response = request.get_response(self.app)
            if 200 <= response.status_code < 300:
                response.headerlist = with_status(response.headerlist, FORWARDED_HEAD)
        else:
            return self._download(request, route, start_response)
        return response(environ, start_response)

    # -- writes ------------------------------------------------------------------
    def _delete(self, request: Request, route: ImageRoute) -> Response:
        response = request.get_response(self.app)
        if 200 <= response.status_code < 300:
            self._evict(route.image_id, "the image was deleted")
        return response

    def _change(self, request: Request, route: ImageRoute) -> Response:
        response = request.get_response(self.app)
        self.source.forget(route.image_id)
        return response

    def _evict(self, image_id: str, why: str) -> None:
        self.source.forget(image_id)
        try:
            if self.cache.delete_cached_image(image_id):
                LOG.info("evicted image %s from the cache: %s", image_id, why)
        except Exception:  # eviction trouble must not fail the request
            LOG.exception("could not evict image %s", image_id)

    # -- downloads ---------------------------------------------------------------
    def _download(self, request: Request, route: ImageRoute, start_response: StartResponse) -> Iterable[bytes]:
        opened = self._open_cached(route.image_id)
        if opened is not None:
            served = self._serve_hit(request, route, opened, start_response)
            if served is not None:
                return served
        return self._serve_miss(request, route, start_response)

    def _open_cached(self, image_id: str) -> OpenedFile | None:
        """The cached file, open (one fstat for the whole hit), or None: a miss."""
        try:
            return open_published(self.cache.layout, image_id)
        except Exception:  # a broken cache is a miss, not an error
            LOG.exception("cannot open cached image %s", image_id)
            return None

    def _serve_hit(
        self, request: Request, route: ImageRoute, opened: OpenedFile, start_response: StartResponse
    ) -> Iterable[bytes] | None:
        """The cached response from ``opened``, or None (``opened`` closed) to treat the request as a miss."""
        try:
            served = self._hit(request, route, opened, start_response)
        except BaseException:
            opened.close()
            raise
        if served is None:
            opened.close()
        return served

    def _hit(self, request: Request, route: ImageRoute, opened: OpenedFile,
             start_response: StartResponse) -> Iterable[bytes] | None:
        image_id = route.image_id
        meta = self.source.metadata(request.environ, image_id)
        if upstream_failed(meta.response):
            return self._upstream_down(request, route, opened, start_response)
        if not meta.found:
            if meta.status == 404 and self._gone(request.environ, image_id, meta):
                self._evict(image_id, "the image no longer exists")
            return None  # the app answers (404, 403, 401 ...) as it would without a cache
        image = meta.image or {}
        if not self._servable(request, image):
            return None  # the app answers (403 to non-admins for a deactivated image), exactly as on a miss
        record = self.cache.indexed(image_id)  # the file is open: no second look at it
        if record is not None and image.get("checksum") and record.checksum and record.checksum != image["checksum"]:
            self._evict(image_id, "its checksum no longer matches the image's")
            return None
        representation = self._image_headers(request, route, image)
        if representation is None:
            return None
        return self._send_file(request, opened, image_id, representation, start_response, HIT)

    def _servable(self, request: Request, image: Mapping[str, Any]) -> bool:
        """May this caller be sent the image's data (by the cache, or as the filter decides)?

        Deactivated images go to admins only, and in front of an upstream not
        at all: the upstream judges those.
        """
        status = image.get("status")
        if status not in SERVABLE_STATUSES:
            return False
        return status == "active" or (not self.proxy and get_context(request.environ).is_admin)

    def _entity(self, route: ImageRoute, image: Mapping[str, Any]) -> Representation:
        """The image's validator, and its Content-MD5 for v2 (as the app sends it), from its metadata."""
        checksum = image.get("checksum")
        checksum = str(checksum) if checksum else None
        md5 = checksum if route.action is Action.DOWNLOAD_V2 else None
        return Representation(md5=md5, etag=ranges.entity_tag(checksum))

    def _image_headers(
        self, request: Request, route: ImageRoute, image: Mapping[str, Any]
    ) -> Representation | None:
        """The image headers the app would send with its data (None: ask the app instead)."""
        entity = self._entity(route, image)
        if route.action is Action.DOWNLOAD_V1:
            head = self.source.call(request.environ, "HEAD", f"/v1/images/{route.image_id}")
            if head.status_code != 200:
                return None
            meta = tuple((k, v) for k, v in head.headerlist if k.lower().startswith("x-image-meta-"))
            return Representation(meta, entity.md5, entity.etag)
        return entity

    def _upstream_down(
        self, request: Request, route: ImageRoute, opened: OpenedFile, start_response: StartResponse
    ) -> Iterable[bytes]:
        """A hit the upstream cannot authorize: 503, or the file itself if the operator allows it."""
        image_id = route.image_id
        if self.serve_stale:
            LOG.warning("serving cached image %s unauthorized: the upstream is unreachable "
                        "(serve_stale_on_upstream_error)", image_id)
            record = self.cache.indexed(image_id)
            entity = self._entity(route, {"checksum": record.checksum if record is not None else None})
            return self._send_file(request, opened, image_id, entity, start_response, STALE_HIT)
        opened.close()
        self.metrics.cache_misses.inc()
        message = ("The image is cached here, but the image service that authorizes access to it "
                   "cannot be reached; try again later.")
        return send_error(request.environ, start_response, 503, message, [("Retry-After", "5")])

    def _gone(self, environ: Mapping[str, Any], image_id: str, meta: ImageMeta) -> bool:
        """Does the image really not exist (not merely hidden from this caller)?

        Answered by an admin's view: the caller's own if admin, else an
        internal admin sub-request (which an upstream that checks tokens
        refuses, so a proxy never evicts on a caller's 404).
        """
        if get_context(environ).is_admin:
            return True
        probe = {key: value for key, value in environ.items() if key != "HTTP_X_AUTH_TOKEN"}
        if self.service_token:
            probe["HTTP_X_AUTH_TOKEN"] = self.service_token
        probe[ENVIRON_KEY] = RequestContext.admin(auth_token=self.service_token)
        return self.source.metadata(probe, image_id).status == 404

    def _send_file(
        self, request: Request, opened: OpenedFile, image_id: str, representation: Representation,
        start_response: StartResponse, cache_status: CacheStatus,
    ) -> Iterable[bytes]:
        return send_cached(request, opened, representation, start_response, cache_status, self.metrics,
                           lambda: self.cache.record_hit(image_id))

    # -- misses --------------------------------------------------------------------
    def _serve_miss(self, request: Request, route: ImageRoute, start_response: StartResponse) -> Iterable[bytes]:
        """A miss: follow the fill in progress, start one, or pass the request through (saying why).

        Only a whole-image download of an active image the caller may read
        joins or starts a fill; the caller is authorized (by the metadata
        sub-request) before it gets a byte of a fill.  A Range that selects a
        part of the image never starts a fill: the app sends that part.
        """
        image = self._metadata(request, route)
        if image is None:
            return self._pass_through(request, start_response, None, "no-metadata")  # the app answers as it would
        if not self._servable(request, image):
            return self._pass_through(request, start_response, None, "not-active")
        entity = self._entity(route, image)
        size = _int_or_none(image.get("size"))
        if request.environ.get("HTTP_RANGE") is not None:
            if size is None:
                return self._pass_through(request, start_response, entity, "range-uncached")  # no size to judge by
            selected = ranges.select(request.environ["HTTP_RANGE"], request.environ.get("HTTP_IF_RANGE"), size,
                                     entity.etag)
            if isinstance(selected, ranges.Unsatisfiable):
                return app_data.unsatisfiable(selected, start_response)
            if isinstance(selected, ranges.ByteRange):
                self.metrics.cache_misses.inc()
                return app_data.pass_range(self.app, request.environ, route.image_id, selected, entity,
                                           Passed("range-uncached", self.metrics), start_response)
        # The whole image, whatever the app would make of the Range and If-Range.
        request.environ.pop("HTTP_RANGE", None)
        request.environ.pop("HTTP_IF_RANGE", None)
        if image.get("status") != "active":
            return self._pass_through(request, start_response, entity, "not-active")
        for _ in range(3):  # each turn loses at most one race to a finishing fill
            reader = self.cache.follow(route.image_id, size)
            if reader is not None:
                self.metrics.fill_followers.inc()
                return self._stream_fill(request, route, image, FillAnswer(reader, COLLAPSED), start_response)
            opened = self._open_cached(route.image_id)
            if opened is not None:
                served = self._serve_hit(request, route, opened, start_response)
                if served is not None:
                    return served
                LOG.info("image %s: cached, but not servable from the cache now; the image service sends it",
                         route.image_id)
                return self._pass_through(request, start_response, entity, "cache-error")
            claim = self.leader.claim(route.image_id, image, size)
            if isinstance(claim, Declined):
                if claim.reason is None:
                    continue  # someone else claimed it first: follow them
                # Not cacheable: logged and counted by the cache.
                return self._pass_through(request, start_response, entity, claim.reason, counted=True)
            led = self.leader.lead(request.environ, route.image_id, image, claim)
            if isinstance(led, FillAnswer):
                return self._stream_fill(request, route, image, led, start_response)
            return self._pass_through(request, start_response, entity, led)  # logged by the leader
        LOG.info("image %s: lost three races to finishing fills; the image service sends it", route.image_id)
        return self._pass_through(request, start_response, entity, "raced")

    def _stream_fill(
        self, request: Request, route: ImageRoute, image: Mapping[str, Any], answer: FillAnswer,
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        reader = answer.reader
        try:
            representation = self._image_headers(request, route, image)
        except Exception:
            reader.close()
            raise
        if representation is None:
            reader.close()
            return self._pass_through(request, start_response, self._entity(route, image), "no-metadata")
        self.metrics.cache_misses.inc()
        image_id = route.image_id
        environ = request.environ
        body = FillBody(
            reader,
            lambda start: self._resume(environ, image_id, start),
            reader.size,
            on_cache_bytes=self.metrics.served_bytes.labels(source="cache").inc,
            on_app_bytes=self._resumed_bytes,
        )
        etag, md5 = representation.etag, representation.md5
        if reader.size is not None:
            content = ranges.response_headers(ranges.Whole(reader.size), etag, content_md5=md5)
        else:
            content = [*ranges.entity_headers(etag), *([("Content-MD5", md5)] if md5 else [])]
        headers = [("Content-Type", OCTET_STREAM), *representation.headers, *content,
                   *(("Cache-Status", value) for value in answer.upstream)]
        start_response("200 OK", with_status(headers, answer.cache_status))
        return body

    def _pass_through(
        self, request: Request, start_response: StartResponse, entity: Representation | None, reason: PassReason,
        *, counted: bool = False,
    ) -> Iterable[bytes]:
        """The app's own answer (a miss), its image bytes counted, its Cache-Status saying ``reason``.

        ``entity`` (when the filter knows the image) puts the node's validator
        on the image data the app sends.
        """
        self.metrics.cache_misses.inc()
        passed = Passed(reason, self.metrics, counted=counted)
        read = passed.request()
        status, headers, body = request.call_application(self.app)
        return app_data.relay(status, headers, body, start_response, entity, passed, read)

    def _resume(
        self, environ: Mapping[str, Any], image_id: str, start: int
    ) -> tuple[int, Mapping[str, str], Iterator[bytes]]:
        """The rest of a followed fill that stopped, from the app (counted as a ``resume``)."""
        self.metrics.origin_requests.labels(reason="resume").inc()
        return self.source.data(environ, image_id, start=start)

    def _resumed_bytes(self, n: int) -> None:
        self._resume_read(n)
        self.metrics.served_bytes.labels(source="upstream").inc(n)

    def _metadata(self, request: Request, route: ImageRoute) -> dict[str, Any] | None:
        """The image's metadata as the caller sees it, or None (not found, or no answer)."""
        try:
            meta = self.source.metadata(request.environ, route.image_id)
        except Exception:  # no metadata: serve, don't cache
            LOG.exception("metadata lookup failed for image %s", route.image_id)
            return None
        return dict(meta.image or {}) if meta.found else None


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def filter_factory(global_conf: Mapping[str, Any], **local_conf: Any) -> Callable[[WSGIApplication], CacheFilter]:
    """paste.deploy entry point.

    ``[filter:cache] paste.filter_factory = imagecache.wsgi.cache_filter:filter_factory``
    """
    from imagecache.config import load_settings

    # global_conf holds paste's own keys (__file__, here), not our options.
    settings = load_settings(None, {}, dict(local_conf))
    cache = ImageCache(settings, reconcile=True)

    return lambda app: CacheFilter.for_app(app, cache, settings)
