"""Image metadata over HTTP: create, list, show, patch, delete, versions, schemas."""

from __future__ import annotations

import uuid

import pytest

from tests.unit.images.conftest import ADMIN, ALICE, ANONYMOUS, BOB, PATCH_TYPE, Client

# -- versions and schemas -----------------------------------------------------------------


def test_versions_lists_2_0_to_2_18_with_2_18_current(client: Client) -> None:
    response = client.request("GET", "/versions", headers={"Host": "images.example:9292"})
    assert response.status_int == 200
    versions = response.json["versions"]
    assert [v["id"] for v in versions] == [f"v2.{minor}" for minor in range(18, -1, -1)]
    assert {v["id"]: v["status"] for v in versions}["v2.18"] == "CURRENT"
    assert all(v["status"] == "SUPPORTED" for v in versions if v["id"] != "v2.18")
    assert {link["href"] for v in versions for link in v["links"]} == {"http://images.example:9292/v2/"}


def test_root_answers_multiple_choices(client: Client) -> None:
    response = client.request("GET", "/", context=ANONYMOUS)
    assert response.status_int == 300
    assert response.json["versions"][0]["id"] == "v2.18"


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/v2/schemas/image", "image"),
        ("/v2/schemas/images", "images"),
        ("/v2/schemas/metadefs/namespace", "namespace"),
        ("/v2/schemas/metadefs/resource_type", "resource_type_association"),
    ],
)
def test_schemas_are_served(client: Client, path: str, name: str) -> None:
    response = client.request("GET", path, context=ANONYMOUS)
    assert response.status_int == 200
    assert response.content_type == "application/json"
    assert response.json["name"] == name


def test_image_schema_is_permissive_for_string_properties(client: Client) -> None:
    schema = client.image_schema
    assert schema["additionalProperties"] == {"type": "string"}
    assert {"id", "name", "status", "visibility", "os_hash_value", "tags", "self", "file"} <= set(schema["properties"])


# -- create ----------------------------------------------------------------------------------


def test_create_returns_queued_image_with_glance_fields(client: Client) -> None:
    response = client.request(
        "POST",
        "/v2/images",
        json_body={
            "name": "cirros",
            "disk_format": "qcow2",
            "container_format": "bare",
            "tags": ["a", "b", "a"],
            "os_distro": "cirros",
            "min_ram": 64,
        },
    )
    assert response.status_int == 201
    image = response.json
    assert response.location.endswith(f"/v2/images/{image['id']}")
    assert image["status"] == "queued"
    assert image["owner"] == "alice"
    assert image["visibility"] == "shared"
    assert image["tags"] == ["a", "b"]
    assert image["os_distro"] == "cirros"
    assert image["min_ram"] == 64 and image["min_disk"] == 0
    assert image["size"] is None and image["checksum"] is None and image["os_hash_value"] is None
    assert image["self"] == f"/v2/images/{image['id']}"
    assert image["file"] == f"/v2/images/{image['id']}/file"
    assert image["schema"] == "/v2/schemas/image"
    assert image["created_at"].endswith("Z") and image["updated_at"] == image["created_at"]
    for key in ("protected", "os_hidden", "os_hash_algo", "virtual_size", "name"):
        assert key in image
    uuid.UUID(image["id"])


def test_create_with_given_id_then_duplicate_conflicts(client: Client) -> None:
    image_id = str(uuid.uuid4())
    assert client.create(id=image_id)["id"] == image_id
    response = client.request("POST", "/v2/images", json_body={"id": image_id})
    assert response.status_int == 409


def test_ids_of_deleted_images_are_not_reused(client: Client) -> None:
    image_id = str(uuid.uuid4())
    client.create(id=image_id)
    assert client.request("DELETE", f"/v2/images/{image_id}").status_int == 204
    assert client.request("POST", "/v2/images", json_body={"id": image_id}).status_int == 409


def test_upper_case_id_is_canonicalised(client: Client) -> None:
    image_id = str(uuid.uuid4())
    assert client.create(id=image_id.upper())["id"] == image_id
    assert client.show(image_id.upper()).json["id"] == image_id


