"""Fixtures for the image service: an app on a temporary data dir and a client.

The client drives the app in-process (``webob.Request.blank``, no sockets) and
checks, on every response, what must always hold: no 5xx, and every image
document validates against the image schema the app itself serves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import webob

from imagecache.config import Settings
from imagecache.http.context import RequestContext, set_context
from imagecache.images import ImagesApp, make_app

ADMIN = RequestContext(project_id="admin-project", roles=("admin",))
ALICE = RequestContext(project_id="alice", roles=("member",))
BOB = RequestContext(project_id="bob", roles=("member",))
ANONYMOUS: RequestContext | None = None

PATCH_TYPE = "application/openstack-images-v2.1-json-patch"


class Client:
    """Requests to an :class:`ImagesApp` as a given caller, with invariant checks."""

    def __init__(self, app: ImagesApp) -> None:
        self.app = app
        self.checked = 0
        self.image_schema = self.request("GET", "/v2/schemas/image").json
        self.validator = jsonschema.Draft4Validator(self.image_schema)
        self.validator_latest = jsonschema.validators.validator_for(self.image_schema)(self.image_schema)
        images_schema = self.request("GET", "/v2/schemas/images").json
        self.images_validator = jsonschema.validators.validator_for(images_schema)(images_schema)

    def request(
        self,
        method: str,
        path: str,
        context: RequestContext | None = ALICE,
        *,
        body: bytes | None = None,
        json_body: Any = None,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
        environ: dict[str, Any] | None = None,
    ) -> webob.Response:
        if json_body is not None:
            body = json.dumps(json_body).encode()
            content_type = content_type or "application/json"
        request = webob.Request.blank(path, method=method, headers=headers or {})
        if body is not None:
            request.body = body
        if content_type is not None:
            request.content_type = content_type
        request.environ.update(environ or {})
        if context is not None:
            set_context(request.environ, context)
        response = request.get_response(self.app)
        assert response.status_int < 500, (response.status, response.body[:500])
        self._check_documents(response)
        return response

    def _check_documents(self, response: webob.Response) -> None:
        if not (response.content_type or "").startswith("application/json") or not response.body:
            return
        document = response.json
        if not isinstance(document, dict):
            return
        if document.get("schema") == "/v2/schemas/image":
            self.assert_valid(document)
            self.checked += 1
        elif document.get("schema") == "/v2/schemas/images":
            self.images_validator.validate(document)
            for image in document["images"]:
                self.assert_valid(image)
                self.checked += 1

    def assert_valid(self, image: dict[str, Any]) -> None:
        self.validator.validate(image)
        self.validator_latest.validate(image)

    # -- conveniences -----------------------------------------------------------------

    def create(self, context: RequestContext | None = ALICE, **fields: Any) -> dict[str, Any]:
        fields.setdefault("disk_format", "raw")
        fields.setdefault("container_format", "bare")
        response = self.request("POST", "/v2/images", context, json_body=fields)
        assert response.status_int == 201, response.body
        return response.json

    def upload(self, image_id: str, data: bytes, context: RequestContext | None = ALICE) -> webob.Response:
        return self.request(
            "PUT",
            f"/v2/images/{image_id}/file",
            context,
            body=data,
            content_type="application/octet-stream",
        )

    def active_image(
        self, data: bytes = b"image bytes", context: RequestContext | None = ALICE, **fields: Any
    ) -> dict[str, Any]:
        image = self.create(context, **fields)
        response = self.upload(image["id"], data, context)
        assert response.status_int == 204, response.body
        return image

    def patch(self, image_id: str, ops: Any, context: RequestContext | None = ALICE) -> webob.Response:
        return self.request("PATCH", f"/v2/images/{image_id}", context, json_body=ops, content_type=PATCH_TYPE)

    def show(self, image_id: str, context: RequestContext | None = ALICE) -> webob.Response:
        return self.request("GET", f"/v2/images/{image_id}", context)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=str(tmp_path / "data"))


@pytest.fixture
def app(settings: Settings) -> Iterator[ImagesApp]:
    application = make_app(settings)
    yield application
    application.db.close()


@pytest.fixture
def client(app: ImagesApp) -> Client:
    return Client(app)
