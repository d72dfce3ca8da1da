"""The legacy v1 routes: data and x-image-meta-* headers, listing, delete."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from tests.unit.images.conftest import ADMIN, ALICE, ANONYMOUS, BOB, Client

DATA = b"legacy image data"


def _meta(response_headers: object) -> dict[str, str]:
    return {k.lower(): v for k, v in response_headers.items() if k.lower().startswith("x-image-meta-")}  # type: ignore[attr-defined]


def test_v1_get_sends_data_and_metadata_headers(client: Client) -> None:
    image = client.active_image(DATA, name="legacy", os_distro="cirros", min_ram=128)
    response = client.request("GET", f"/v1/images/{image['id']}")
    assert response.status_int == 200
    assert response.body == DATA
    assert response.content_type == "application/octet-stream"
    assert response.content_length == len(DATA)
    meta = _meta(response.headers)
    shown = client.show(image["id"]).json
    assert meta == {
        "x-image-meta-id": image["id"],
        "x-image-meta-name": "legacy",
        "x-image-meta-size": str(len(DATA)),
        "x-image-meta-checksum": hashlib.md5(DATA).hexdigest(),
        "x-image-meta-status": "active",
        "x-image-meta-disk_format": "raw",
        "x-image-meta-container_format": "bare",
        "x-image-meta-is_public": "False",
        "x-image-meta-owner": "alice",
        "x-image-meta-protected": "False",
        "x-image-meta-min_disk": "0",
        "x-image-meta-min_ram": "128",
        "x-image-meta-created_at": shown["created_at"],
        "x-image-meta-updated_at": shown["updated_at"],
        "x-image-meta-deleted": "False",
        "x-image-meta-property-os_distro": "cirros",
    }


def test_v1_head_sends_headers_only(client: Client) -> None:
    image = client.active_image(DATA, ADMIN, visibility="public")
    response = client.request("HEAD", f"/v1/images/{image['id']}", ANONYMOUS)
    assert response.status_int == 200
    assert response.body == b""
    assert response.content_length == len(DATA)
    assert _meta(response.headers)["x-image-meta-is_public"] == "True"
    assert _meta(response.headers)["x-image-meta-checksum"] == hashlib.md5(DATA).hexdigest()


def test_v1_head_of_queued_image_leaves_out_unknown_values(client: Client) -> None:
    image = client.create(name=None)
    meta = _meta(client.request("HEAD", f"/v1/images/{image['id']}").headers)
    assert meta["x-image-meta-status"] == "queued"
    for absent in ("x-image-meta-size", "x-image-meta-checksum", "x-image-meta-name"):
        assert absent not in meta


def test_v1_get_of_queued_image_is_not_found(client: Client) -> None:
    image = client.create()
    assert client.request("GET", f"/v1/images/{image['id']}").status_int == 404


def test_v1_header_values_cannot_split_headers(client: Client) -> None:
    image = client.create(name="a\r\nX-Injected: yes", note="ü\nb", **{"bad name": "x"})
    response = client.request("HEAD", f"/v1/images/{image['id']}")
    assert "X-Injected" not in response.headers
    meta = _meta(response.headers)
    assert "\n" not in meta["x-image-meta-name"]
    assert meta["x-image-meta-property-note"].encode("latin-1").decode("utf-8") == "ü b"
    assert not any("bad" in key for key in meta)


def test_v1_visibility_and_delete(client: Client) -> None:
    image = client.active_image(DATA, ALICE, visibility="private")
    for method in ("GET", "HEAD", "DELETE"):
        assert client.request(method, f"/v1/images/{image['id']}", BOB).status_int == 404
    assert client.request("DELETE", f"/v1/images/{image['id']}", ALICE).status_int == 200
    assert client.request("HEAD", f"/v1/images/{image['id']}", ALICE).status_int == 404
    assert client.show(image["id"]).status_int == 404


def test_v1_delete_protected(client: Client) -> None:
    image = client.create(protected=True)
    assert client.request("DELETE", f"/v1/images/{image['id']}").status_int == 403


def test_v1_detail_is_a_listing_not_an_image_id(client: Client) -> None:
    image = client.active_image(DATA, os_distro="cirros")
    response = client.request("GET", "/v1/images/detail")
    assert response.status_int == 200
    (listed,) = response.json["images"]
    assert listed["id"] == image["id"]
    assert listed["is_public"] is False
    assert listed["properties"] == {"os_distro": "cirros"}
    assert listed["size"] == len(DATA)
    assert client.request("DELETE", "/v1/images/detail").status_int == 405
    assert client.request("HEAD", "/v1/images/detail").status_int == 405


def test_v1_brief_listing_and_filters(client: Client) -> None:
    first = client.create(name="one", os_distro="a")["id"]
    client.create(name="two", os_distro="b")
    brief = client.request("GET", "/v1/images").json["images"]
    brief_keys = ("checksum", "container_format", "disk_format", "id", "name", "size")
    assert {tuple(sorted(entry)) for entry in brief} == {brief_keys}
    assert [i["id"] for i in client.request("GET", "/v1/images/detail?property-os_distro=a").json["images"]] == [first]
    assert [i["id"] for i in client.request("GET", "/v1/images?name=one&is_public=None").json["images"]] == [first]
    assert len(client.request("GET", "/v1/images/detail?limit=1").json["images"]) == 1
    assert client.request("GET", "/v1/images?limit=x").status_int == 400
    assert client.request("GET", f"/v1/images?marker={uuid.uuid4()}").status_int == 400


@pytest.mark.parametrize("image_id", ["detail2", "..", "%2e%2e%2fimages.db", str(uuid.uuid4())])
@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE"])
def test_v1_unknown_or_malformed_ids(client: Client, image_id: str, method: str) -> None:
    assert client.request(method, f"/v1/images/{image_id}", ADMIN).status_int == 404
