"""Fixtures for the cache library's tests: real directories, no sockets."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from imagecache import ImageCache, Settings

DRIVERS = ["sqlite", "xattr"]



@dataclass(frozen=True)
class Image:
    """Bytes with the metadata Glance would hold for them."""

    image_id: str
    data: bytes

    @property
    def checksum(self) -> str:
        return hashlib.md5(self.data).hexdigest()

    @property
    def sha512(self) -> str:
        return hashlib.sha512(self.data).hexdigest()

    def chunks(self, size: int = 65536) -> Iterator[bytes]:
        for start in range(0, len(self.data), size):
            yield self.data[start : start + size]


def make_image(size: int = 200_000, seed: int | None = None) -> Image:
    image_id = str(uuid.uuid4())
    block = hashlib.sha256((seed if seed is not None else image_id).__str__().encode()).digest()
    return Image(image_id, (block * (size // len(block) + 1))[:size])


@pytest.fixture(params=DRIVERS)
def driver_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_cache(tmp_path, clock, driver_name) -> Iterator[Callable[..., ImageCache]]:
    caches: list[ImageCache] = []

    def build(**options: object) -> ImageCache:
        values: dict[str, object] = {
            "image_cache_dir": str(tmp_path / "cache"),
            "image_cache_driver": driver_name,
            "image_cache_min_free": 0,
        }
        values.update(options)
        cache = ImageCache(Settings(**values), clock=clock)
        caches.append(cache)
        return cache

    yield build
    for cache in caches:
        cache.close()


@pytest.fixture
def cache(make_cache) -> ImageCache:
    return make_cache()


def cache_it(cache: ImageCache, image: Image) -> bool:
    return cache.cache_image_iter(image.image_id, image.chunks(), image.checksum, os_hash_value=image.sha512)
