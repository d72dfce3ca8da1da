"""Route matching of the cache management API: every route, and random paths."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from imagecache.wsgi import cache_routes
from imagecache.wsgi.cache_routes import Matched, Route, Unrouted, WrongMethod

ID = "0f8c4d3e-5a1b-4c2d-9e8f-7a6b5c4d3e2f"
METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS")

# The oracle: the API as the documentation states it, written independently of the table.
V2 = [
    ("GET", r"/v2/cache", Route.CACHE_STATE),
    ("DELETE", r"/v2/cache", Route.CACHE_CLEAR),
    ("POST", r"/v2/cache/clean", Route.CACHE_CLEAN),
    ("POST", r"/v2/cache/prune", Route.CACHE_PRUNE),
    ("GET", r"/v2/cache/nodes", Route.CACHE_FLEET),
    ("GET", r"/v2/cache/nodes/(?P<id>[^/]+)", Route.CACHE_NODES),
    ("GET", r"/v2/cache/pins", Route.CACHE_PINS),
    ("PUT", r"/v2/cache/(?!clean\Z|prune\Z|nodes\Z|pins\Z)(?P<id>[^/]+)", Route.CACHE_QUEUE),
    ("DELETE", r"/v2/cache/(?!clean\Z|prune\Z|nodes\Z|pins\Z)(?P<id>[^/]+)", Route.CACHE_DELETE),
    # /v2/cache/nodes/pin is a node listing's path (GET only), never a pin.
    ("PUT", r"/v2/cache/(?!nodes/)(?P<id>[^/]+)/pin", Route.CACHE_PIN),
    ("DELETE", r"/v2/cache/(?!nodes/)(?P<id>[^/]+)/pin", Route.CACHE_UNPIN),
]
LEGACY = [
    ("GET", r"/{p}/cached_images", Route.LIST_CACHED),
    ("DELETE", r"/{p}/cached_images", Route.DELETE_ALL_CACHED),
    ("DELETE", r"/{p}/cached_images/(?P<id>[^/]+)", Route.DELETE_CACHED),
    ("GET", r"/{p}/queued_images", Route.LIST_QUEUED),
    ("DELETE", r"/{p}/queued_images", Route.DELETE_ALL_QUEUED),
    ("PUT", r"/{p}/queued_images/(?P<id>[^/]+)", Route.QUEUE),
    ("DELETE", r"/{p}/queued_images/(?P<id>[^/]+)", Route.DELETE_QUEUED),
]
ORACLE = [(m, re.compile(r"\A" + pattern + r"\Z"), route) for m, pattern, route in V2] + [
    (m, re.compile(r"\A" + pattern.format(p=prefix) + r"\Z"), route)
    for prefix in ("v1", "v2")
    for m, pattern, route in LEGACY
]
NAMESPACE = re.compile(r"\A/(v2/cache|v[12]/cached_images|v[12]/queued_images)(/|\Z)")


def oracle(method: str, path: str) -> tuple[Route, str | None] | None:
    for route_method, pattern, route in ORACLE:
        found = pattern.match(path)
        if found and route_method == method:
            return route, found.groupdict().get("id")
    return None


def oracle_allowed(path: str) -> set[str]:
    return {m for m, pattern, _ in ORACLE if pattern.match(path)}


# -- every route, by name ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "route", "image_id"),
    [
        ("GET", "/v2/cache", Route.CACHE_STATE, None),
        ("DELETE", "/v2/cache", Route.CACHE_CLEAR, None),
        ("PUT", f"/v2/cache/{ID}", Route.CACHE_QUEUE, ID),
        ("DELETE", f"/v2/cache/{ID}", Route.CACHE_DELETE, ID),
        ("POST", "/v2/cache/clean", Route.CACHE_CLEAN, None),
        ("POST", "/v2/cache/prune", Route.CACHE_PRUNE, None),
        ("GET", "/v2/cache/nodes", Route.CACHE_FLEET, None),
        ("GET", f"/v2/cache/nodes/{ID}", Route.CACHE_NODES, ID),
        ("GET", "/v2/cache/pins", Route.CACHE_PINS, None),
        ("PUT", f"/v2/cache/{ID}/pin", Route.CACHE_PIN, ID),
        ("DELETE", f"/v2/cache/{ID}/pin", Route.CACHE_UNPIN, ID),
        *(
            row
            for p in ("v1", "v2")
            for row in (
                ("GET", f"/{p}/cached_images", Route.LIST_CACHED, None),
                ("DELETE", f"/{p}/cached_images", Route.DELETE_ALL_CACHED, None),
                ("DELETE", f"/{p}/cached_images/{ID}", Route.DELETE_CACHED, ID),
                ("GET", f"/{p}/queued_images", Route.LIST_QUEUED, None),
                ("DELETE", f"/{p}/queued_images", Route.DELETE_ALL_QUEUED, None),
                ("PUT", f"/{p}/queued_images/{ID}", Route.QUEUE, ID),
                ("DELETE", f"/{p}/queued_images/{ID}", Route.DELETE_QUEUED, ID),
            )
        ),
    ],
)
def test_each_route(method: str, path: str, route: Route, image_id: str | None) -> None:
    assert cache_routes.match(method, path) == Matched(route, image_id)


def test_every_route_is_reachable() -> None:
    reachable = {route for _, methods in cache_routes.TABLE for route in methods.values()}
    assert reachable == set(Route)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/v2/cache", ("GET", "DELETE")),
        ("PUT", "/v2/cache", ("GET", "DELETE")),
        ("HEAD", "/v2/cache", ("GET", "DELETE")),
        ("GET", f"/v2/cache/{ID}", ("PUT", "DELETE")),
        ("POST", f"/v2/cache/{ID}", ("PUT", "DELETE")),
        ("GET", "/v2/cache/clean", ("POST",)),
        ("DELETE", "/v2/cache/prune", ("POST",)),
        ("DELETE", f"/v2/cache/nodes/{ID}", ("GET",)),
        # A literal segment, as clean and prune: never an id to queue or delete.
        ("PUT", "/v2/cache/nodes", ("GET",)),
        ("DELETE", "/v2/cache/nodes", ("GET",)),
        ("PUT", "/v2/cache/pins", ("GET",)),
        ("DELETE", "/v2/cache/pins", ("GET",)),
        ("GET", f"/v2/cache/{ID}/pin", ("PUT", "DELETE")),
        ("PUT", "/v2/cache/nodes/pin", ("GET",)),
        ("PUT", "/v1/cached_images", ("GET", "DELETE")),
        ("GET", f"/v1/cached_images/{ID}", ("DELETE",)),
        ("POST", "/v2/queued_images", ("GET", "DELETE")),
        ("GET", f"/v2/queued_images/{ID}", ("PUT", "DELETE")),
    ],
)
def test_wrong_method_names_the_allowed_ones(method: str, path: str, allowed: tuple[str, ...]) -> None:
    assert cache_routes.match(method, path) == WrongMethod(allowed)


@pytest.mark.parametrize(
    "path",
    [
        "/v2/cache/",
        "/v2/cache//",
        f"/v2/cache/{ID}/",
        f"/v2/cache/{ID}/extra",
        "/v2/cache/../../etc/passwd",  # what %2e%2e%2f decodes to
        "/v2/cache/nodes/",
        "/v1/cached_images/",
        f"/v1/queued_images/{ID}/x",
        "/v2/cached_images/a/b",
    ],
)
def test_unknown_paths_inside_the_namespace_are_ours(path: str) -> None:
    assert cache_routes.match("GET", path) == Unrouted()


@pytest.mark.parametrize(
    "path",
    [
        "",
        "v2/cache",
        "/",
        "/v2",
        "/v2/images",
        f"/v2/images/{ID}/file",
        "/v2/cachex",
        "/v2/caches",
        "/V2/cache",
        "/v2//cache",
        "/v3/cached_images",
        "/v1/cache",
        "/v1/images/cached_images",
        "/cached_images",
    ],
)
def test_other_paths_pass_through(path: str) -> None:
    for method in METHODS:
        assert cache_routes.match(method, path) is None


def test_ids_are_captured_raw_for_the_caller_to_validate() -> None:
    assert cache_routes.match("PUT", "/v2/cache/..") == Matched(Route.CACHE_QUEUE, "..")
    assert cache_routes.match("DELETE", "/v1/cached_images/%2e%2e") == Matched(Route.DELETE_CACHED, "%2e%2e")
    assert cache_routes.match("PUT", "/v2/cache/{id}") == Matched(Route.CACHE_QUEUE, "{id}")


# -- random paths --------------------------------------------------------------------

SEGMENTS = st.one_of(
    st.sampled_from(
        ["v1", "v2", "cache", "cached_images", "queued_images", "clean", "prune", "nodes", "pins", "pin", ID, "",
         "..", "."]
    ),
    st.text(alphabet=st.characters(codec="latin-1"), max_size=12),
)
PATHS = st.one_of(
    st.lists(SEGMENTS, max_size=6).map(lambda parts: "/" + "/".join(parts)),
    st.text(alphabet=st.characters(codec="latin-1"), max_size=40),
)


@settings(max_examples=3000)
@given(method=st.one_of(st.sampled_from(METHODS), st.text(max_size=8)), path=PATHS)
@example(method="GET", path="/v2/cache")
@example(method="PUT", path="/v2/cache/clean")
@example(method="DELETE", path="/v2/cache/nodes")
@example(method="PUT", path="/v2/cache/nodes/pin")
@example(method="DELETE", path=f"/v2/cache/{ID}/pin")
def test_random_requests_match_only_the_listed_routes(method: str, path: str) -> None:
    result = cache_routes.match(method, path)
    expected = oracle(method, path)
    if expected is not None:
        assert result == Matched(*expected)
    elif not NAMESPACE.match(path):
        assert result is None
    elif oracle_allowed(path):
        assert isinstance(result, WrongMethod)
        assert set(result.allowed) == oracle_allowed(path)
        assert method not in result.allowed
    else:
        assert result == Unrouted()


@given(path=st.text(max_size=60), method=st.text(max_size=10))
def test_never_raises_on_any_text(path: str, method: str) -> None:
    result = cache_routes.match(method, path)
    assert result is None or isinstance(result, Matched | WrongMethod | Unrouted)
