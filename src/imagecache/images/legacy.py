"""Handlers for the legacy v1 image API: list, HEAD, download and delete, ``x-image-meta-*`` shaped.

They answer from the same records and by the same rules as v2 (the v2
handlers' lookups, downloads and deletes), so the two APIs never disagree.
"""

from __future__ import annotations

import webob

from imagecache.http.context import get_context
from imagecache.images import views
from imagecache.images.catalog import Catalog
from imagecache.images.download import file_response
from imagecache.images.image_data import open_data
from imagecache.images.metadata import delete
from imagecache.images.refusals import not_found
from imagecache.images.wire import json_response, query_pairs

#: Query parameters the legacy v1 listing honours (``property-<name>`` too).
_V1_LIST_PARAMS = (
    "limit",
    "marker",
    "sort_key",
    "sort_dir",
    "name",
    "status",
    "container_format",
    "disk_format",
    "size_min",
    "size_max",
)
#: What ``GET /v1/images`` (without ``/detail``) shows of each image.
_BRIEF = ("id", "name", "disk_format", "container_format", "size", "checksum")


def v1_list(catalog: Catalog, request: webob.Request, detail: bool) -> webob.Response:
    """``GET /v1/images[/detail]``: the images the caller may list, v1-shaped."""
    pairs = [
        (name.removeprefix("property-"), value)
        for name, value in query_pairs(request.environ)
        if name in _V1_LIST_PARAMS or name.startswith("property-")
    ]
    images, _ = catalog.page(get_context(request.environ), pairs)
    documents = [views.v1_document(image) for image in images]
    if not detail:
        documents = [{key: document[key] for key in _BRIEF} for document in documents]
    return json_response({"images": documents})


def v1_head(catalog: Catalog, request: webob.Request, image_id: str) -> webob.Response:
    found = catalog.find(get_context(request.environ), image_id)
    response = webob.Response(headerlist=views.v1_headers(found))
    response.content_length = found.size if found.has_data and found.size is not None else 0
    return response


def v1_download(catalog: Catalog, request: webob.Request, image_id: str) -> webob.Response:
    found, _, file = open_data(catalog, request, image_id)
    if file is None:
        raise not_found(f"Image {found.id} is not active")
    return file_response(request, found, file, views.v1_headers(found))


def v1_delete(catalog: Catalog, request: webob.Request, image_id: str) -> webob.Response:
    """Legacy delete: 200 with an empty body, as Glance v1 answered."""
    delete(catalog, request, image_id)
    return webob.Response(status=200, body=b"")
