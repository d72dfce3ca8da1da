"""The image documents the service sends validate against the OpenAPI document's schemas too.

The client fixture already validates every image document against the
schema the service serves (``GET /v2/schemas/image``); here each one is also
validated against ``components/schemas/Image`` of docs/openapi.yaml (with its
formats: uuid, date-time), in every state an image can be in, and for random
create bodies.  The v1 listing is checked against ``ImageV1`` the same way.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings

from imagecache.openapi import load_document
from tests.unit.images.conftest import ADMIN, ALICE, PATCH_TYPE, Client
from tests.unit.images.test_robustness import bodies, contexts


def component_validator(name: str) -> jsonschema.protocols.Validator:
    """A validator for ``components/schemas/<name>``, its references resolved inside the document."""
    components = load_document()["components"]
    schema = {"$ref": f"#/components/schemas/{name}", "components": components}
    cls = jsonschema.validators.Draft202012Validator
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


IMAGE = component_validator("Image")
IMAGE_LIST = component_validator("ImageList")
IMAGE_V1 = component_validator("ImageV1")


def assert_image(client: Client, document: dict[str, Any]) -> None:
    client.assert_valid(document)  # GET /v2/schemas/image, as the fixture does
    IMAGE.validate(document)


def test_the_openapi_image_schema_names_every_attribute_the_service_schema_declares(client: Client) -> None:
    declared = set(client.image_schema["properties"])
    assert set(load_document()["components"]["schemas"]["Image"]["properties"]) == declared


def test_an_image_in_every_state_validates(client: Client) -> None:
    queued = client.create(name=None, tags=["a", "b"], os_distro="cirros", min_ram=512)
    active = client.active_image(b"x" * 1000, name="active", visibility="community")
    deactivated = client.active_image(b"y", context=ADMIN)
    assert client.request("POST", f"/v2/images/{deactivated['id']}/actions/deactivate", ADMIN).status_int == 204
    patched = client.patch(queued["id"], [{"op": "add", "path": "/os_version", "value": "6.0"},
                                          {"op": "replace", "path": "/name", "value": "renamed"}])
    assert patched.status_int == 200, patched.text
    for image in (queued, active, patched.json):
        assert_image(client, image)
    for image_id, context in ((queued["id"], ALICE), (active["id"], ALICE), (deactivated["id"], ADMIN)):
        shown = client.show(image_id, context)
        assert shown.status_int == 200
        assert_image(client, shown.json)
    assert client.show(deactivated["id"], ADMIN).json["status"] == "deactivated"


def test_a_listing_validates_page_by_page(client: Client) -> None:
    for number in range(3):
        client.create(name=f"image-{number}")
    page = client.request("GET", "/v2/images?limit=2").json
    IMAGE_LIST.validate(page)
    assert "next" in page
    rest = client.request("GET", page["next"]).json
    IMAGE_LIST.validate(rest)
    assert len(page["images"]) + len(rest["images"]) == 3


def test_the_v1_detail_listing_validates(client: Client) -> None:
    client.active_image(b"data", name="v1", os_distro="cirros")
    client.create(name=None)
    listing = client.request("GET", "/v1/images/detail").json
    assert len(listing["images"]) == 2
    for image in listing["images"]:
        IMAGE_V1.validate(image)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, context=contexts)
def test_every_image_a_random_create_makes_validates(client: Client, body: dict[str, Any], context: Any) -> None:
    response = client.request("POST", "/v2/images", context, json_body=body)
    if response.status_int == 201:
        assert_image(client, response.json)


@pytest.mark.parametrize("content_type", [PATCH_TYPE, "application/openstack-images-v2.0-json-patch"])
def test_both_patch_media_types_are_documented(content_type: str) -> None:
    patch = load_document()["paths"]["/v2/images/{image_id}"]["patch"]
    assert content_type in patch["requestBody"]["content"]
