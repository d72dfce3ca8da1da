"""Fixtures of the cache management API's tests: a cache, its prefetcher, the API over the fake image service."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from imagecache import ImageCache, Settings
from imagecache.http.context import RequestContext
from imagecache.jobs.prefetcher import Prefetcher
from imagecache.wsgi.cache_manage import CacheManageFilter
from imagecache.wsgi.image_source import ImageSource

from .fake_images import FakeImageService


@pytest.fixture
def cache(tmp_path) -> Iterator[ImageCache]:
    cache = ImageCache(Settings(image_cache_dir=str(tmp_path / "cache"), image_cache_min_free=0))
    yield cache
    cache.close()


@pytest.fixture
def prefetcher(cache: ImageCache, service: FakeImageService) -> Iterator[Prefetcher]:
    prefetcher = Prefetcher(cache, ImageSource(service), RequestContext.admin())
    yield prefetcher
    assert prefetcher.wait_idle(timeout=30)


@pytest.fixture
def api(cache: ImageCache, service: FakeImageService, prefetcher: Prefetcher) -> CacheManageFilter:
    return CacheManageFilter(service, cache, ImageSource(service), prefetcher)
