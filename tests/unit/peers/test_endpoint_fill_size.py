"""The fill's expected size on disk (``incomplete/<id>.size``): how the endpoint knows a fill's size."""

from __future__ import annotations

import os

import pytest

from imagecache import ImageCache, Settings
from imagecache.cache.fill_size import forget_size, record_size, recorded_size, size_path

from .endpoint_support import DrivenFill, make_image


@pytest.fixture
def cache(tmp_path):
    cache = ImageCache(Settings(image_cache_dir=str(tmp_path / "cache"), image_cache_min_free=0))
    yield cache
    cache.close()


def test_a_claimed_fill_records_its_size_until_it_ends(cache):
    image = make_image(100_000)
    fill = DrivenFill(cache, image)
    assert recorded_size(cache.layout, image.image_id) == image.size
    fill.send(image.size)
    fill.end()
    assert cache.is_cached(image.image_id)
    assert recorded_size(cache.layout, image.image_id) is None
    assert os.listdir(cache.layout.incomplete_dir) == []


def test_a_cancelled_claim_leaves_no_record(cache):
    image = make_image(1000)
    claim = cache.claim_fill(image.image_id, image.md5, size=image.size)
    assert claim is not None and recorded_size(cache.layout, image.image_id) == image.size
    claim.cancel()
    assert recorded_size(cache.layout, image.image_id) is None
    assert os.listdir(cache.layout.incomplete_dir) == []


def test_a_failed_fill_leaves_no_record(cache):
    image = make_image(1000)
    fill = DrivenFill(cache, image)
    fill.fail(OSError("the origin went away"))
    assert recorded_size(cache.layout, image.image_id) is None


def test_a_fill_without_a_size_records_nothing(cache):
    image = make_image(1000)
    fill = DrivenFill(cache, image, size=None)
    assert not os.path.exists(size_path(cache.layout, image.image_id))
    fill.send(image.size)
    fill.end()
    assert cache.is_cached(image.image_id)


@pytest.mark.parametrize("content", ["", "abc", "-5", "12 ", "1" * 40, "\u0663", "1.5"])
def test_a_record_that_is_no_size_is_an_unknown_size(cache, content):
    image_id = make_image(10).image_id
    with open(size_path(cache.layout, image_id), "w", encoding="utf-8") as fh:
        fh.write(content)
    assert recorded_size(cache.layout, image_id) is None


def test_recording_is_best_effort(cache, tmp_path):
    image_id = make_image(10).image_id
    record_size(cache.layout, image_id, 1234)
    assert recorded_size(cache.layout, image_id) == 1234
    forget_size(cache.layout, image_id)
    forget_size(cache.layout, image_id)  # twice: nothing to remove is fine
    os.chmod(cache.layout.incomplete_dir, 0o500)
    try:
        record_size(cache.layout, image_id, 99)  # cannot write: no record, no error
    finally:
        os.chmod(cache.layout.incomplete_dir, 0o755)
    if os.geteuid() != 0:  # root writes anyway
        assert recorded_size(cache.layout, image_id) is None
    assert [name for name in os.listdir(cache.layout.incomplete_dir) if name.endswith(".new")] == []