@pytest.mark.parametrize(
    "field",
    [
        *("status", "checksum", "size", "virtual_size", "os_hash_algo", "os_hash_value", "created_at"),
        *("updated_at", "self", "file", "schema", "direct_url", "stores"),
    ],
)
def test_create_refuses_read_only_attributes(client: Client, field: str) -> None:
    value = {"status": "active", "size": 5, "virtual_size": 5}.get(field, "x")
    response = client.request("POST", "/v2/images", json_body={"name": "x", field: value})
    assert response.status_int == 403
    assert field in response.text


@pytest.mark.parametrize("field", ["deleted", "location", "locations", "os_glance_import_task"])
def test_create_refuses_reserved_attributes(client: Client, field: str) -> None:
    value: object = [] if field == "locations" else "x"
    assert client.request("POST", "/v2/images", json_body={field: value}).status_int == 403


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b"[]",
        b'"a string"',
        b'{"name": 5}',
        b'{"min_ram": "big"}',
        b'{"min_ram": -1}',
        b'{"min_disk": 1.5}',
        b'{"min_ram": 4294967296}',
        b'{"protected": "yes"}',
        b'{"visibility": "everyone"}',
        b'{"disk_format": "floppy"}',
        b'{"tags": "a"}',
        b'{"tags": [1]}',
        b'{"id": "not-a-uuid"}',
        b'{"id": "../../etc/passwd"}',
        b'{"custom": 5}',
        b'{"custom": null}',
        b'{"name": "' + b"x" * 256 + b'"}',
        b'{"' + b"k" * 256 + b'": "v"}',
        b'{"": "v"}',
        b'{"name": "\\ud800"}',
        b"[" * 5000 + b"]" * 5000,
        b'{"min_ram": 1' + b"0" * 5000 + b"}",
        b"\xff\xfe\x00",
    ],
)
def test_create_rejects_malformed_bodies_with_400(client: Client, body: bytes) -> None:
    response = client.request("POST", "/v2/images", body=body, content_type="application/json")
    assert response.status_int == 400, response.text


def test_create_needs_a_caller(client: Client) -> None:
    assert client.request("POST", "/v2/images", context=ANONYMOUS, json_body={"name": "x"}).status_int == 403


def test_only_admins_create_public_images(client: Client) -> None:
    assert client.request("POST", "/v2/images", json_body={"visibility": "public"}).status_int == 403
    assert client.create(ADMIN, visibility="public")["visibility"] == "public"
    assert client.create(ALICE, visibility="community")["visibility"] == "community"


def test_owner_on_create(client: Client) -> None:
    assert client.request("POST", "/v2/images", json_body={"owner": "bob"}).status_int == 403
    assert client.create(ALICE, owner="alice")["owner"] == "alice"
    assert client.create(ADMIN, owner="bob")["owner"] == "bob"


def test_chunked_json_body_without_content_length(client: Client) -> None:
    response = client.request(
        "POST",
        "/v2/images",
        body=b'{"name": "chunked"}',
        content_type="application/json",
        environ={"CONTENT_LENGTH": "", "HTTP_TRANSFER_ENCODING": "chunked"},
    )
    assert response.status_int == 201
    assert response.json["name"] == "chunked"


def test_oversized_json_body_is_refused(client: Client) -> None:
    body = b'{"name": "' + b"x" * (2 << 20) + b'"}'
    assert client.request("POST", "/v2/images", body=body, content_type="application/json").status_int == 413


# -- show and visibility ---------------------------------------------------------------


def test_visibility_rules_on_show(client: Client) -> None:
    private = client.create(ALICE, visibility="private")["id"]
    shared = client.create(ALICE)["id"]
    community = client.create(ALICE, visibility="community")["id"]
    public = client.create(ADMIN, visibility="public")["id"]
    for image_id in (private, shared):
        assert client.show(image_id, ALICE).status_int == 200
        assert client.show(image_id, ADMIN).status_int == 200
        assert client.show(image_id, BOB).status_int == 404
        assert client.show(image_id, ANONYMOUS).status_int == 404
    for image_id in (community, public):
        for caller in (ALICE, BOB, ADMIN, ANONYMOUS):
            assert client.show(image_id, caller).status_int == 200


def test_ownerless_private_image_is_for_admins_only(client: Client) -> None:
    from imagecache.http.context import RequestContext

    projectless_admin = RequestContext(roles=("admin",))
    image = client.create(projectless_admin, visibility="private")
    assert image["owner"] is None
    assert client.show(image["id"], ADMIN).status_int == 200
    assert client.show(image["id"], ALICE).status_int == 404
    assert client.show(image["id"], ANONYMOUS).status_int == 404


