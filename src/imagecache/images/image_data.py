"""Handlers for image data (v2): upload (queued -> saving -> active) and download.

An upload moves the image to ``saving`` before it reads a byte, so two
uploads cannot race, and back to ``queued`` when it fails, so the client may
try again.  The status transitions are pure functions, run inside
:meth:`ImageDB.modify <imagecache.images.db.ImageDB.modify>`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
from functools import partial
from typing import BinaryIO

import webob

from imagecache.http.context import get_context
from imagecache.images import policy
from imagecache.images.body import body_chunks
from imagecache.images.catalog import Catalog
from imagecache.images.download import file_response
from imagecache.images.model import Image, ImageData, utcnow
from imagecache.images.refusals import Refusal, bad_request, conflict, forbidden

LOG = logging.getLogger(__name__)

_OCTET_STREAM = "application/octet-stream"


def upload(catalog: Catalog, request: webob.Request, image_id: str) -> webob.Response:
    """``PUT /v2/images/{id}/file``: queued -> saving -> active, 204."""
    if request.content_type != _OCTET_STREAM:
        shown = (request.content_type or "None")[:100]
        raise Refusal(415, f"Content type {shown} is not supported; send {_OCTET_STREAM}.")
    context = get_context(request.environ)
    found = catalog.find(context, image_id)
    if not policy.may_modify(context, found):
        raise forbidden(f"Not allowed to upload image data for image {found.id}")
    expected = request.headers.get("x-openstack-image-size")
    if expected is not None and not (expected.isascii() and expected.strip().isdigit()):
        raise bad_request("Invalid or missing image size in request headers.")

    started = catalog.db.modify(found.id, _start_saving)
    finished = False
    try:
        _receive(catalog, request, started, None if expected is None else int(expected))
        finished = True
    finally:
        if not finished:
            with contextlib.suppress(Refusal):  # deleted meanwhile: nothing to put back
                catalog.db.modify(found.id, _back_to_queued)
    return webob.Response(status=204)


def _storage_refusal(error: OSError) -> Refusal:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return Refusal(413, "Image storage media is full.")
    return Refusal(503, "Image storage is unavailable.")


def _receive(catalog: Catalog, request: webob.Request, image: Image, expected: int | None) -> Image:
    """Store the request body as ``image``'s data and activate it; the active image."""
    try:
        data = catalog.store.write(image.id, body_chunks(request.environ))
    except OSError as error:
        LOG.error("storing data of image %s failed: %s", image.id, error)
        raise _storage_refusal(error) from error
    if expected is not None and data.size != expected:
        catalog.store.delete(image.id)
        raise bad_request(f"Image size mismatch: expected {expected} bytes, received {data.size}.")
    try:
        return catalog.db.modify(image.id, partial(_activate, data=data))
    except Refusal:
        catalog.store.delete(image.id)
        raise Refusal(
            410,
            f"Image {image.id} could not be found after upload. The image may have been "
            "deleted during the upload.",
        ) from None


def download(catalog: Catalog, request: webob.Request, image_id: str) -> webob.Response:
    """``GET /v2/images/{id}/file``: 200, 206 for a Range, 416, or 204 without data."""
    image, verdict, file = open_data(catalog, request, image_id)
    if file is None:
        if verdict is policy.Download.ALLOWED:
            LOG.warning("image %s is %s but has no data file", image.id, image.status)
        return webob.Response(status=204)
    return file_response(request, image, file, [], content_md5=image.checksum)


def open_data(
    catalog: Catalog, request: webob.Request, image_id: str
) -> tuple[Image, policy.Download, BinaryIO | None]:
    """What v1 and v2 downloads share: the visible image, the policy's verdict
    and its open data file (None when there is none to send); 404 for an
    image the caller cannot see, 403 when it is deactivated."""
    context = get_context(request.environ)
    found = catalog.find(context, image_id)
    verdict = policy.download(context, found)
    if verdict is policy.Download.DEACTIVATED:
        raise forbidden("The requested image has been deactivated. Image data download is forbidden.")
    file = catalog.store.open(found.id) if verdict is policy.Download.ALLOWED else None
    return found, verdict, file


# -- status transitions (pure; run inside ImageDB.modify) -------------------------------------


def _start_saving(image: Image) -> Image:
    if image.status != "queued":
        raise conflict(f"Image status transition from {image.status} to saving is not allowed")
    missing = [name for name in ("disk_format", "container_format") if not getattr(image, name)]
    if missing:
        noun = "Property" if len(missing) == 1 else "Properties"
        raise bad_request(f"{noun} {', '.join(missing)} must be set prior to saving data.")
    return image.evolve(status="saving", updated_at=utcnow())


def _back_to_queued(image: Image) -> Image:
    """Undo :func:`_start_saving` after a failed upload, so the client may retry."""
    return image.evolve(status="queued", updated_at=utcnow()) if image.status == "saving" else image


def _activate(image: Image, data: ImageData) -> Image:
    if image.status != "saving":
        raise conflict(f"Image {image.id} left the saving status during the upload.")
    return image.with_data(data, utcnow())
