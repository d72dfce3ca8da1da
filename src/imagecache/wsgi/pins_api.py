"""The pins of the cache management API: ours, under paths no Glance route fits.

* ``GET /v2/cache/pins``: every pin, cached or not, and whether pinned
  images alone exceed ``image_cache_max_size``;
* ``PUT /v2/cache/{id}/pin``: pin an image.  A cached one is pinned at once
  (200); one that is not is checked as ``PUT /v2/cache/{id}`` checks it (the
  image service's 404, 400 unless active), pinned, queued and fetched now
  (202): a pin means "keep this cached";
* ``DELETE /v2/cache/{id}/pin``: unpin (204); 404 when it was not pinned.

The filter in front (:class:`~imagecache.wsgi.cache_manage.CacheManageFilter`)
has already checked the caller is an admin and the id a UUID.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from webob import Request, Response

from imagecache.cache import ImageCache
from imagecache.cache.pins import MANUAL, Pin
from imagecache.wsgi.image_source import ImageSource
from imagecache.wsgi.manage_responses import empty_response, error_response, json_response

#: Queue an image and start fetching it, as the admin of the request (the filter's own rule).
QueueAndFetch = Callable[[Request, str], None]


def pin_document(pin: Pin) -> dict[str, Any]:
    return {"image_id": pin.image_id, "pinned_by": pin.by, "cached": pin.cached, "size": pin.size}


class PinsAPI:
    """The three pin routes over one cache."""

    def __init__(self, cache: ImageCache, source: ImageSource, queue_and_fetch: QueueAndFetch) -> None:
        self.cache = cache
        self.source = source
        self.queue_and_fetch = queue_and_fetch

    def list_pins(self, request: Request) -> Response:
        """GET /v2/cache/pins: ``{"pinned_images": [...], "pinned_bytes", "image_cache_max_size", "over_limit"}``."""
        pins = self.cache.pins.list()
        state = self.cache.pins.state()
        return json_response({
            "pinned_images": [pin_document(pin) for pin in pins],
            "pinned_bytes": state.bytes,
            "image_cache_max_size": state.max_size,
            "over_limit": state.over_limit,
        })

    def pin(self, request: Request, image_id: str) -> Response:
        """PUT /v2/cache/{id}/pin: 200 with the pin when cached; 202 when pinned and being fetched."""
        if self.cache.is_cached(image_id):
            self.cache.pins.pin(image_id, MANUAL)
            return json_response(self._document(image_id))
        meta = self.source.metadata(request.environ, image_id)
        if meta.status != 200:
            return meta.response  # 404 (unknown, or hidden from the caller), 401, ... as the image service said
        if meta.image is None:
            return error_response(502, "The image service gave an unreadable answer about this image.")
        if meta.image.get("status") != "active":
            return error_response(400, "Only images with status active can be pinned.")
        self.cache.pins.pin(image_id, MANUAL)  # before the fetch, so its fill is a pinned one
        self.queue_and_fetch(request, image_id)
        return json_response(self._document(image_id), 202)

    def unpin(self, request: Request, image_id: str) -> Response:
        """DELETE /v2/cache/{id}/pin: 204; 404 when the image is not pinned."""
        if not self.cache.pins.unpin(image_id):
            return error_response(404, f"Image {image_id} is not pinned.")
        return empty_response(204)

    def _document(self, image_id: str) -> dict[str, Any]:
        facts = self.cache.layout.stat(image_id)
        return pin_document(Pin(image_id, MANUAL, facts.size if facts else None))
