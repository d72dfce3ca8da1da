"""Arbitrary input never yields a 5xx, and every image document validates.

The client fixture asserts both on every response; these tests feed it
random requests.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.images.conftest import ADMIN, ALICE, ANONYMOUS, BOB, PATCH_TYPE, Client

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False), st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
field_names = st.sampled_from(
    ["name", "id", "visibility", "protected", "os_hidden", "owner", "container_format", "disk_format",
     "min_ram", "min_disk", "tags", "status", "size", "custom", "os_distro", "locations", "self", ""]
)  # fmt: skip
good_values: dict[str, Any] = {
    "name": st.one_of(st.none(), st.text(max_size=300)),
    "visibility": st.sampled_from(["public", "private", "shared", "community", "bogus"]),
    "protected": st.booleans(),
    "os_hidden": st.booleans(),
    "container_format": st.sampled_from([None, "bare", "ovf", "zip"]),
    "disk_format": st.sampled_from([None, "raw", "qcow2", "floppy"]),
    "min_ram": st.integers(-5, 2**32),
    "min_disk": st.integers(-5, 2**32),
    "tags": st.lists(st.text(max_size=300), max_size=4),
    "os_distro": st.text(max_size=30),
    "owner": st.sampled_from(["alice", "bob", "x" * 300]),
}
bodies = st.dictionaries(field_names, st.one_of(json_values, *good_values.values()), max_size=6)
contexts = st.sampled_from([ALICE, BOB, ADMIN, ANONYMOUS])


@FUZZ
@given(body=bodies, context=contexts)
def test_random_create_bodies(client: Client, body: dict[str, Any], context: Any) -> None:
    response = client.request("POST", "/v2/images", context, json_body=body)
    assert response.status_int in (201, 400, 403, 409, 413), response.text
    if response.status_int == 201:
        client.assert_valid(response.json)


patch_ops = st.lists(
    st.fixed_dictionaries(
        {"op": st.sampled_from(["add", "replace", "remove", "test", 5])},
        optional={
            "path": st.one_of(
                st.sampled_from(
                    [
                        *("/name", "/tags", "/min_ram", "/visibility", "/custom", "/status", "/a/b", "/"),
                        *("//", "/~2", "/locations/0"),
                    ]
                ),
                st.text(max_size=10),
            ),
            "value": st.one_of(json_values, *good_values.values()),
        },
    ),
    max_size=4,
)


@FUZZ
@given(ops=st.one_of(patch_ops, json_values), context=contexts)
def test_random_patches(client: Client, ops: Any, context: Any) -> None:
    if not hasattr(client, "_fuzz_image"):
        client._fuzz_image = client.create(ALICE, visibility="community")["id"]  # type: ignore[attr-defined]
    image_id = client._fuzz_image  # type: ignore[attr-defined]
    response = client.request("PATCH", f"/v2/images/{image_id}", context, json_body=ops, content_type=PATCH_TYPE)
    assert response.status_int in (200, 400, 403, 404, 409, 413), response.text
    client.assert_valid(client.show(image_id, ADMIN).json)


path_segments = st.one_of(
    st.sampled_from(
        [
            *("v1", "v2", "images", "file", "detail", "actions", "deactivate", "schemas"),
            *("..", ".", "", "%2e%2e", "%2F", "%00", "versions"),
        ]
    ),
    st.uuids().map(str),
    st.text(max_size=12).map(lambda text: urllib.parse.quote(text, safe="")),
)


@FUZZ
@given(
    segments=st.lists(path_segments, max_size=6),
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "BREW"]),
    query=st.text(max_size=30),
    body=st.binary(max_size=64),
    context=contexts,
    headers=st.dictionaries(
        st.sampled_from(["Range", "Content-Type", "If-Range", "x-openstack-image-size"]),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
        max_size=3,
    ),
)
def test_random_requests(
    client: Client,
    segments: list[str],
    method: str,
    query: str,
    body: bytes,
    context: Any,
    headers: dict[str, str],
) -> None:
    path = "/" + "/".join(segments) + ("?" + urllib.parse.quote(query, safe="=&") if query else "")
    response = client.request(method, path, context, body=body, headers=headers)
    assert response.status_int < 500


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "POST"])
def test_every_image_route_with_traversal_ids(client: Client, method: str) -> None:
    for image_id in ("..", "%2e%2e", "%2e%2e%2f", "..%2f..%2f", ".%2e", "%252e%252e"):
        for suffix in ("", "/file", "/actions/deactivate"):
            response = client.request(method, f"/v2/images/{image_id}{suffix}", ADMIN, body=b"x")
            assert response.status_int in (404, 405, 415), (method, image_id, suffix, response.status)


def test_documents_round_trip_through_json(client: Client) -> None:
    image = client.create(name="ü \u2603", os_distro="\U0001f600")
    assert json.loads(client.show(image["id"]).body.decode("utf-8"))["os_distro"] == "\U0001f600"
