"""The images the service holds, as a caller may see them: records, bytes and schema together.

Every handler finds images here, so "invisible" always reads as 404 (never
403: an image's existence does not leak) and every record written first
renders to a document the service's own image schema accepts.
"""

from __future__ import annotations

from collections.abc import Iterable

from jsonschema.protocols import Validator

from imagecache.http.context import RequestContext
from imagecache.images import policy, views
from imagecache.images.db import ImageDB
from imagecache.images.listing import parse_list_params
from imagecache.images.model import Image, canonical_id
from imagecache.images.refusals import Refusal, bad_request, not_found
from imagecache.images.schemas import base_attributes
from imagecache.images.store import ImageStore


class Catalog:
    """The database, the file store and the image schema that the handlers share."""

    def __init__(self, db: ImageDB, store: ImageStore, validator: Validator) -> None:
        self.db = db
        self.store = store
        self.validator = validator
        self.base_attributes = base_attributes(validator)

    def find(self, context: RequestContext, image_id: str) -> Image:
        """The image ``context`` may see under ``image_id``; 404 otherwise."""
        canonical = canonical_id(image_id)
        if canonical is None:
            raise not_found("No image found: image ids are UUIDs.")
        image = self.db.get(canonical)
        if image is None or not policy.may_see(context, image):
            raise not_found(f"No image found with ID {canonical}")
        return image

    def lookup(self, context: RequestContext, image_id: str) -> Image | None:
        """:meth:`find`, with None for an image the caller cannot see."""
        try:
            return self.find(context, image_id)
        except Refusal:
            return None

    def page(self, context: RequestContext, params: Iterable[tuple[str, str]]) -> tuple[list[Image], bool]:
        """One page of the listing that query ``params`` ask for, and whether more follow.

        400 for a bad parameter, or for a marker that names no image the caller can see.
        """
        query = parse_list_params(params)
        marker = None
        if query.marker is not None:
            marker = self.lookup(context, query.marker)
            if marker is None:
                raise bad_request("The marker names no image you can see.")
        return self.db.list(context, query, marker)

    def checked(self, image: Image) -> Image:
        """``image``, once it renders to a document our own schema accepts; 400 otherwise."""
        error = next(iter(self.validator.iter_errors(views.image_document(image))), None)
        if error is not None:
            raise bad_request(f"Provided object does not match schema 'image': {error.message[:200]}")
        return image