@pytest.mark.parametrize(
    "path",
    [
        "/v2/images/not-a-uuid",
        "/v2/images/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/v2/images/%2e%2e",
        "/v2/images/..%2f..%2fimages.db",
        "/v2/images/%00",
        "/v2/images/%ff%fe",
        "/v2/images/" + str(uuid.uuid4()) + "%2f..",
        "/v2/images/{" + str(uuid.uuid4()) + "}",
        "/v2/images/" + str(uuid.uuid4()).replace("-", ""),
        "/v2/images/" + str(uuid.uuid4()) + "/",
        "/v2/images//file",
        "/v2/images/../../file",
    ],
)
@pytest.mark.parametrize("suffix", ["", "/file"])
def test_malformed_ids_are_not_found(client: Client, path: str, suffix: str) -> None:
    response = client.request("GET", path + suffix, ADMIN)
    assert response.status_int == 404
    assert len(response.body) < 300


def test_unknown_routes_and_methods(client: Client) -> None:
    assert client.request("GET", "/v3/images").status_int == 404
    assert client.request("GET", "/v2/nothing").status_int == 404
    response = client.request("PUT", "/v2/images")
    assert response.status_int == 405
    assert response.headers["Allow"] == "GET, POST"
    image = client.create()
    response = client.request("POST", f"/v2/images/{image['id']}")
    assert response.status_int == 405
    assert set(response.headers["Allow"].split(", ")) == {"DELETE", "GET", "PATCH"}
    assert client.request("DELETE", f"/v2/images/{image['id']}/file").status_int == 405


# -- list ------------------------------------------------------------------------------------


def _ids(client: Client, path: str, context=ALICE) -> list[str]:  # type: ignore[no-untyped-def]
    response = client.request("GET", path, context)
    assert response.status_int == 200, response.text
    return [image["id"] for image in response.json["images"]]


def test_list_shows_what_the_caller_may_see(client: Client) -> None:
    mine = client.create(ALICE)["id"]
    my_community = client.create(ALICE, visibility="community")["id"]
    theirs = client.create(BOB)["id"]
    their_community = client.create(BOB, visibility="community")["id"]
    public = client.create(ADMIN, visibility="public")["id"]

    assert set(_ids(client, "/v2/images", ALICE)) == {mine, my_community, public}
    assert set(_ids(client, "/v2/images", ANONYMOUS)) == {public}
    assert set(_ids(client, "/v2/images", ADMIN)) == {mine, theirs, public}
    assert set(_ids(client, "/v2/images?visibility=community", ALICE)) == {my_community, their_community}
    assert set(_ids(client, "/v2/images?visibility=all", ALICE)) == {mine, my_community, their_community, public}
    everything = {mine, my_community, theirs, their_community, public}
    assert set(_ids(client, "/v2/images?visibility=all", ADMIN)) == everything
    assert set(_ids(client, "/v2/images?visibility=shared", ALICE)) == {mine}
    assert set(_ids(client, "/v2/images?visibility=public", BOB)) == {public}


def test_list_pagination_with_limit_marker_and_next(client: Client) -> None:
    created = {client.create(name=f"image-{i}")["id"] for i in range(7)}
    seen: list[str] = []
    path = "/v2/images?limit=3"
    pages = 0
    while path:
        response = client.request("GET", path)
        page = response.json
        assert page["schema"] == "/v2/schemas/images"
        assert page["first"] == "/v2/images?limit=3"
        assert len(page["images"]) <= 3
        seen += [image["id"] for image in page["images"]]
        path = page.get("next")
        pages += 1
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7
    assert set(seen) == created


def test_list_default_order_is_newest_first(client: Client) -> None:
    first = client.create(name="first")["id"]
    second = client.create(name="second")["id"]
    assert _ids(client, "/v2/images")[:2] == [second, first]
    assert _ids(client, "/v2/images?sort_dir=asc")[:2] == [first, second]


def test_list_sort_and_paginate_by_name(client: Client) -> None:
    names = ["delta", "alpha", None, "charlie", "bravo", "alpha"]
    for name in names:
        client.create(name=name)
    seen: list[str | None] = []
    path = "/v2/images?sort=name:asc&limit=2"
    while path:
        page = client.request("GET", path).json
        seen += [image["name"] for image in page["images"]]
        path = page.get("next")
    assert seen == [None, "alpha", "alpha", "bravo", "charlie", "delta"]


