"""``GET /v2/cache/nodes/{id}`` from the route to the tools, without PostgreSQL.

The cache's driver is a sqlite driver that also answers ``cached_nodes``
(what the central driver adds), so the route, CacheClient and
``imagecache manage list-nodes`` are tested on their own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from click.testing import CliRunner
from webob import Request, Response

from imagecache import ImageCache, Settings
from imagecache.cache.drivers.sqlite import SqliteDriver
from imagecache.cache.layout import CacheLayout
from imagecache.cli import main
from imagecache.cli.manage_session import ManageSession
from imagecache.client import CacheClient, HTTPStatusError, InvalidResponse, NotFound
from imagecache.http.context import RequestContext, set_context
from imagecache.jobs.prefetcher import Prefetcher
from imagecache.wsgi.cache_manage import CacheManageFilter
from imagecache.wsgi.image_source import ImageSource
from tests.unit.wsgi.fake_images import FakeImageService

ADMIN = RequestContext.admin(project_id="p-admin", auth_token="admin-token")
MEMBER = RequestContext(project_id="p-alice", roles=("member",), auth_token="alice-token")
IMAGE_ID = "1b2c3d4e-0000-4000-8000-000000000001"


class NodesDriver(SqliteDriver):
    """sqlite, plus the one question only the central index answers."""

    def __init__(self, layout: CacheLayout) -> None:
        super().__init__(layout)
        self.nodes: dict[str, list[str]] = {}

    def cached_nodes(self, image_id: str) -> list[str]:
        return self.nodes.get(image_id, [])


@pytest.fixture
def cache(tmp_path) -> Iterator[ImageCache]:
    cache = ImageCache(Settings(image_cache_dir=str(tmp_path / "cache")))
    cache.driver.close()
    cache.driver = NodesDriver(cache.layout)
    cache.driver.configure()
    yield cache
    cache.close()


@pytest.fixture
def api(cache: ImageCache, service: FakeImageService) -> CacheManageFilter:
    return CacheManageFilter(service, cache, ImageSource(service), Prefetcher(cache, ImageSource(service), ADMIN))


def call(app: Any, path: str, context: RequestContext | None = ADMIN, method: str = "GET") -> Response:
    request = Request.blank(path, method=method)
    if context is not None:
        set_context(request.environ, context)
    return request.get_response(app)


# -- the route -------------------------------------------------------------------------------


def test_the_nodes_holding_a_known_image_as_a_json_list(api, cache, service) -> None:
    image = service.add()
    cache.driver.nodes = {image.image_id: ["http://a:9292", "http://b:9292"]}
    response = call(api, f"/v2/cache/nodes/{image.image_id}")
    assert response.status_code == 200 and response.content_type == "application/json"
    assert response.json == ["http://a:9292", "http://b:9292"]


def test_a_known_image_cached_nowhere_is_an_empty_list(api, service) -> None:
    assert call(api, f"/v2/cache/nodes/{service.add().image_id}").json == []


def test_an_image_the_service_does_not_know_is_404_even_if_indexed(api, cache) -> None:
    cache.driver.nodes = {IMAGE_ID: ["http://a:9292"]}  # a deleted image's rows, say
    assert call(api, f"/v2/cache/nodes/{IMAGE_ID}").status_code == 404


@pytest.mark.parametrize(
    ("path", "context", "method", "status"),
    [
        (f"/v2/cache/nodes/{IMAGE_ID}", MEMBER, "GET", 403),
        (f"/v2/cache/nodes/{IMAGE_ID}", ADMIN, "DELETE", 405),
        ("/v2/cache/nodes/not-a-uuid", ADMIN, "GET", 400),
    ],
)
def test_refusals(api, path: str, context: RequestContext, method: str, status: int) -> None:
    assert call(api, path, context, method).status_code == status


# -- CacheClient -------------------------------------------------------------------------------


class StubPool:
    def __init__(self, status: int, body: Any) -> None:
        self.status, self.body = status, body
        self.urls: list[str] = []

    def request(self, method: str, url: str, headers: dict[str, str]) -> urllib3.HTTPResponse:
        self.urls.append(url)
        return urllib3.HTTPResponse(body=json.dumps(self.body).encode(), status=self.status,
                                    headers={"Content-Type": "application/json"}, preload_content=True)

    def clear(self) -> None:
        pass


def stubbed(pool: StubPool, doc_root: str = "/v1") -> CacheClient:
    client = CacheClient("h", doc_root=doc_root, environ={})
    client._pool = pool  # type: ignore[assignment]
    return client


@pytest.mark.parametrize(("doc_root", "url"), [
    ("/v1", f"http://h:9292/v2/cache/nodes/{IMAGE_ID}"),
    ("/v2", f"http://h:9292/v2/cache/nodes/{IMAGE_ID}"),
    ("/image/v1", f"http://h:9292/image/v2/cache/nodes/{IMAGE_ID}"),
])
def test_client_asks_the_v2_route_whatever_the_doc_root(doc_root: str, url: str) -> None:
    pool = StubPool(200, ["http://a:9292"])
    assert stubbed(pool, doc_root).get_cached_nodes(IMAGE_ID) == ["http://a:9292"]
    assert pool.urls == [url]


def test_client_errors() -> None:
    with pytest.raises(HTTPStatusError) as conflict:
        stubbed(StubPool(409, {"error": {"message": "Centralized caching is not enabled."}})).get_cached_nodes(IMAGE_ID)
    assert conflict.value.status == 409 and "Centralized" in conflict.value.message
    with pytest.raises(NotFound):
        stubbed(StubPool(404, {"error": {"message": "no such image"}})).get_cached_nodes(IMAGE_ID)
    with pytest.raises(InvalidResponse):
        stubbed(StubPool(200, {"nodes": []})).get_cached_nodes(IMAGE_ID)


# -- imagecache manage list-nodes ---------------------------------------------------------------


class StubClient:
    def __init__(self, answer: list[str] | HTTPStatusError) -> None:
        self.answer = answer
        self.asked: list[str] = []

    def get_cached_nodes(self, image_id: str) -> list[str]:
        self.asked.append(image_id)
        if isinstance(self.answer, HTTPStatusError):
            raise self.answer
        return self.answer

    def close(self) -> None:
        pass


def manage(client: StubClient, *args: str):  # type: ignore[no-untyped-def]
    session = ManageSession(client_factory=lambda **options: client)  # type: ignore[arg-type, return-value]
    return CliRunner().invoke(main, ["manage", *args], obj=session, catch_exceptions=False)


def test_list_nodes_as_a_table_and_as_json() -> None:
    client = StubClient(["http://a:9292", "http://b:9292"])
    table = manage(client, "list-nodes", IMAGE_ID)
    assert table.exit_code == 0 and "Node reference URL" in table.stdout
    assert "http://a:9292" in table.stdout and "http://b:9292" in table.stdout
    as_json = manage(client, "list-nodes", IMAGE_ID, "--json")
    assert json.loads(as_json.stdout) == ["http://a:9292", "http://b:9292"]
    assert client.asked == [IMAGE_ID, IMAGE_ID]


def test_list_nodes_of_an_image_cached_nowhere() -> None:
    result = manage(StubClient([]), "list-nodes", IMAGE_ID)
    assert result.exit_code == 0 and "not cached on any live node" in result.stdout


def test_list_nodes_on_a_node_without_a_central_index_fails_in_one_line() -> None:
    result = manage(StubClient(HTTPStatusError("Centralized caching is not enabled.", 409)), "list-nodes", IMAGE_ID)
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: 409 Conflict: Centralized caching is not enabled."


def test_list_nodes_needs_an_id() -> None:
    assert manage(StubClient([]), "list-nodes").exit_code == 2
    assert manage(StubClient([]), "list-nodes", "").exit_code == 2
