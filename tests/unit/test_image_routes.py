"""The cache filter's route matching: only well-formed image routes match."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagecache.wsgi.image_routes import Action, ImageRoute, match

ID = "1b2c3d4e-0000-4000-8000-00000000abcd"


@pytest.mark.parametrize(
    ("method", "path", "action"),
    [
        ("GET", f"/v2/images/{ID}/file", Action.DOWNLOAD_V2),
        ("GET", f"/v2/images/{ID}/file/", Action.DOWNLOAD_V2),
        ("GET", f"/v1/images/{ID}", Action.DOWNLOAD_V1),
        ("DELETE", f"/v2/images/{ID}", Action.DELETE),
        ("DELETE", f"/v1/images/{ID}", Action.DELETE),
        ("PATCH", f"/v2/images/{ID}", Action.CHANGE),
        ("POST", f"/v2/images/{ID}/actions/deactivate", Action.CHANGE),
        ("PUT", f"/v2/images/{ID}/file", Action.CHANGE),
        ("HEAD", f"/v1/images/{ID}", Action.HEAD),
        ("HEAD", f"/v2/images/{ID}/file", Action.HEAD),
    ],
)
def test_image_routes_match(method, path, action):
    assert match(method, path) == ImageRoute(action, ID)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/images/detail"),
        ("HEAD", f"/v2/images/{ID}"),
        ("GET", f"/v2/images/{ID}"),
        ("GET", "/v2/images"),
        ("GET", f"/v2/images/../{ID}/file"),
        ("GET", "/v2/images/../../etc/passwd/file"),
        ("GET", f"/v2/images/{ID}/../file"),
        ("GET", f"/v2/images/{ID}x/file"),
        ("GET", f"/v3/images/{ID}/file"),
        ("POST", "/v2/images"),
        ("DELETE", "/v2/cache"),
    ],
)
def test_other_requests_pass_through(method, path):
    assert match(method, path) is None


def test_ids_are_canonicalised():
    assert match("GET", f"/v2/images/{ID.upper()}/file") == ImageRoute(Action.DOWNLOAD_V2, ID)


@given(st.sampled_from(["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"]), st.text(max_size=120))
def test_any_path_either_passes_through_or_names_a_uuid(method, path):
    route = match(method, path)
    if route is not None:
        assert str(uuid.UUID(route.image_id)) == route.image_id
        assert f"/{route.image_id}" in path.lower()
