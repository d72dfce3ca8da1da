"""The cache management API: every route, its status codes and bodies, admin-only access."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from webob import Request, Response

from imagecache import ImageCache
from imagecache.cache import CacheError
from imagecache.config import ConfigError
from imagecache.http.context import ANONYMOUS, RequestContext, set_context
from imagecache.wsgi.cache_listing import RECORD_FIELDS
from imagecache.wsgi.cache_manage import CacheManageFilter, filter_factory
from imagecache.wsgi.image_source import ImageSource

from .fake_images import FakeImage, FakeImageService

ADMIN = RequestContext.admin(project_id="p-admin", auth_token="admin-token")
MEMBER = RequestContext(project_id="p-alice", roles=("member",), auth_token="alice-token")
UNKNOWN_ID = "3f6f8b0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
PREFIXES = ("/v1", "/v2")


def call(
    app: Any, method: str, path: str, context: RequestContext | None = ADMIN, headers: dict[str, str] | None = None
) -> Response:
    request = Request.blank(path, method=method, headers=headers or {})
    if context is not None:
        set_context(request.environ, context)
    return request.get_response(app)


def fill(cache: ImageCache, image: FakeImage) -> None:
    """Put an image straight into the cache, verified as a download would."""
    meta = image.metadata()
    assert cache.cache_image_iter(
        image.image_id,
        [image.data],
        meta["checksum"],
        os_hash_algo="sha512",
        os_hash_value=meta["os_hash_value"],
        size=meta["size"],
    )


def error_message(response: Response) -> str:
    assert response.content_type == "application/json"
    return str(response.json["error"]["message"])


# -- pass-through ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v2/images/{id}", "/v2/images/{id}/file", "/v2/cachex", "/v1/cache", "/versions"])
@pytest.mark.parametrize("context", [ADMIN, MEMBER], ids=["admin", "member"])
def test_other_requests_go_to_the_app_untouched(api, service, path: str, context: RequestContext) -> None:
    image = service.add(visibility="public")
    direct = call(service, "GET", path.format(id=image.image_id), context)
    through = call(api, "GET", path.format(id=image.image_id), context)
    assert (through.status_code, through.body) == (direct.status_code, direct.body)


# -- GET /v2/cache -------------------------------------------------------------------


def test_cache_state_empty(api) -> None:
    response = call(api, "GET", "/v2/cache")
    assert response.status_code == 200
    assert response.content_type == "application/json"
    assert response.json == {"cached_images": [], "queued_images": []}


def test_cache_state_lists_cached_records_and_queued_ids(api, cache, service) -> None:
    cached = service.add()
    fill(cache, cached)
    queued = service.add()
    cache.queue_image(queued.image_id)
    body = call(api, "GET", "/v2/cache").json
    assert body["queued_images"] == [queued.image_id]
    [entry] = body["cached_images"]
    assert tuple(entry) == RECORD_FIELDS  # Glance's fields, and whether it is pinned
    assert entry["pinned"] is False
    assert entry["image_id"] == cached.image_id
    assert entry["size"] == len(cached.data) and isinstance(entry["size"], int)
    assert entry["hits"] == 0 and isinstance(entry["hits"], int)
    # glanceclient turns both times into dates with datetime.fromtimestamp.
    assert all(isinstance(entry[key], int | float) and entry[key] > 0 for key in ("last_accessed", "last_modified"))


# -- PUT /v2/cache/{id} ----------------------------------------------------------------


def test_queue_accepts_and_the_image_gets_cached_promptly(api, cache, service, prefetcher) -> None:
    image = service.add()
    response = call(api, "PUT", f"/v2/cache/{image.image_id}")
    assert response.status_code == 202
    assert response.body == b""
    assert prefetcher.wait_idle(timeout=30)
    with open(cache.layout.path(image.image_id), "rb") as fh:
        assert fh.read() == image.data
    assert call(api, "GET", "/v2/cache").json["queued_images"] == []
    assert service.tokens_seen[-1] == "admin-token"  # fetched as the admin who asked


def test_ids_in_upper_case_mean_the_same_image(api, cache, service, prefetcher) -> None:
    image = service.add()
    assert call(api, "PUT", f"/v2/cache/{image.image_id.upper()}").status_code == 202
    assert prefetcher.wait_idle(timeout=30)
    assert cache.is_cached(image.image_id)
    assert call(api, "DELETE", f"/v2/cache/{image.image_id.upper()}").status_code == 204
    assert not cache.is_cached(image.image_id)


def test_queue_of_an_unknown_image_is_404(api, cache) -> None:
    response = call(api, "PUT", f"/v2/cache/{UNKNOWN_ID}")
    assert response.status_code == 404
    assert cache.get_queued_images() == []


def test_queue_of_an_image_the_caller_cannot_see_passes_on_the_apps_404(api, cache, service) -> None:
    service.admin_sees_all = False
    hidden = service.add(owner="p-other")
    response = call(api, "PUT", f"/v2/cache/{hidden.image_id}")
    assert response.status_code == 404
    assert hidden.image_id in response.json["message"]  # the app's own answer
    assert cache.get_queued_images() == []
    assert service.data_requests == []


@pytest.mark.parametrize("status", ["queued", "saving", "deactivated", "killed", "importing"])
def test_queue_of_an_image_that_is_not_active_is_400(api, cache, service, status: str) -> None:
    image = service.add(status=status)
    response = call(api, "PUT", f"/v2/cache/{image.image_id}")
    assert response.status_code == 400
    assert "active" in error_message(response)
    assert cache.get_queued_images() == []


def test_queue_of_a_cached_image_is_accepted_without_fetching(api, cache, service, prefetcher) -> None:
    image = service.add()
    fill(cache, image)
    assert call(api, "PUT", f"/v2/cache/{image.image_id}").status_code == 202
    assert prefetcher.wait_idle(timeout=30)
    assert service.data_requests == []
    assert cache.get_queued_images() == []


def test_a_prefetch_that_fails_verification_stays_queued_in_invalid(api, cache, service, prefetcher) -> None:
    image = service.add()
    image.served = image.data[:-1] + b"\0"
    assert call(api, "PUT", f"/v2/cache/{image.image_id}").status_code == 202
    assert prefetcher.wait_idle(timeout=30)
    assert not cache.is_cached(image.image_id)
    assert call(api, "GET", "/v2/cache").json == {"cached_images": [], "queued_images": [image.image_id]}
    assert os.listdir(cache.layout.invalid_dir) == [image.image_id]


def test_queue_when_the_app_answers_gibberish_is_502(cache, prefetcher) -> None:
    def broken(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"<html>"]

    api = CacheManageFilter(broken, cache, ImageSource(broken), prefetcher)
    assert call(api, "PUT", f"/v2/cache/{UNKNOWN_ID}").status_code == 502


# -- DELETE /v2/cache/{id} -------------------------------------------------------------


def test_delete_entry_removes_it_from_cache_and_queue(api, cache, service) -> None:
    image = service.add()
    fill(cache, image)
    cache.driver.queue(image.image_id)  # both at once, as Glance allows
    response = call(api, "DELETE", f"/v2/cache/{image.image_id}")
    assert response.status_code == 204
    assert response.body == b""
    assert not cache.is_cached(image.image_id)
    assert cache.get_queued_images() == []


def test_delete_entry_of_a_queued_image(api, cache, service) -> None:
    image = service.add()
    cache.queue_image(image.image_id)
    assert call(api, "DELETE", f"/v2/cache/{image.image_id}").status_code == 204
    assert cache.get_queued_images() == []


def test_delete_entry_of_a_known_image_not_in_the_cache_is_204(api, service) -> None:
    assert call(api, "DELETE", f"/v2/cache/{service.add().image_id}").status_code == 204


def test_delete_entry_of_an_image_gone_from_the_app_but_cached_is_204(api, cache, service) -> None:
    image = service.add()
    fill(cache, image)
    del service.images[image.image_id]
    assert call(api, "DELETE", f"/v2/cache/{image.image_id}").status_code == 204
    assert not cache.is_cached(image.image_id)


def test_delete_entry_of_an_unknown_image_is_404(api) -> None:
    assert call(api, "DELETE", f"/v2/cache/{UNKNOWN_ID}").status_code == 404


# -- DELETE /v2/cache ------------------------------------------------------------------


@pytest.fixture
def one_of_each(cache: ImageCache, service: FakeImageService) -> tuple[str, str]:
    cached, queued = service.add(), service.add()
    fill(cache, cached)
    cache.queue_image(queued.image_id)
    return cached.image_id, queued.image_id


@pytest.mark.parametrize(
    ("headers", "cache_left", "queue_left"),
    [
        pytest.param({}, False, False, id="no-header"),
        pytest.param({"x-image-cache-clear-target": ""}, False, False, id="empty"),
        pytest.param({"x-image-cache-clear-target": "both"}, False, False, id="both"),
        pytest.param({"x-image-cache-clear-target": "cache"}, False, True, id="cache"),
        pytest.param({"x-image-cache-clear-target": "queue"}, True, False, id="queue"),
        pytest.param({"X-Image-Cache-Clear-Target": "Cache"}, False, True, id="any-case"),
    ],
)
def test_clear(api, cache, one_of_each, headers: dict[str, str], cache_left: bool, queue_left: bool) -> None:
    cached_id, queued_id = one_of_each
    response = call(api, "DELETE", "/v2/cache", headers=headers)
    assert response.status_code == 204
    assert response.body == b""
    assert cache.is_cached(cached_id) is cache_left
    assert (cache.get_queued_images() == [queued_id]) is queue_left


@pytest.mark.parametrize("target", ["garbage", "all", "cache,queue", "nothing"])
def test_clear_with_an_unknown_target_is_400_and_removes_nothing(api, cache, one_of_each, target: str) -> None:
    cached_id, queued_id = one_of_each
    response = call(api, "DELETE", "/v2/cache", headers={"x-image-cache-clear-target": target})
    assert response.status_code == 400
    assert "x-image-cache-clear-target" in error_message(response)
    assert cache.is_cached(cached_id)
    assert cache.get_queued_images() == [queued_id]


# -- POST /v2/cache/clean, /v2/cache/prune ------------------------------------------------


def test_clean_reports_what_it_removed(api, cache, service, prefetcher) -> None:
    bad = service.add()
    bad.served = b"not it"
    assert prefetcher.fetch_image_into_cache(bad.image_id) is False  # leaves invalid/<id>
    stalled = cache.layout.incomplete_path(UNKNOWN_ID)
    with open(stalled, "wb") as fh:
        fh.write(b"half an image")
    long_ago = time.time() - cache.settings.image_cache_stall_time - 60
    os.utime(stalled, (long_ago, long_ago))
    response = call(api, "POST", "/v2/cache/clean")
    assert response.status_code == 200
    assert response.json == {"invalid_removed": 1, "stalled_removed": 1}
    assert os.listdir(cache.layout.invalid_dir) == os.listdir(cache.layout.incomplete_dir) == []
    assert call(api, "POST", "/v2/cache/clean").json == {"invalid_removed": 0, "stalled_removed": 0}


def test_prune_reports_files_and_bytes(cache, service, prefetcher, tmp_path) -> None:
    images = [service.add(bytes([n]) * 100_000) for n in range(3)]
    for image in images:
        fill(cache, image)
    # The operator lowered the limit: a cache over the same directory that allows less.
    smaller = ImageCache(cache.settings.replace(image_cache_max_size=150_000))
    api = CacheManageFilter(service, smaller, ImageSource(service), prefetcher)
    response = call(api, "POST", "/v2/cache/prune")
    assert response.status_code == 200
    assert response.json == {"total_files_pruned": 2, "total_bytes_pruned": 200_000}
    assert call(api, "POST", "/v2/cache/prune").json == {"total_files_pruned": 0, "total_bytes_pruned": 0}
    smaller.close()


# -- GET /v2/cache/nodes/{id} ---------------------------------------------------------------


def test_nodes_without_a_central_index_is_409(api, service) -> None:
    response = call(api, "GET", f"/v2/cache/nodes/{service.add().image_id}")
    assert response.status_code == 409
    assert "Centralized" in error_message(response)


# -- legacy routes -------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_legacy_list_cached(api, cache, service, prefix: str) -> None:
    assert call(api, "GET", f"{prefix}/cached_images").json == {"cached_images": []}
    image = service.add()
    fill(cache, image)
    response = call(api, "GET", f"{prefix}/cached_images")
    assert response.status_code == 200
    [entry] = response.json["cached_images"]
    assert tuple(entry) == RECORD_FIELDS and entry["image_id"] == image.image_id


@pytest.mark.parametrize("prefix", PREFIXES)
def test_legacy_delete_all_cached(api, cache, service, prefix: str) -> None:
    for _ in range(2):
        fill(cache, service.add())
    response = call(api, "DELETE", f"{prefix}/cached_images")
    assert (response.status_code, response.json) == (200, {"num_deleted": 2})
    assert cache.get_cached_images() == []
    assert call(api, "DELETE", f"{prefix}/cached_images").json == {"num_deleted": 0}


@pytest.mark.parametrize("prefix", PREFIXES)
def test_legacy_delete_cached(api, cache, service, prefix: str) -> None:
    image = service.add()
    fill(cache, image)
    response = call(api, "DELETE", f"{prefix}/cached_images/{image.image_id}")
    assert (response.status_code, response.content_type, response.body) == (200, "application/json", b"null")
    assert not cache.is_cached(image.image_id)
    # Glance's old controller did not look: deleting what is not there is fine too.
    assert call(api, "DELETE", f"{prefix}/cached_images/{UNKNOWN_ID}").status_code == 200


@pytest.mark.parametrize("prefix", PREFIXES)
def test_legacy_queue_list_and_delete(api, cache, prefix: str) -> None:
    response = call(api, "PUT", f"{prefix}/queued_images/{UNKNOWN_ID}")
    assert (response.status_code, response.body) == (200, b"null")  # queued unchecked, as Glance did
    response = call(api, "GET", f"{prefix}/queued_images")
    assert (response.status_code, response.json) == (200, {"queued_images": [UNKNOWN_ID]})
    response = call(api, "DELETE", f"{prefix}/queued_images/{UNKNOWN_ID}")
    assert (response.status_code, response.body) == (200, b"null")
    assert call(api, "GET", f"{prefix}/queued_images").json == {"queued_images": []}


@pytest.mark.parametrize("prefix", PREFIXES)
def test_legacy_delete_all_queued(api, cache, service, prefix: str) -> None:
    for _ in range(3):
        cache.queue_image(service.add().image_id)
    response = call(api, "DELETE", f"{prefix}/queued_images")
    assert (response.status_code, response.json) == (200, {"num_deleted": 3})
    assert cache.get_queued_images() == []


@pytest.mark.parametrize("prefix", PREFIXES)
def test_legacy_queue_caches_the_image_at_once(api, cache, service, prefetcher, prefix: str) -> None:
    image = service.add()
    assert call(api, "PUT", f"{prefix}/queued_images/{image.image_id}").status_int == 200
    assert prefetcher.wait_idle(timeout=30)
    assert cache.is_cached(image.image_id)
    assert cache.get_queued_images() == []
    assert len(service.data_requests) == 1


def test_legacy_queue_of_an_unknown_image_stays_queued_for_the_next_run(api, cache, service, prefetcher) -> None:
    missing = "3f0e7f40-5c1a-4d7e-9a51-0c8a2f6e8b11"
    assert call(api, "PUT", f"/v1/queued_images/{missing}").status_int == 200  # unchecked, as Glance did
    assert prefetcher.wait_idle(timeout=30)
    assert cache.get_queued_images() == [missing]
    assert prefetcher.run() == (0, 1)


# -- access, methods, ids ----------------------------------------------------------------------

EVERY_ROUTE = [
    ("GET", "/v2/cache"),
    ("DELETE", "/v2/cache"),
    ("PUT", "/v2/cache/{id}"),
    ("DELETE", "/v2/cache/{id}"),
    ("POST", "/v2/cache/clean"),
    ("POST", "/v2/cache/prune"),
    ("GET", "/v2/cache/nodes"),
    ("GET", "/v2/cache/nodes/{id}"),
    ("GET", "/v2/cache/pins"),
    ("PUT", "/v2/cache/{id}/pin"),
    ("DELETE", "/v2/cache/{id}/pin"),
    *(
        (method, f"{prefix}/{path}")
        for prefix in PREFIXES
        for method, path in (
            ("GET", "cached_images"),
            ("DELETE", "cached_images"),
            ("DELETE", "cached_images/{id}"),
            ("GET", "queued_images"),
            ("DELETE", "queued_images"),
            ("PUT", "queued_images/{id}"),
            ("DELETE", "queued_images/{id}"),
        )
    ),
]


@pytest.mark.parametrize(("method", "path"), EVERY_ROUTE)
@pytest.mark.parametrize("context", [MEMBER, ANONYMOUS, None], ids=["member", "anonymous", "no-context"])
def test_every_route_is_for_admins_only(api, cache, service, one_of_each, method: str, path: str, context) -> None:
    cached_id, queued_id = one_of_each
    response = call(api, method, path.format(id=cached_id), context)
    assert response.status_code == 403
    assert "not permitted" in error_message(response)
    assert service.tokens_seen == []  # refused before asking the app anything
    assert cache.is_cached(cached_id)
    assert cache.get_queued_images() == [queued_id]


@pytest.mark.parametrize(("method", "path"), EVERY_ROUTE)
def test_every_route_answers_an_admin(api, service, method: str, path: str) -> None:
    response = call(api, method, path.format(id=service.add().image_id))
    if (method, path) == ("DELETE", "/v2/cache/{id}/pin"):
        assert response.status_code == 404  # the image was never pinned
    else:
        assert response.status_code in (200, 202, 204, 409)  # 409: nodes without a central index


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", "/v2/cache", "GET, DELETE"),
        ("GET", f"/v2/cache/{UNKNOWN_ID}", "PUT, DELETE"),
        ("GET", "/v2/cache/clean", "POST"),
        ("PUT", "/v2/cache/prune", "POST"),
        ("DELETE", f"/v2/cache/nodes/{UNKNOWN_ID}", "GET"),
        ("POST", "/v2/cache/nodes", "GET"),
        ("PUT", "/v2/cache/pins", "GET"),
        ("GET", f"/v2/cache/{UNKNOWN_ID}/pin", "PUT, DELETE"),
        ("PUT", "/v1/cached_images", "GET, DELETE"),
        ("PUT", f"/v2/cached_images/{UNKNOWN_ID}", "DELETE"),
        ("POST", "/v1/queued_images", "GET, DELETE"),
        ("GET", f"/v2/queued_images/{UNKNOWN_ID}", "PUT, DELETE"),
        ("HEAD", "/v2/cache", "GET, DELETE"),
    ],
)
@pytest.mark.parametrize("context", [ADMIN, MEMBER], ids=["admin", "member"])
def test_a_wrong_method_is_405_with_allow(api, method: str, path: str, allow: str, context) -> None:
    response = call(api, method, path, context)
    assert response.status_code == 405
    assert response.headers["Allow"] == allow


@pytest.mark.parametrize(
    "raw",
    [
        "not-a-uuid",
        "..",
        "%2e%2e",
        "%252e%252e%252fetc",
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "{3f6f8b0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b}",
        "3f6f8b0e1c2d4e5f8a9b0c1d2e3f4a5b",
        "3f6f8b0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b%00",
        "3f6f8b0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b.tmp",
        "%C3%A9",
        "x" * 500,
    ],
)
@pytest.mark.parametrize(
    ("method", "template"),
    [
        ("PUT", "/v2/cache/{}"),
        ("DELETE", "/v2/cache/{}"),
        ("GET", "/v2/cache/nodes/{}"),
        ("PUT", "/v2/cache/{}/pin"),
        ("DELETE", "/v2/cache/{}/pin"),
        ("DELETE", "/v1/cached_images/{}"),
        ("PUT", "/v2/queued_images/{}"),
        ("DELETE", "/v1/queued_images/{}"),
    ],
)
def test_bad_ids_are_4xx_and_touch_nothing(api, cache, service, tmp_path, method: str, template: str, raw: str) -> None:
    before = sorted(os.listdir(tmp_path))
    response = call(api, method, template.format(raw))
    # PATH_INFO arrives decoded: an id with a slash in it is a path no route has.
    assert response.status_code == (404 if "/" in unquote(raw) else 400)
    assert error_message(response)
    assert cache.get_queued_images() == []
    assert sorted(os.listdir(tmp_path)) == before
    assert service.data_requests == []


@pytest.mark.parametrize(
    "path", ["/v2/cache/", f"/v2/cache/{UNKNOWN_ID}/file", "/v1/cached_images/a/b", "/v2/queued_images/"]
)
def test_unknown_paths_in_the_api_are_404_not_passed_on(api, service, path: str) -> None:
    response = call(api, "GET", path)
    assert response.status_code == 404
    assert error_message(response)
    assert service.tokens_seen == []


def test_a_cache_failure_is_a_clean_json_500(api, cache, monkeypatch) -> None:
    def broken() -> list[Any]:
        raise CacheError("the index is gone")

    monkeypatch.setattr(cache, "get_queued_images", broken)
    response = call(api, "GET", "/v2/cache")
    assert response.status_code == 500
    assert "the index is gone" in error_message(response)


def test_an_index_failing_its_listing_query_is_a_clean_json_500(api, cache, monkeypatch) -> None:
    def broken() -> Iterator[Any]:  # a failing index cannot be made here: its query fails at the first row
        raise CacheError("the index is gone")
        yield

    monkeypatch.setattr(cache.driver, "listing_rows", broken)
    for path in ("/v2/cache", "/v2/cached_images"):  # the query runs before the answer starts
        response = call(api, "GET", path)
        assert response.status_code == 500
        assert "the index is gone" in error_message(response)


def test_a_listing_abandoned_midway_ends_its_query(api, cache, monkeypatch) -> None:
    ended = []

    def rows() -> Iterator[Any]:
        try:
            for i in range(100_000):
                yield (f"id-{i}", 0, 1.0, 1.0, 8)
        finally:
            ended.append(True)

    monkeypatch.setattr(cache.driver, "listing_rows", rows)
    request = Request.blank("/v2/cache")
    set_context(request.environ, ADMIN)
    body = api(request.environ, lambda status, headers, exc_info=None: None)
    assert next(iter(body)).startswith(b'{"cached_images": [') and not ended
    body.close()  # the client went away
    assert ended == [True]


# -- paste.deploy -------------------------------------------------------------------------


def test_filter_factory_builds_a_working_filter_from_string_options(tmp_path, service) -> None:
    make = filter_factory(
        {"here": str(tmp_path)},
        image_cache_dir=str(tmp_path / "c"),
        image_cache_max_size="1048576",
        image_cache_driver="sqlite",
    )
    api = make(service)
    assert isinstance(api, CacheManageFilter)
    assert api.cache.settings.image_cache_max_size == 1048576
    assert api.cache.settings.image_cache_dir == str(tmp_path / "c")
    image = service.add()
    assert call(api, "PUT", f"/v2/cache/{image.image_id}").status_code == 202
    assert api.prefetcher.wait_idle(timeout=30)
    assert call(api, "GET", "/v2/cache").json["cached_images"][0]["image_id"] == image.image_id
    api.cache.close()


def test_filter_factory_refuses_unknown_options(tmp_path) -> None:
    with pytest.raises(ConfigError, match="image_cache_max_sise"):
        filter_factory({}, image_cache_dir=str(tmp_path), image_cache_max_sise="1")


def test_a_paste_pipeline(tmp_path) -> None:
    loadapp = pytest.importorskip("paste.deploy").loadapp
    ini = tmp_path / "paste.ini"
    ini.write_text(
        "[pipeline:main]\n"
        "pipeline = cachemanage images\n"
        "[filter:cachemanage]\n"
        "paste.filter_factory = imagecache.wsgi.cache_manage:filter_factory\n"
        f"image_cache_dir = {tmp_path / 'cache'}\n"
        "image_cache_max_size = 2097152\n"
        "image_cache_driver = sqlite\n"
        "[app:images]\n"
        "paste.app_factory = tests.unit.wsgi.fake_images:app_factory\n"
    )
    app = loadapp(f"config:{ini}")
    assert isinstance(app, CacheManageFilter)
    assert call(app, "GET", "/v2/cache").json == {"cached_images": [], "queued_images": []}
    assert json.loads(call(app, "GET", f"/v2/images/{UNKNOWN_ID}").body)["message"]
    app.cache.close()


def test_glanceclient_prints_our_cache_list(api, cache, service, capsys) -> None:
    """``glance cache-list`` formats the body itself: our fields and types must suit it."""
    utils = pytest.importorskip("glanceclient.common.utils")
    cached, queued = service.add(), service.add()
    fill(cache, cached)
    cache.queue_image(queued.image_id)
    utils.print_cached_images(call(api, "GET", "/v2/cache").json)
    out = capsys.readouterr().out
    assert cached.image_id in out and queued.image_id in out
    assert str(len(cached.data)) in out
