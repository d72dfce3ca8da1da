"""The cache filter over the real embedded image app, in-process (no sockets).

Range answers from cached images are compared with Python slicing over many
range forms and file sizes, and the size limit is checked at rest while more
images than fit are downloaded in random order.
"""

from __future__ import annotations

import json
import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagecache import ImageCache, Settings
from imagecache.images import make_app
from imagecache.wsgi.cache_filter import CacheFilter
from tests.support.waiting import wait_until
from tests.support.wsgi import call


def upload(app, data: bytes) -> str:
    fields = {"name": "i", "disk_format": "raw", "container_format": "bare"}
    made = call(app, "POST", "/v2/images", json.dumps(fields).encode(), "application/json")
    image_id = made.json["id"]
    assert call(app, "PUT", f"/v2/images/{image_id}/file", data, "application/octet-stream").status_int == 204
    return image_id


def build(tmp_path, max_size: int) -> tuple[CacheFilter, ImageCache]:
    options = Settings(data_dir=str(tmp_path / "data"), image_cache_max_size=max_size, image_cache_min_free=0)
    cache = ImageCache(options)
    return CacheFilter(make_app(options), cache), cache


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    """Cached images of sizes 1..~70 KiB, keyed by size."""
    app, cache = build(tmp_path_factory.mktemp("ranges"), 1 << 30)
    images = {}
    for size in (1, 2, 7, 100, 4096, 65537, 70_000):
        data = os.urandom(size)
        image_id = upload(app, data)
        assert call(app, "GET", f"/v2/images/{image_id}/file").body == data
        wait_until(lambda image_id=image_id: cache.is_cached(image_id), f"image {image_id} to be published")
        images[size] = (image_id, data)
    return app, images


def expected_slice(spec: str, data: bytes) -> bytes | None:
    """What a single byte range selects, by Python slicing; None when unsatisfiable."""
    first, _, last = spec[len("bytes="):].partition("-")
    size = len(data)
    if first == "":
        n = int(last)
        return data[-n:] if n > 0 and size > 0 else None
    if int(first) >= size:
        return None
    return data[int(first): (int(last) + 1) if last else None]


range_specs = st.one_of(
    st.builds(lambda a, b: f"bytes={min(a, b)}-{max(a, b)}", st.integers(0, 80_000), st.integers(0, 80_000)),
    st.builds(lambda a: f"bytes={a}-", st.integers(0, 80_000)),
    st.builds(lambda n: f"bytes=-{n}", st.integers(0, 80_000)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.sampled_from([1, 2, 7, 100, 4096, 65537, 70_000]), spec=range_specs)
def test_ranges_from_cached_images_match_python_slicing(cached, size, spec):
    app, images = cached
    image_id, data = images[size]
    answer = call(app, "GET", f"/v2/images/{image_id}/file", headers={"Range": spec})
    want = expected_slice(spec, data)
    if want is None:
        assert answer.status_int == 416
        assert answer.headers["Content-Range"] == f"bytes */{size}"
    else:
        assert answer.status_int == 206
        assert answer.body == want
        assert answer.headers["Content-Range"].endswith(f"/{size}")
        assert int(answer.headers["Content-Length"]) == len(want)


def test_the_size_limit_holds_at_rest_over_random_downloads(tmp_path):
    limit = 200_000
    app, cache = build(tmp_path, limit)
    rng = random.Random(20261123)
    images = [(lambda d: (upload(app, d), d))(os.urandom(rng.randint(10_000, 60_000))) for _ in range(20)]
    assert sum(len(d) for _, d in images) > 2 * limit
    for _ in range(60):
        image_id, data = rng.choice(images)
        assert call(app, "GET", f"/v2/images/{image_id}/file").body == data
        on_disk = sum(e.stat().st_size for e in os.scandir(cache.layout.root) if e.is_file() and len(e.name) == 36)
        assert on_disk <= limit and cache.get_cache_size() <= limit
    assert cache.get_cached_images()  # the cache did keep what fits
