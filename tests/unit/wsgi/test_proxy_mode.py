"""The cache filter in front of an upstream: what it does when the upstream is down or decides."""

from __future__ import annotations

import json
from collections.abc import Iterable

import pytest
import webob

from imagecache import ImageCache, Settings
from imagecache.http.context import RequestContext, get_context, set_context
from imagecache.wsgi.auth import AuthMiddleware, TokenIdentity, TokenTable
from imagecache.wsgi.cache_filter import CacheFilter
from imagecache.wsgi.image_source import UPSTREAM_ERROR_HEADER, ImageSource
from tests.support.waiting import wait_until

from .fake_images import FakeImageService


class FlakyUpstream:
    """The fake image service, or, while ``down``, the proxy's own 502 for an unreachable upstream."""

    def __init__(self, service: FakeImageService) -> None:
        self.service = service
        self.down = False

    def __call__(self, environ, start_response) -> Iterable[bytes]:
        if self.down:
            body = json.dumps({"error": {"code": 502, "message": "upstream unreachable"}}).encode()
            headers = [("Content-Type", "application/json"), (UPSTREAM_ERROR_HEADER, "unreachable")]
            start_response("502 Bad Gateway", headers)
            return [body]
        return self.service(environ, start_response)


def build(tmp_path, *, serve_stale: bool = False, service_token: str | None = None):
    service = FakeImageService()
    upstream = FlakyUpstream(service)
    cache = ImageCache(Settings(data_dir=str(tmp_path / "d"), image_cache_min_free=0))
    app = CacheFilter(upstream, cache, ImageSource(upstream), proxy=True, serve_stale=serve_stale,
                      service_token=service_token)
    return app, upstream, service, cache


def get(app, path: str, context: RequestContext | None = None) -> webob.Response:
    request = webob.Request.blank(path)
    set_context(request.environ, context or RequestContext(project_id="p-admin", auth_token="t"))
    response = request.get_response(app)
    response.body  # noqa: B018 - read to the end, like a client
    return response


@pytest.mark.parametrize("serve_stale", [False, True])
def test_a_hit_while_the_upstream_is_down(tmp_path, serve_stale):
    app, upstream, service, cache = build(tmp_path, serve_stale=serve_stale)
    image = service.add()
    assert get(app, f"/v2/images/{image.image_id}/file").body == image.data
    wait_until(lambda: cache.is_cached(image.image_id), "the fill to publish")
    upstream.down = True
    answer = get(app, f"/v2/images/{image.image_id}/file")
    if serve_stale:
        assert answer.status_int == 200 and answer.body == image.data
        assert answer.headers["Cache-Status"] == "imagecache; hit; detail=stale"
    else:
        assert answer.status_int == 503 and "cannot be reached" in answer.json["error"]["message"]
        assert answer.headers["Retry-After"]
        assert "Cache-Status" not in answer.headers  # made up here, from no stored answer (RFC 9211)
    assert cache.is_cached(image.image_id)  # an unreachable upstream never evicts


def test_a_miss_while_the_upstream_is_down_is_its_502(tmp_path):
    app, upstream, service, _ = build(tmp_path, serve_stale=True)
    image = service.add()
    upstream.down = True
    answer = get(app, f"/v2/images/{image.image_id}/file")
    assert answer.status_int == 502 and answer.headers[UPSTREAM_ERROR_HEADER] == "unreachable"


def test_deactivated_images_are_left_to_the_upstream_even_for_local_admins(tmp_path):
    app, _, service, cache = build(tmp_path)
    image = service.add()
    get(app, f"/v2/images/{image.image_id}/file")
    wait_until(lambda: cache.is_cached(image.image_id), "the fill to publish")
    image.status = "deactivated"
    before = len(service.data_requests)
    get(app, f"/v2/images/{image.image_id}/file", RequestContext.admin(auth_token="t"))
    assert len(service.data_requests) == before + 1  # asked upstream, not served from the cache


def test_the_gone_probe_uses_the_service_token(tmp_path):
    app, _, service, cache = build(tmp_path, service_token="svc")
    image = service.add()
    get(app, f"/v2/images/{image.image_id}/file")
    wait_until(lambda: cache.is_cached(image.image_id), "the fill to publish")
    del service.images[image.image_id]  # deleted upstream, behind this node's back
    answer = get(app, f"/v2/images/{image.image_id}/file")
    assert answer.status_int == 404
    assert "svc" in service.tokens_seen
    assert not cache.is_cached(image.image_id)


def echo(environ, start_response):
    context = get_context(environ)
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"roles": list(context.roles), "token": context.auth_token}).encode()]


def test_unknown_tokens_go_on_as_non_admins_in_front_of_an_upstream():
    table = TokenTable({"local-admin": TokenIdentity("ops", ("admin",))})
    app = AuthMiddleware(echo, "tokens", table, forward_unknown=True)
    for token, expected in (("local-admin", ["admin"]), ("keystone-token", [])):
        request = webob.Request.blank("/v2/images", headers={"X-Auth-Token": token})
        answer = request.get_response(app)
        assert answer.status_int == 200 and answer.json == {"roles": expected, "token": token}
    assert webob.Request.blank("/v2/images").get_response(app).status_int == 401  # no token at all
    strict = AuthMiddleware(echo, "tokens", table)
    keystone = webob.Request.blank("/v2/images", headers={"X-Auth-Token": "keystone-token"})
    assert keystone.get_response(strict).status_int == 401


def test_a_change_through_one_worker_voids_every_workers_memo(tmp_path):
    """Two ImageSources stand for two gunicorn workers sharing one cache directory."""
    from imagecache.cache.layout import CacheLayout

    layout = CacheLayout(str(tmp_path / "cache"))
    layout.ensure()
    service = FakeImageService()
    image = service.add()
    first, second = (ImageSource(service, memo_ttl=60, changes=layout) for _ in range(2))
    environ = {"HTTP_X_AUTH_TOKEN": "t"}
    set_context(environ, RequestContext(project_id="p-admin", auth_token="t"))
    assert first.metadata(environ, image.image_id).image["status"] == "active"
    image.status = "deactivated"
    assert first.metadata(environ, image.image_id).image["status"] == "active"  # memoised
    second.forget(image.image_id)  # the deactivate went through the other worker
    assert first.metadata(environ, image.image_id).image["status"] == "deactivated"
    assert layout.forget_changes(older_than=float("inf")) == 1
