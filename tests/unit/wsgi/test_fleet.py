"""``GET /v2/cache/nodes``: the fleet view (pure, exhaustively) and the route that answers it.

The route's driver is a sqlite driver that also answers ``fleet()`` and says
it has nodes (what the central driver adds), so the route is tested without
PostgreSQL; the central driver's own query is tested with it
(tests/unit/central/test_cli_db.py, tests/functional/test_fleet.py).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from webob import Request, Response

from imagecache import ImageCache, Settings
from imagecache.cache import CacheError
from imagecache.cache.drivers.base import FleetEntry
from imagecache.cache.drivers.sqlite import SqliteDriver
from imagecache.cache.layout import CacheLayout
from imagecache.http.context import ANONYMOUS, RequestContext, set_context
from imagecache.jobs.prefetcher import Prefetcher
from imagecache.wsgi.cache_manage import CacheManageFilter
from imagecache.wsgi.fleet import fleet_view, node_view
from imagecache.wsgi.image_source import ImageSource

from .fake_images import FakeImageService

ADMIN = RequestContext.admin(project_id="p-admin", auth_token="admin-token")
MEMBER = RequestContext(project_id="p-alice", roles=("member",), auth_token="alice-token")
FIRST, SECOND = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"


def copy(image_id: str, url: str, site: str = "default", *, filling: bool = False, size: int | None = 100,
         nbytes: int | None = None, live: bool = True) -> FleetEntry:
    return FleetEntry(image_id, url, site, filling, size, nbytes if nbytes is not None else size or 0, live)


# -- the view: pure ------------------------------------------------------------------------

ENTRIES = st.lists(
    st.builds(
        FleetEntry,
        image_id=st.sampled_from([FIRST, SECOND, "33333333-3333-4333-8333-333333333333"]),
        url=st.sampled_from(["http://a:9292", "http://b:9292", "http://c:9292", "https://d"]),
        site=st.sampled_from(["default", "east", "west"]),
        filling=st.booleans(),
        size=st.none() | st.integers(0, 1 << 40),
        bytes=st.integers(0, 1 << 40),
        live=st.booleans(),
    ),
    max_size=20,
)


@given(entries=ENTRIES, site=st.sampled_from(["default", "east", "west", "nowhere"]))
def test_the_view_shows_every_copy_once_images_by_id_nodes_of_the_site_first(entries: list[FleetEntry],
                                                                               site: str) -> None:
    view = fleet_view(entries, site)
    ids = [image["image_id"] for image in view]
    assert ids == sorted(set(ids)) and set(ids) == {entry.image_id for entry in entries}
    shown = Counter((image["image_id"], tuple(node.items())) for image in view for node in image["nodes"])
    assert shown == Counter((entry.image_id, tuple(node_view(entry).items())) for entry in entries)
    for image in view:
        keys = [(node["site"] != site, node["url"]) for node in image["nodes"]]
        assert keys == sorted(keys) and image["nodes"]


@given(entries=ENTRIES)
def test_the_view_does_not_depend_on_the_order_the_index_answers_in(entries: list[FleetEntry]) -> None:
    assert fleet_view(entries, "east") == fleet_view(list(reversed(entries)), "east")


def test_a_copy_in_the_apis_words() -> None:
    assert node_view(copy(FIRST, "http://a:9292", "east", filling=True, size=None, nbytes=7, live=False)) == {
        "url": "http://a:9292", "site": "east", "state": "filling", "size": None, "bytes": 7, "live": False}
    assert node_view(copy(FIRST, "http://b:9292"))["state"] == "cached"


def test_a_node_with_its_file_and_a_fill_keeps_both_rows_the_file_first() -> None:
    view = fleet_view([copy(FIRST, "http://a:9292", filling=True, nbytes=1), copy(FIRST, "http://a:9292")], "x")
    assert [node["state"] for node in view[0]["nodes"]] == ["cached", "filling"]


# -- the route ---------------------------------------------------------------------------------


class FleetDriver(SqliteDriver):
    """sqlite, plus the central index's fleet (stands in for PostgreSQL in these unit tests)."""

    heartbeat_interval = 100.0  # an index with nodes

    def __init__(self, layout: CacheLayout) -> None:
        super().__init__(layout)
        self.entries: list[FleetEntry] = []
        self.asked = 0
        self.failure: CacheError | None = None

    def fleet(self) -> list[FleetEntry]:
        self.asked += 1
        if self.failure is not None:
            raise self.failure
        return list(self.entries)


