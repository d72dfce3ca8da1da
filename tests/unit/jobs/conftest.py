"""Fixtures for the jobs' tests: a real cache directory, a settable clock, the fake image app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from imagecache import ImageCache, Settings
from imagecache.http.context import RequestContext
from imagecache.jobs.prefetcher import Prefetcher
from imagecache.wsgi.image_source import ImageSource
from tests.unit.conftest import FakeClock
from tests.unit.wsgi.fake_images import FakeImageService

ADMIN = RequestContext.admin(project_id="p-admin", auth_token="admin-token")



@pytest.fixture
def settings(tmp_path) -> Settings:
    """A data dir of its own, the cache inside it, no free-space floor (tmp may be small).

    Hits are written at once: a job here often opens a cache of its own over the same dir (as the
    CLI's do), which cannot see the hits another cache still holds in memory.
    """
    return Settings(data_dir=str(tmp_path / "data"), image_cache_dir=str(tmp_path / "cache"), image_cache_min_free=0,
                    image_cache_hit_flush_interval=0)


@pytest.fixture
def cache(settings: Settings, clock: FakeClock) -> Iterator[ImageCache]:
    cache = ImageCache(settings, clock=clock)
    yield cache
    cache.close()


@pytest.fixture
def prefetcher(cache: ImageCache, service: FakeImageService) -> Iterator[Prefetcher]:
    prefetcher = Prefetcher(cache, ImageSource(service), ADMIN)
    yield prefetcher
    assert prefetcher.wait_idle(timeout=30), "a background fetch never finished"
