"""An edge's cache API: 401 for a token the upstream rejects, 403 for a valid non-admin.

The upstream here is a small WSGI app standing in for Glance's token check
(the functional test in test_edge.py runs the real thing over HTTP).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from webob import Request, Response

from imagecache import ImageCache, Settings
from imagecache.http.context import RequestContext, set_context
from imagecache.jobs.prefetcher import Prefetcher
from imagecache.wsgi.cache_manage import CacheManageFilter
from imagecache.wsgi.image_source import UPSTREAM_ERROR_HEADER, ImageSource
from imagecache.wsgi.token_check import PROBE_PATH, UpstreamTokenCheck

from ..conftest import FakeClock

VALID = "valid-member-token"
REJECTED = "no-such-token"


class Upstream:
    """Answers 401 to REJECTED, 200 to other tokens, 502 (as the proxy does) when down."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []
        self.down = False

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        token = environ.get("HTTP_X_AUTH_TOKEN")
        self.calls.append((environ["PATH_INFO"] + "?" + environ.get("QUERY_STRING", ""), token))
        if self.down:
            response = Response(status=502, json_body={"error": "unreachable"})
            response.headers[UPSTREAM_ERROR_HEADER] = "connect"
        elif token == REJECTED:
            response = Response(status=401, json_body={"error": "bad token"})
        else:
            response = Response(json_body={"images": []})
        return response(environ, start_response)


def environ_of(token: str | None) -> dict[str, Any]:
    environ = Request.blank("/v2/cache").environ
    if token is not None:
        environ["HTTP_X_AUTH_TOKEN"] = token
    set_context(environ, RequestContext(auth_token=token))
    return environ


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


def test_the_verdict_follows_the_upstream(upstream: Upstream) -> None:
    check = UpstreamTokenCheck(ImageSource(upstream), ttl=5.0)
    assert check.rejects(environ_of(REJECTED)) is True
    assert check.rejects(environ_of(VALID)) is False
    assert check.rejects(environ_of(None)) is False
    assert upstream.calls == [(PROBE_PATH, REJECTED), (PROBE_PATH, VALID)]  # no token: nothing to ask


def test_verdicts_are_remembered_for_the_ttl_only(upstream: Upstream) -> None:
    clock = FakeClock()
    check = UpstreamTokenCheck(ImageSource(upstream), ttl=5.0, clock=clock)
    for _ in range(3):
        assert check.rejects(environ_of(REJECTED))
    assert len(upstream.calls) == 1
    clock.advance(5.0)
    assert check.rejects(environ_of(REJECTED))
    assert len(upstream.calls) == 2


def test_a_zero_ttl_asks_every_time(upstream: Upstream) -> None:
    check = UpstreamTokenCheck(ImageSource(upstream), ttl=0.0)
    for _ in range(3):
        check.rejects(environ_of(REJECTED))
    assert len(upstream.calls) == 3


def test_an_unreachable_upstream_is_no_verdict_and_is_not_remembered(upstream: Upstream) -> None:
    check = UpstreamTokenCheck(ImageSource(upstream), ttl=5.0)
    upstream.down = True
    assert check.rejects(environ_of(REJECTED)) is False
    upstream.down = False
    assert check.rejects(environ_of(REJECTED)) is True


def test_the_memo_is_bounded(upstream: Upstream) -> None:
    check = UpstreamTokenCheck(ImageSource(upstream), ttl=60.0, size=4)
    for n in range(10):
        check.rejects(environ_of(f"token-{n}"))
    assert len(check._memo) <= 4


@pytest.fixture
def cache(tmp_path) -> Iterator[ImageCache]:
    cache = ImageCache(Settings(image_cache_dir=str(tmp_path / "cache"), image_cache_min_free=0))
    yield cache
    cache.close()


@pytest.mark.parametrize("path", ["/v2/cache", "/v1/cached_images", "/v2/queued_images"])
@pytest.mark.parametrize(("token", "status"), [(REJECTED, 401), (VALID, 403)])
def test_the_cache_api_of_an_edge(upstream: Upstream, cache: ImageCache, path: str, token: str, status: int) -> None:
    source = ImageSource(upstream)
    api = CacheManageFilter(upstream, cache, source, Prefetcher(cache, source, RequestContext.admin()),
                            UpstreamTokenCheck(source, ttl=5.0))
    request = Request.blank(path, environ=environ_of(token))
    response = request.get_response(api)
    assert response.status_code == status
    assert response.json["error"]["code"] == status
    if status == 401:
        assert "WWW-Authenticate" in response.headers
    admin = Request.blank(path)
    set_context(admin.environ, RequestContext.admin())
    assert admin.get_response(api).status_code == 200