def make_cache(tmp_path: Any, fleet: bool) -> ImageCache:
    cache = ImageCache(Settings(image_cache_dir=str(tmp_path / "cache"), node_site="west"))
    if fleet:
        cache.driver.close()
        cache.driver = FleetDriver(cache.layout)
        cache.driver.configure()
    return cache


@pytest.fixture
def cache(tmp_path: Any) -> Iterator[ImageCache]:
    cache = make_cache(tmp_path, fleet=True)
    yield cache
    cache.close()


def api_for(cache: ImageCache, service: FakeImageService) -> CacheManageFilter:
    source = ImageSource(service)
    return CacheManageFilter(service, cache, source, Prefetcher(cache, source, ADMIN))


@pytest.fixture
def api(cache: ImageCache, service: FakeImageService) -> CacheManageFilter:
    return api_for(cache, service)


def call(app: Any, path: str = "/v2/cache/nodes", context: RequestContext | None = ADMIN,
         method: str = "GET") -> Response:
    request = Request.blank(path, method=method)
    if context is not None:
        set_context(request.environ, context)
    return request.get_response(app)


def driver(cache: ImageCache) -> FleetDriver:
    assert isinstance(cache.driver, FleetDriver)
    return cache.driver


def test_every_image_with_its_nodes_this_nodes_site_first(api, cache, service) -> None:
    driver(cache).entries = [
        copy(SECOND, "http://a.east:9292", "east", size=50),
        copy(FIRST, "http://z.west:9292", "west", filling=True, size=300, nbytes=120),
        copy(FIRST, "http://a.east:9292", "east", size=300, live=False),
        copy(FIRST, "http://b.west:9292", "west", size=300),
    ]
    response = call(api)
    assert response.status_code == 200 and response.content_type == "application/json"
    assert response.json == {"images": [
        {"image_id": FIRST, "nodes": [
            {"url": "http://b.west:9292", "site": "west", "state": "cached", "size": 300, "bytes": 300, "live": True},
            {"url": "http://z.west:9292", "site": "west", "state": "filling", "size": 300, "bytes": 120,
             "live": True},
            {"url": "http://a.east:9292", "site": "east", "state": "cached", "size": 300, "bytes": 300,
             "live": False},
        ]},
        {"image_id": SECOND, "nodes": [
            {"url": "http://a.east:9292", "site": "east", "state": "cached", "size": 50, "bytes": 50, "live": True},
        ]},
    ]}
    assert service.tokens_seen == []  # the index answers; the image service is not asked


def test_a_fleet_with_nothing_in_it_is_an_empty_list(api) -> None:
    response = call(api)
    assert response.status_code == 200 and response.json == {"images": []}


def test_a_query_string_changes_nothing(api, cache) -> None:
    driver(cache).entries = [copy(FIRST, "http://a:9292")]
    assert call(api, "/v2/cache/nodes?image=x&limit=-1").json == call(api).json


def test_a_node_alone_is_409_as_for_one_image(tmp_path, service) -> None:
    alone = make_cache(tmp_path, fleet=False)
    try:
        api = api_for(alone, service)
        for path in ("/v2/cache/nodes", f"/v2/cache/nodes/{service.add().image_id}"):
            response = call(api, path)
            assert response.status_code == 409 and response.content_type == "application/json"
            assert response.json["error"]["message"] == "Centralized caching is not enabled."
    finally:
        alone.close()


@pytest.mark.parametrize("context", [MEMBER, ANONYMOUS, None], ids=["member", "anonymous", "no-context"])
def test_for_admins_only(api, cache, context) -> None:
    response = call(api, context=context)
    assert response.status_code == 403 and "not permitted" in response.json["error"]["message"]
    assert driver(cache).asked == 0


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "HEAD"])
def test_other_methods_are_405_with_allow(api, cache, method: str) -> None:
    response = call(api, method=method)
    assert response.status_code == 405 and response.headers["Allow"] == "GET"
    assert driver(cache).asked == 0


@pytest.mark.parametrize("path", ["/v2/cache/nodes/", "/v2/cache/nodes//", "/v2/cache/nodes/a/b"])
def test_near_misses_are_404s_of_the_api(api, cache, path: str) -> None:
    response = call(api, path)
    assert response.status_code == 404 and response.json["error"]["message"]
    assert driver(cache).asked == 0


def test_an_index_failure_is_a_clean_json_500(api, cache) -> None:
    driver(cache).failure = CacheError(f"the central index at db-{uuid.uuid4().hex[:4]} failed: gone")
    response = call(api)
    assert response.status_code == 500 and response.content_type == "application/json"
    assert response.json["error"]["message"].startswith("The image cache failed: the central index at")
