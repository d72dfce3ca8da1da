"""Where "what is this image, for this caller?" is answered: by the app, or straight from its catalog.

Hits are authorized exactly like misses.  In front of an upstream that means
a sub-request with the caller's own token (:class:`SubRequestMetadata`): only
the origin can judge it.  In front of the embedded image service the same
answer is computed in process by the service's own lookup and view
(:class:`DirectMetadata`), which saves a small cached hit the sub-request's
WSGI round trip and the JSON encoding and decoding of the image (a quarter of
its CPU time when measured).  Anything the lookup does not find is asked of
the app, so every refusal (404, 401 ...) stays the app's own answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from webob import Request, Response

from imagecache.http.context import RequestContext, get_context, set_context
from imagecache.http.types import WSGIApplication

#: Request headers a sub-request carries over from the caller's request.
_FORWARDED = ("HTTP_X_AUTH_TOKEN", "HTTP_X_PROJECT_ID", "HTTP_X_TENANT_ID", "HTTP_X_ROLES", "HTTP_X_IDENTITY_STATUS")
_BASE = ("HTTP_HOST", "SERVER_NAME", "SERVER_PORT", "wsgi.url_scheme", "SCRIPT_NAME")

#: The embedded service's lookup: the image document (as ``GET /v2/images/{id}``
#: renders it) that the context may see, or None.
Lookup = Callable[[RequestContext, str], "dict[str, Any] | None"]


@dataclass(frozen=True)
class ImageMeta:
    """The answer to "what is this image, for this caller?"."""

    status: int  # the HTTP status the app answered
    image: Mapping[str, Any] | None  # the image's JSON when status is 200
    response: Response  # the app's response, to pass on as it is when not 200

    @property
    def found(self) -> bool:
        return self.status == 200 and self.image is not None


def sub_environ(environ: Mapping[str, Any], *, context: RequestContext | None = None) -> dict[str, Any]:
    """The parts of the caller's environ a sub-request keeps (identity, host)."""
    base = {key: environ[key] for key in _FORWARDED + _BASE if key in environ}
    set_context(base, context if context is not None else get_context(environ))
    return base


class MetadataSource(Protocol):
    """One way of fetching an image's metadata as the caller of an environ sees it."""

    def fetch(self, environ: Mapping[str, Any], image_id: str) -> ImageMeta: ...


class SubRequestMetadata:
    """``GET /v2/images/{id}`` through the app, with the caller's credentials (any app, an upstream too)."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def fetch(self, environ: Mapping[str, Any], image_id: str) -> ImageMeta:
        request = Request.blank(f"/v2/images/{image_id}", environ=sub_environ(environ))
        request.headers["Accept"] = "application/json"
        response = request.get_response(self.app)
        image = None
        if response.status_code == 200:
            try:
                body = json.loads(response.body)
            except ValueError:
                body = None
            image = body if isinstance(body, dict) else None
        return ImageMeta(response.status_code, image, response)


class DirectMetadata:
    """The embedded service's own lookup and view, in process; the app answers whatever it does not find.

    ``lookup`` must apply the policy the service's ``GET /v2/images/{id}``
    applies (it is that handler's lookup), so the answer is the same.
    """

    def __init__(self, lookup: Lookup, fallback: MetadataSource) -> None:
        self._lookup = lookup
        self._fallback = fallback

    def fetch(self, environ: Mapping[str, Any], image_id: str) -> ImageMeta:
        document = self._lookup(get_context(environ), image_id)
        if document is None:
            return self._fallback.fetch(environ, image_id)  # the app's own refusal, body and headers
        return ImageMeta(200, document, Response())


def direct_or_none(app: WSGIApplication, lookup: Lookup | None) -> MetadataSource | None:
    """:class:`DirectMetadata` over ``lookup`` with ``app`` answering the rest; None without a lookup."""
    return None if lookup is None else DirectMetadata(lookup, SubRequestMetadata(app))
