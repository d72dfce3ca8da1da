"""Fixtures for the central index's tests: a scratch PostgreSQL schema, drivers and caches in it."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from imagecache import ImageCache
from imagecache.cache.drivers.central import CentralDriver
from imagecache.cache.layout import CacheLayout

from .pg import central_settings, scratch_schema

#: Fixtures that need PostgreSQL: a test using one is marked ``postgres`` (``-m "not postgres"`` leaves it out).
POSTGRES_FIXTURES = frozenset({"db_url", "empty_db_url", "make_driver", "make_cache"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture
def db_url() -> Iterator[str]:
    """A schema at head of its own, dropped after the test."""
    with scratch_schema() as url:
        yield url


@pytest.fixture
def empty_db_url() -> Iterator[str]:
    """A schema of its own with nothing in it (never upgraded)."""
    with scratch_schema(migrated=False) as url:
        yield url


@pytest.fixture
def make_driver(db_url: str, tmp_path: Path) -> Iterator[Callable[..., CentralDriver]]:
    """``make_driver(node_url=..., **settings)``: a configured driver with a cache dir of its own."""
    drivers: list[CentralDriver] = []
    numbers = itertools.count()

    def make(node_url: str | None = None, **options: object) -> CentralDriver:
        n = next(numbers)
        layout = CacheLayout(str(tmp_path / f"node{n}" / "image-cache"))
        layout.ensure()
        settings = central_settings(db_url, layout, node_url=node_url or f"http://node{n}.example:9292", **options)
        driver = CentralDriver(layout, settings)
        driver.configure()
        drivers.append(driver)
        return driver

    yield make
    for driver in drivers:
        driver.close()


@pytest.fixture
def make_cache(db_url: str, tmp_path: Path, clock) -> Iterator[Callable[..., ImageCache]]:  # type: ignore[no-untyped-def]
    """``make_cache(name, **settings)``: an ImageCache on the central index, as node ``http://<name>:9292``."""
    caches: list[ImageCache] = []

    def make(name: str = "node-a", **options: object) -> ImageCache:
        layout = CacheLayout(str(tmp_path / name / "image-cache"))
        settings = central_settings(db_url, layout, node_url=f"http://{name}:9292", image_cache_min_free=0, **options)
        cache = ImageCache(settings, clock=clock)
        caches.append(cache)
        return cache

    yield make
    for cache in caches:
        cache.close()