def test_list_filters(client: Client) -> None:
    qcow = client.create(name="q", disk_format="qcow2", tags=["x", "y"], os_distro="ubuntu")["id"]
    raw = client.create(name="r", disk_format="raw", tags=["x"], protected=True)["id"]
    hidden = client.create(name="h", os_hidden=True)["id"]
    assert _ids(client, "/v2/images?disk_format=qcow2") == [qcow]
    assert set(_ids(client, "/v2/images?disk_format=in:qcow2,raw")) == {qcow, raw}
    assert _ids(client, "/v2/images?tag=x&tag=y") == [qcow]
    assert set(_ids(client, "/v2/images?tag=x")) == {qcow, raw}
    assert _ids(client, "/v2/images?os_distro=ubuntu") == [qcow]
    assert _ids(client, "/v2/images?protected=true") == [raw]
    assert _ids(client, "/v2/images?name=r") == [raw]
    assert hidden not in _ids(client, "/v2/images")
    assert _ids(client, "/v2/images?os_hidden=true") == [hidden]
    assert _ids(client, "/v2/images?status=active") == []


@pytest.mark.parametrize(
    "query",
    [
        "limit=x",
        "limit=-1",
        "sort_key=owner",
        "sort_dir=sideways",
        "sort=name:up",
        "sort=name&sort_key=id",
        "visibility=everyone",
        "os_hidden=maybe",
        "protected=1",
        "member_status=friend",
        "size_min=small",
        "changes-since=2020-01-01",
        "marker=not-a-uuid",
        f"marker={uuid.uuid4()}",
        "sort_key=name&sort_key=id&sort_dir=asc&sort_dir=desc&sort_dir=asc",
    ],
)
def test_list_rejects_bad_parameters(client: Client, query: str) -> None:
    assert client.request("GET", f"/v2/images?{query}").status_int == 400


def test_marker_of_an_invisible_image_is_rejected(client: Client) -> None:
    theirs = client.create(BOB)["id"]
    assert client.request("GET", f"/v2/images?marker={theirs}", ALICE).status_int == 400


def test_limit_is_capped(client: Client) -> None:
    client.create()
    assert client.request("GET", "/v2/images?limit=100000").status_int == 200


# -- patch ------------------------------------------------------------------------------------


def test_patch_replace_add_remove(client: Client) -> None:
    image = client.create(name="before", os_distro="debian")
    response = client.patch(
        image["id"],
        [
            {"op": "replace", "path": "/name", "value": "after"},
            {"op": "add", "path": "/os_version", "value": "12"},
            {"op": "remove", "path": "/os_distro"},
            {"op": "replace", "path": "/tags", "value": ["t1", "t2"]},
            {"op": "replace", "path": "/min_disk", "value": 10},
            {"op": "replace", "path": "/protected", "value": True},
            {"op": "replace", "path": "/visibility", "value": "private"},
            {"op": "replace", "path": "/disk_format", "value": "qcow2"},
            {"op": "add", "path": "/a~1b", "value": "slash"},
        ],
    )
    assert response.status_int == 200, response.text
    patched = response.json
    assert patched["name"] == "after"
    assert patched["os_version"] == "12"
    assert "os_distro" not in patched
    assert patched["tags"] == ["t1", "t2"]
    assert patched["min_disk"] == 10
    assert patched["protected"] is True
    assert patched["visibility"] == "private"
    assert patched["disk_format"] == "qcow2"
    assert patched["a/b"] == "slash"
    assert client.show(image["id"]).json == patched


def test_patch_draft_4_style(client: Client) -> None:
    image = client.create(name="before")
    response = client.request(
        "PATCH",
        f"/v2/images/{image['id']}",
        json_body=[{"replace": "/name", "value": "after"}, {"add": "/k", "value": "v"}],
        content_type="application/openstack-images-v2.0-json-patch",
    )
    assert response.status_int == 200
    assert response.json["name"] == "after"


