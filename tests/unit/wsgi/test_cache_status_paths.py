"""What each path of the cache filter says in Cache-Status, and counts, in-process over the embedded app.

The functional tests (tests/functional/test_cache_status.py) ask the same
of real servers; here each reason is reached directly, including the ones a
real machine cannot be made to show on demand (a full disk at the start of
a fill, an unwritable cache).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from imagecache import ImageCache, Settings
from imagecache.cache.fill import FillWriter
from imagecache.images import make_app
from imagecache.metrics import Metrics
from imagecache.wsgi.cache_filter import CacheFilter
from tests.support.waiting import wait_until

from .test_fill_paths import call, upload

STORED = "imagecache; fwd=miss; stored"
HIT = "imagecache; hit"


def reason_count(metrics: Metrics, name: str, reason: str) -> float:
    counter = {"not_stored": metrics.not_stored, "origin": metrics.origin_requests}[name]
    value: float = counter.labels(reason=reason)._value.get()
    return value


def build(tmp_path, app_wrapper: Callable[[Any], Any] = lambda app: app, **options: Any):
    settings = Settings(data_dir=str(tmp_path / "data"), image_cache_min_free=0, **options)
    origin = make_app(settings)
    cache = ImageCache(settings)
    return CacheFilter(app_wrapper(origin), cache), origin, cache


def file_path(image_id: str) -> str:
    return f"/v2/images/{image_id}/file"


def test_a_miss_stores_then_hits_and_ranges_of_the_file_are_hits(tmp_path) -> None:
    app, _origin, cache = build(tmp_path)
    data = os.urandom(50_000)
    image_id = upload(app, data)
    first = call(app, "GET", file_path(image_id))
    assert first.body == data and first.headers["Cache-Status"] == STORED
    wait_until(lambda: cache.is_cached(image_id), "the fill to publish")
    assert call(app, "GET", file_path(image_id)).headers["Cache-Status"] == HIT
    part = call(app, "GET", file_path(image_id), headers={"Range": "bytes=5-9"})
    assert (part.status_int, part.body, part.headers["Cache-Status"]) == (206, data[5:10], HIT)
    legacy = call(app, "GET", f"/v1/images/{image_id}")
    assert legacy.body == data and legacy.headers["Cache-Status"] == HIT
    assert reason_count(cache.metrics, "origin", "fill") == 1


def test_a_416_says_hit_only_when_a_cached_file_judged_it(tmp_path) -> None:
    app, _origin, cache = build(tmp_path)
    image_id = upload(app, b"0123456789")
    uncached = call(app, "GET", file_path(image_id), headers={"Range": "bytes=50-"})
    assert uncached.status_int == 416 and "Cache-Status" not in uncached.headers  # made up from metadata alone
    call(app, "GET", file_path(image_id))
    wait_until(lambda: cache.is_cached(image_id), "the fill to publish")
    cached = call(app, "GET", file_path(image_id), headers={"Range": "bytes=50-"})
    assert cached.status_int == 416 and cached.headers["Cache-Status"] == HIT


def test_a_range_of_an_uncached_image_says_so_and_is_counted(tmp_path) -> None:
    app, _origin, cache = build(tmp_path)
    data = os.urandom(10_000)
    image_id = upload(app, data)
    part = call(app, "GET", file_path(image_id), headers={"Range": "bytes=100-199"})
    assert part.body == data[100:200]
    assert part.headers["Cache-Status"] == "imagecache; fwd=uri-miss; detail=range-uncached"
    assert reason_count(cache.metrics, "not_stored", "range-uncached") == 1
    assert reason_count(cache.metrics, "origin", "range-uncached") == 1
    assert cache.metrics.origin_bytes.labels(reason="range-uncached")._value.get() == 100


def test_an_image_larger_than_the_cache_is_not_stored_and_says_too_large(tmp_path) -> None:
    app, _origin, cache = build(tmp_path, image_cache_max_size=1000)
    data = os.urandom(5000)
    image_id = upload(app, data)
    answer = call(app, "GET", file_path(image_id))
    assert answer.body == data
    assert answer.headers["Cache-Status"] == "imagecache; fwd=uri-miss; detail=too-large"
    assert reason_count(cache.metrics, "not_stored", "too-large") == 1  # once: the cache counted it, not the filter
    assert reason_count(cache.metrics, "origin", "too-large") == 1


@pytest.mark.parametrize(("code", "reason"), [(errno.ENOSPC, "disk-full"), (errno.EDQUOT, "disk-full"),
                                              (errno.EROFS, "cache-error"), (errno.EIO, "cache-error")])
def test_a_cache_that_cannot_start_a_fill_says_why(tmp_path, monkeypatch, code: int, reason: str) -> None:
    # Stands in for a filesystem that refuses the incomplete file: a full or read-only one cannot be
    # made here without root, and root ignores permissions.
    app, _origin, cache = build(tmp_path)
    data = os.urandom(3000)
    image_id = upload(app, data)

    def refuse(*_args: Any) -> FillWriter:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(FillWriter, "acquire", refuse)
    answer = call(app, "GET", file_path(image_id))
    assert answer.body == data and answer.headers["Cache-Status"] == f"imagecache; fwd=uri-miss; detail={reason}"
    assert reason_count(cache.metrics, "not_stored", reason) == 1


class WrongMd5:
    """An image service whose data answers carry a Content-MD5 that is not the image's."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            changed = [(k, "0" * 32 if k.lower() == "content-md5" else v) for k, v in headers]
            return start_response(status, changed, exc_info)

        return self.app(environ, start)


