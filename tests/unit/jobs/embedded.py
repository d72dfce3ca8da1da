"""Images in the embedded image service, for tests of jobs that build it from settings.

``imagecache prefetch`` reads the embedded service in-process
(``images.make_app(settings)``), so these tests put real images into its
store through its own API, as an admin would.
"""

from __future__ import annotations

import hashlib
import json
import os

from webob import Request, Response

from imagecache import images
from imagecache.config import Settings
from imagecache.http.context import RequestContext, set_context

ADMIN = RequestContext.admin(project_id="p-admin")


def _call(app: images.ImagesApp, method: str, path: str, body: bytes, content_type: str) -> Response:
    request = Request.blank(path, method=method, body=body, content_type=content_type)
    set_context(request.environ, ADMIN)
    return request.get_response(app)


def add_image(settings: Settings, data: bytes | None = None, *, name: str = "test", **fields: object) -> str:
    """Create and upload an image in the embedded service of ``settings``; its id.

    ``fields`` go into the creation request (``tags``, ``visibility``, properties).
    """
    app = images.make_app(settings)
    try:
        created = _call(
            app, "POST", "/v2/images",
            json.dumps({"name": name, "disk_format": "raw", "container_format": "bare", **fields}).encode(),
            "application/json",
        )
        assert created.status_code == 201, created.text
        image_id = str(created.json["id"])
        payload = data if data is not None else hashlib.sha256(image_id.encode()).digest() * 4096
        uploaded = _call(app, "PUT", f"/v2/images/{image_id}/file", payload, "application/octet-stream")
        assert uploaded.status_code == 204, uploaded.text
        return image_id
    finally:
        app.db.close()


def corrupt_stored_image(settings: Settings, image_id: str) -> None:
    """Flip one bit of the stored bytes: the service then serves data its checksum denies."""
    path = os.path.join(settings.data_dir, "images", image_id)
    with open(path, "r+b") as fh:
        first = fh.read(1)
        fh.seek(0)
        fh.write(bytes([first[0] ^ 1]))


def delete_stored_image(settings: Settings, image_id: str) -> None:
    """Delete the image through the API: the service then answers 404 for it."""
    app = images.make_app(settings)
    try:
        request = Request.blank(f"/v2/images/{image_id}", method="DELETE")
        set_context(request.environ, ADMIN)
        assert request.get_response(app).status_code == 204
    finally:
        app.db.close()


def patch_image(settings: Settings, image_id: str, ops: list[dict[str, object]]) -> None:
    """Change an image's metadata through the API (JSON patch), as an admin."""
    app = images.make_app(settings)
    try:
        changed = _call(app, "PATCH", f"/v2/images/{image_id}", json.dumps(ops).encode(),
                        "application/openstack-images-v2.1-json-patch")
        assert changed.status_code == 200, changed.text
    finally:
        app.db.close()