@pytest.mark.parametrize(
    ("ops", "status"),
    [
        ([{"op": "replace", "path": "/status", "value": "active"}], 403),
        ([{"op": "replace", "path": "/checksum", "value": "0" * 32}], 403),
        ([{"op": "replace", "path": "/id", "value": str(uuid.uuid4())}], 403),
        ([{"op": "replace", "path": "/size", "value": 1}], 403),
        ([{"op": "add", "path": "/deleted", "value": "x"}], 403),
        ([{"op": "add", "path": "/os_glance_x", "value": "x"}], 403),
        ([{"op": "add", "path": "/locations/-", "value": {"url": "x", "metadata": {}}}], 403),
        ([{"op": "remove", "path": "/name"}], 403),
        ([{"op": "replace", "path": "/visibility", "value": "public"}], 403),
        ([{"op": "replace", "path": "/owner", "value": "bob"}], 403),
        ([{"op": "replace", "path": "/nope", "value": "x"}], 409),
        ([{"op": "remove", "path": "/nope"}], 409),
        ([{"op": "move", "path": "/name", "value": "x"}], 400),
        ([{"path": "/name", "value": "x"}], 400),
        ([{"op": "replace", "value": "x"}], 400),
        ([{"op": "replace", "path": "/name"}], 400),
        ([{"op": "replace", "path": "name", "value": "x"}], 400),
        ([{"op": "replace", "path": "/a//b", "value": "x"}], 400),
        ([{"op": "replace", "path": "/a/", "value": "x"}], 400),
        ([{"op": "replace", "path": "/a~2", "value": "x"}], 400),
        ([{"op": "replace", "path": "/tags/0", "value": "x"}], 400),
        ([{"op": "replace", "path": 5, "value": "x"}], 400),
        ([{"op": "replace", "path": "/name", "value": 5}], 400),
        ([{"op": "replace", "path": "/min_ram", "value": -5}], 400),
        ([{"op": "replace", "path": "/min_ram", "value": "5"}], 400),
        ([{"op": "replace", "path": "/protected", "value": "true"}], 400),
        ([{"op": "replace", "path": "/tags", "value": "x"}], 400),
        ([{"op": "add", "path": "/custom", "value": 1}], 400),
        ([{"op": "add", "path": "/", "value": "x"}], 400),
        ({"op": "replace", "path": "/name", "value": "x"}, 400),
        (["not an object"], 400),
    ],
)
def test_patch_refusals(client: Client, ops: object, status: int) -> None:
    image = client.create(name="unchanged")
    response = client.patch(image["id"], ops)
    assert response.status_int == status, response.text
    assert client.show(image["id"]).json["name"] == "unchanged"


def test_patch_refusal_leaves_earlier_operations_unapplied(client: Client) -> None:
    image = client.create(name="unchanged")
    ops = [{"op": "replace", "path": "/name", "value": "changed"}, {"op": "remove", "path": "/nope"}]
    assert client.patch(image["id"], ops).status_int == 409
    assert client.show(image["id"]).json["name"] == "unchanged"


def test_patch_needs_the_json_patch_media_type(client: Client) -> None:
    image = client.create()
    ops = [{"op": "replace", "path": "/name", "value": "x"}]
    for content_type in ("application/json", "text/plain", None):
        response = client.request("PATCH", f"/v2/images/{image['id']}", json_body=ops, content_type=content_type or "")
        assert response.status_int == 415
        assert "application/openstack-images-v2.1-json-patch" in response.headers["Accept-Patch"]


def test_patch_malformed_json(client: Client) -> None:
    image = client.create()
    response = client.request("PATCH", f"/v2/images/{image['id']}", body=b"[{", content_type=PATCH_TYPE)
    assert response.status_int == 400


def test_patch_permissions(client: Client) -> None:
    private = client.create(ALICE)["id"]
    public = client.create(ADMIN, visibility="public")["id"]
    ops = [{"op": "replace", "path": "/name", "value": "x"}]
    assert client.patch(private, ops, BOB).status_int == 404
    assert client.patch(public, ops, BOB).status_int == 403
    assert client.patch(public, ops, ANONYMOUS).status_int == 403
    assert client.patch(private, ops, ADMIN).status_int == 200
    assert client.patch(private, [{"op": "replace", "path": "/visibility", "value": "public"}], ADMIN).status_int == 200
    assert client.patch(private, [{"op": "replace", "path": "/owner", "value": "bob"}], ADMIN).json["owner"] == "bob"
    assert client.show(private, BOB).status_int == 200


def test_formats_are_fixed_once_data_is_uploaded(client: Client) -> None:
    image = client.active_image()
    response = client.patch(image["id"], [{"op": "replace", "path": "/disk_format", "value": "qcow2"}])
    assert response.status_int == 403
    same = client.patch(image["id"], [{"op": "replace", "path": "/disk_format", "value": "raw"}])
    assert same.status_int == 200