def test_data_whose_content_md5_disagrees_with_the_metadata_is_passed_on_unstored(tmp_path) -> None:
    app, _origin, cache = build(tmp_path, WrongMd5)
    data = os.urandom(3000)
    image_id = upload(app, data)
    answer = call(app, "GET", file_path(image_id))
    assert answer.body == data
    assert answer.headers["Cache-Status"] == "imagecache; fwd=uri-miss; detail=verify-failed"
    assert reason_count(cache.metrics, "not_stored", "verify-failed") == 1
    assert (reason_count(cache.metrics, "origin", "fill"), reason_count(cache.metrics, "origin", "verify-failed")) \
        == (1, 1)  # the fill's request, given up, and the one whose answer the client got


def test_a_deactivated_image_is_bypassed_and_an_unknown_one_has_no_metadata(tmp_path) -> None:
    app, _origin, cache = build(tmp_path)
    data = os.urandom(3000)
    image_id = upload(app, data)
    assert call(app, "POST", f"/v2/images/{image_id}/actions/deactivate").status_int == 204
    admin = call(app, "GET", file_path(image_id))  # the embedded service sends an admin the data
    assert admin.body == data and admin.headers["Cache-Status"] == "imagecache; fwd=bypass; detail=not-active"
    missing = call(app, "GET", file_path("0b2c3d4e-0000-4000-8000-00000000abcd"))
    assert missing.status_int == 404
    assert missing.headers["Cache-Status"] == "imagecache; fwd=uri-miss; detail=no-metadata"
    assert reason_count(cache.metrics, "not_stored", "not-active") == 1
    assert reason_count(cache.metrics, "not_stored", "no-metadata") == 0  # a refusal carries no image


def test_a_head_of_image_data_is_left_to_the_app_and_says_so(tmp_path) -> None:
    app, _origin, _cache = build(tmp_path)
    image_id = upload(app, b"abc")
    legacy = call(app, "HEAD", f"/v1/images/{image_id}")
    assert legacy.status_int == 200 and legacy.headers["Cache-Status"] == "imagecache; fwd=method"
    v2 = call(app, "HEAD", file_path(image_id))
    assert v2.status_int == 405 and "Cache-Status" not in v2.headers  # no data there to say anything of


def test_an_upstream_cache_status_comes_first_on_a_fill_and_a_pass_through(tmp_path) -> None:
    def with_theirs(app: Any) -> Any:
        def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                return start_response(status, [*headers, ("Cache-Status", "GlanceCache; fwd=uri-miss")], exc_info)

            return app(environ, start)

        return wrapped

    app, _origin, _cache = build(tmp_path, with_theirs)
    data = os.urandom(3000)
    image_id = upload(app, data)
    assert call(app, "GET", file_path(image_id), headers={"Range": "bytes=0-0"}).headers["Cache-Status"] == \
        "GlanceCache; fwd=uri-miss, imagecache; fwd=uri-miss; detail=range-uncached"
    assert call(app, "GET", file_path(image_id)).headers["Cache-Status"] == f"GlanceCache; fwd=uri-miss, {STORED}"


def test_the_prefetcher_counts_its_origin_reads(tmp_path) -> None:
    from imagecache.http.context import RequestContext
    from imagecache.jobs.prefetcher import Prefetcher
    from imagecache.wsgi.image_source import ImageSource

    app, origin, cache = build(tmp_path)
    data = os.urandom(3000)
    image_id = upload(app, data)
    prefetcher = Prefetcher(cache, ImageSource(origin), RequestContext.admin())
    assert prefetcher.fetch_image_into_cache(image_id)
    assert reason_count(cache.metrics, "origin", "prefetch") == 1
    assert cache.metrics.origin_bytes.labels(reason="prefetch")._value.get() == len(data)
