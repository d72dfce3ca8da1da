"""The answers of the cache management API: JSON bodies, empty ones, errors, image records.

Shared by :mod:`~imagecache.wsgi.cache_manage` and :mod:`~imagecache.wsgi.pins_api`.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from typing import Any

from webob import Response

from imagecache.cache import CachedImage
from imagecache.http.errors import JSON, error_answer

#: Fields of a cached image record in the API: Glance's (what glanceclient reads),
#: then ``pinned``.  glanceclient reads records by field name, so a field more
#: is harmless there; a top-level key more in ``GET /v2/cache`` is not (its
#: ``cache-list`` shows every key but ``cached_images`` as queued ids).
RECORD_FIELDS = ("image_id", "hits", "last_accessed", "last_modified", "size", "pinned")


def json_response(body: Any, status: int = 200) -> Response:
    # webob adds no charset to application/json.
    return Response(status=status, content_type=JSON, body=json.dumps(body).encode("utf-8"))


def empty_response(status: int) -> Response:
    """A response without a body (204 carries no Content-Length at all)."""
    response = Response(status=status)
    del response.content_type
    if status != 204:
        response.content_length = 0
    return response


def error_response(status: int, message: str, extra: Iterable[tuple[str, str]] = ()) -> Response:
    """The server's JSON error (:mod:`imagecache.http.errors`), which glanceclient shows as it is."""
    answer = error_answer(status, message, extra)
    return Response(status=answer.status, headerlist=answer.headers, app_iter=[answer.body])


def record(image: CachedImage, pinned: bool = False) -> dict[str, Any]:
    """A cached image as the API shows it: Glance's fields and types, and whether it is pinned."""
    facts = image.to_dict()
    facts["pinned"] = pinned
    return {name: facts[name] for name in RECORD_FIELDS}


def records(images: Iterable[CachedImage], pinned: Collection[str]) -> list[dict[str, Any]]:
    return [record(image, image.image_id in pinned) for image in images]