def test_patch_updates_updated_at_only_on_change(client: Client) -> None:
    image = client.create(name="x")
    unchanged = client.patch(image["id"], [{"op": "replace", "path": "/name", "value": "x"}]).json
    assert unchanged["updated_at"] == image["updated_at"]


# -- delete ------------------------------------------------------------------------------


def test_delete(client: Client) -> None:
    image = client.active_image()
    data_file = client.app.store.path(image["id"])
    assert client.request("DELETE", f"/v2/images/{image['id']}").status_int == 204
    assert client.show(image["id"]).status_int == 404
    assert client.request("DELETE", f"/v2/images/{image['id']}").status_int == 404
    import os

    assert not os.path.exists(data_file)


def test_delete_protected_is_forbidden(client: Client) -> None:
    image = client.create(protected=True)
    assert client.request("DELETE", f"/v2/images/{image['id']}").status_int == 403
    client.patch(image["id"], [{"op": "replace", "path": "/protected", "value": False}])
    assert client.request("DELETE", f"/v2/images/{image['id']}").status_int == 204


def test_delete_permissions(client: Client) -> None:
    private = client.create(ALICE)["id"]
    public = client.create(ADMIN, visibility="public")["id"]
    assert client.request("DELETE", f"/v2/images/{private}", BOB).status_int == 404
    assert client.request("DELETE", f"/v2/images/{public}", BOB).status_int == 403
    assert client.request("DELETE", f"/v2/images/{public}", ANONYMOUS).status_int == 403
    assert client.request("DELETE", f"/v2/images/{private}", ADMIN).status_int == 204


def test_every_document_seen_was_validated(client: Client) -> None:
    client.create()
    client.request("GET", "/v2/images")
    assert client.checked == 2


# -- tags ------------------------------------------------------------------------------------


def test_tag_add_and_remove(client: Client) -> None:
    image_id = client.create(tags=["a"])["id"]
    assert client.request("PUT", f"/v2/images/{image_id}/tags/b").status_int == 204
    assert client.request("PUT", f"/v2/images/{image_id}/tags/b").status_int == 204
    assert client.request("PUT", f"/v2/images/{image_id}/tags/%E2%98%83").status_int == 204
    assert client.show(image_id).json["tags"] == ["a", "b", "\u2603"]
    assert client.request("DELETE", f"/v2/images/{image_id}/tags/a").status_int == 204
    assert client.request("DELETE", f"/v2/images/{image_id}/tags/a").status_int == 404
    assert client.show(image_id).json["tags"] == ["b", "\u2603"]


def test_tag_refusals(client: Client) -> None:
    private = client.create(ALICE)["id"]
    public = client.create(ADMIN, visibility="public")["id"]
    assert client.request("PUT", f"/v2/images/{private}/tags/x", BOB).status_int == 404
    assert client.request("PUT", f"/v2/images/{public}/tags/x", BOB).status_int == 403
    assert client.request("DELETE", f"/v2/images/{public}/tags/x", ANONYMOUS).status_int == 403
    assert client.request("PUT", f"/v2/images/{private}/tags/" + "x" * 256).status_int == 400
    assert client.request("PUT", f"/v2/images/{private}/tags/%FF").status_int == 400
    assert client.request("PUT", "/v2/images/nope/tags/x").status_int == 404
    assert client.request("GET", f"/v2/images/{private}/tags/x").status_int == 405


@pytest.mark.parametrize(
    "query",
    [
        "size_min=" + "9" * 30,
        "size_max=" + "9" * 5000,
        "limit=" + "9" * 5000,
        "status=in:" + ",".join(["active"] * 101),
        "&".join(f"tag=t{i}" for i in range(101)),
        "&".join(f"p{i}=v" for i in range(101)),
    ],
)
def test_list_rejects_oversized_parameters(client: Client, query: str) -> None:
    assert client.request("GET", f"/v2/images?{query}").status_int == 400


def test_list_accepts_many_but_bounded_filters(client: Client) -> None:
    query = "status=in:" + ",".join(["queued"] * 100) + "&" + "&".join(f"tag=t{i}" for i in range(100))
    assert client.request("GET", f"/v2/images?{query}").json["images"] == []
