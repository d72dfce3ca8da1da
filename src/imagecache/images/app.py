"""The embedded image service: Glance's v2 image API (and legacy v1 reads) as a WSGI app.

Requests are dispatched through a :class:`~imagecache.images.routes.RouteTable`
to handlers by job (:mod:`~imagecache.images.metadata` for image records,
:mod:`~imagecache.images.image_data` for their bytes,
:mod:`~imagecache.images.legacy` for v1); parsing, policy and views are pure
functions in their own modules.  Whatever declines a request raises a
:class:`~imagecache.images.refusals.Refusal`, and this module's entry is the
one place that turns it into a response: a 4xx with a short explanation.  An
unexpected failure is logged and answered with a bare 500, never a traceback.

``GET /v2/images/{id}`` is the call a cache filter in front of this app makes
(as a sub-request carrying the caller's context) to authorize a cache hit: it
costs one primary-key lookup and reflects visibility, ownership and status
exactly as a download would.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import webob

from imagecache.config import Settings
from imagecache.http.context import RequestContext
from imagecache.http.types import StartResponse, WSGIEnvironment
from imagecache.images import image_data, legacy, metadata, views
from imagecache.images.catalog import Catalog
from imagecache.images.db import ImageDB
from imagecache.images.model import Image
from imagecache.images.refusals import Refusal, not_found
from imagecache.images.routes import RouteTable
from imagecache.images.schemas import all_schemas, image_validator
from imagecache.images.store import ImageStore
from imagecache.images.wire import json_response

LOG = logging.getLogger(__name__)

Handler = Callable[..., webob.Response]
Routes = list[tuple[str, dict[str, Handler]]]


class ImagesApp:
    """The WSGI application; build it with :func:`imagecache.images.make_app`."""

    def __init__(self, settings: Settings, db: ImageDB, store: ImageStore) -> None:
        self.settings = settings
        self.db = db
        self.store = store
        self.catalog = Catalog(db, store, image_validator())
        self._schema_bodies = {
            name: json.dumps(document).encode("utf-8") for name, document in all_schemas().items()
        }
        self.routes: RouteTable[Handler] = RouteTable(self._route_list())

    def _route_list(self) -> Routes:
        """Every route, in matching order (``/v1/images/detail`` before ``{image_id}``)."""

        def on(handler: Handler, **fixed: Any) -> Handler:
            return partial(handler, self.catalog, **fixed)

        schemas: Routes = [
            (f"/v2/schemas/{name}", {"GET": partial(self.schema, name=name)}) for name in self._schema_bodies
        ]
        return [
            ("/", {"GET": partial(self.versions, explicit=False)}),
            ("/versions", {"GET": partial(self.versions, explicit=True)}),
            *schemas,
            ("/v2/images", {"GET": on(metadata.list_images), "POST": on(metadata.create_image)}),
            (
                "/v2/images/{image_id}",
                {
                    "GET": on(metadata.show_image),
                    "PATCH": on(metadata.update_image),
                    "DELETE": on(metadata.delete_image),
                },
            ),
            ("/v2/images/{image_id}/file", {"GET": on(image_data.download), "PUT": on(image_data.upload)}),
            (
                "/v2/images/{image_id}/tags/{tag}",
                {"PUT": on(metadata.set_tag, present=True), "DELETE": on(metadata.set_tag, present=False)},
            ),
            (
                "/v2/images/{image_id}/actions/deactivate",
                {"POST": on(metadata.set_activation, action="deactivate")},
            ),
            (
                "/v2/images/{image_id}/actions/reactivate",
                {"POST": on(metadata.set_activation, action="reactivate")},
            ),
            ("/v1/images", {"GET": on(legacy.v1_list, detail=False)}),
            ("/v1/images/detail", {"GET": on(legacy.v1_list, detail=True)}),
            (
                "/v1/images/{image_id}",
                {"GET": on(legacy.v1_download), "HEAD": on(legacy.v1_head), "DELETE": on(legacy.v1_delete)},
            ),
        ]

    # -- WSGI --------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = webob.Request(environ)
        try:
            response = self.dispatch(request)
        except Refusal as refusal:
            response = refusal.response(request)
        except Exception:
            LOG.exception("unexpected failure in %s %s", request.method, environ.get("PATH_INFO"))
            response = Refusal(500, "The server could not complete the request.").response(request)
        app_iter: Iterable[bytes] = response(environ, start_response)
        return app_iter

    def dispatch(self, request: webob.Request) -> webob.Response:
        """The handler's response to ``request``; a Refusal for anything declined (404 and 405 here)."""
        match = self.routes.match(request.environ.get("PATH_INFO", ""), request.method)
        if match is None:
            raise not_found("The resource could not be found.")
        if match.handler is None:
            allowed = ", ".join(match.allowed)
            raise Refusal(405, f"Allowed methods: {allowed}.", (("Allow", allowed),))
        return match.handler(request, **match.params)

    def lookup(self, context: RequestContext, image_id: str) -> Image | None:
        """The image ``context`` may see under ``image_id``, for in-process callers."""
        return self.catalog.lookup(context, image_id)

    def image_document(self, context: RequestContext, image_id: str) -> dict[str, Any] | None:
        """What ``GET /v2/images/{id}`` shows ``context`` (its lookup, its view), or None where it refuses.

        A cache filter in front authorizes hits with it, in process.
        """
        image = self.catalog.lookup(context, image_id)
        return None if image is None else views.image_document(image)

    # -- versions and schemas ----------------------------------------------------------

    def versions(self, request: webob.Request, explicit: bool) -> webob.Response:
        """300 Multiple Choices on ``/``, 200 on ``/versions``, as Glance answers."""
        return json_response(views.versions_document(request.application_url), 200 if explicit else 300)

    def schema(self, request: webob.Request, name: str) -> webob.Response:
        return webob.Response(
            body=self._schema_bodies[name], content_type="application/json", charset="UTF-8"
        )
