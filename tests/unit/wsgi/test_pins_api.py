"""The pin routes of the cache management API: statuses, bodies, and what they do to the cache.

Access (admins only), wrong methods and bad ids are covered with every other
route in test_cache_manage.py.
"""

from __future__ import annotations

import pytest

from imagecache import ImageCache, Settings
from imagecache.http.context import RequestContext
from imagecache.jobs.prefetcher import Prefetcher
from imagecache.wsgi.cache_manage import CacheManageFilter
from imagecache.wsgi.image_source import ImageSource

from .test_cache_manage import UNKNOWN_ID, call, error_message, fill


def test_pinning_a_cached_image_is_200_with_the_pin(api: CacheManageFilter, cache: ImageCache, service) -> None:
    image = service.add()
    fill(cache, image)
    response = call(api, "PUT", f"/v2/cache/{image.image_id}/pin")
    assert response.status_code == 200
    assert response.json == {"image_id": image.image_id, "pinned_by": "manual", "cached": True,
                             "size": len(image.data)}
    assert cache.pins.ids() == {image.image_id}
    assert call(api, "PUT", f"/v2/cache/{image.image_id.upper()}/pin").status_code == 200  # again: the same pin
    assert service.data_requests == []


def test_pinning_an_uncached_image_pins_queues_and_fetches_it(api, cache, service, prefetcher) -> None:
    image = service.add()
    response = call(api, "PUT", f"/v2/cache/{image.image_id}/pin")
    assert response.status_code == 202
    assert response.json == {"image_id": image.image_id, "pinned_by": "manual", "cached": False, "size": None}
    assert prefetcher.wait_idle(timeout=30)
    assert cache.is_cached(image.image_id)
    assert cache.pins.ids() == {image.image_id}
    assert cache.get_queued_images() == []
    assert service.tokens_seen[-1] == "admin-token"  # fetched as the admin who asked


def test_an_image_pinned_before_it_is_fetched_is_cached_past_the_limit(tmp_path, service) -> None:
    small = ImageCache(Settings(image_cache_dir=str(tmp_path / "small"), image_cache_min_free=0,
                                image_cache_max_size=1000))
    try:
        fetcher = Prefetcher(small, ImageSource(service), RequestContext.admin())
        manage = CacheManageFilter(service, small, ImageSource(service), fetcher)
        image = service.add()  # 128 KiB, far over the limit
        assert call(manage, "PUT", f"/v2/cache/{image.image_id}/pin").status_code == 202
        assert fetcher.wait_idle(timeout=30)
        assert small.is_cached(image.image_id)
        body = call(manage, "GET", "/v2/cache/pins").json
        assert body["over_limit"] is True and body["pinned_bytes"] == len(image.data)
    finally:
        small.close()


def test_pinning_an_unknown_image_is_the_image_services_404_and_pins_nothing(api, cache) -> None:
    response = call(api, "PUT", f"/v2/cache/{UNKNOWN_ID}/pin")
    assert response.status_code == 404
    assert cache.pins.ids() == frozenset()
    assert cache.get_queued_images() == []


@pytest.mark.parametrize("status", ["queued", "deactivated"])
def test_pinning_an_image_that_is_not_active_is_400(api, cache, service, status: str) -> None:
    image = service.add(status=status)
    response = call(api, "PUT", f"/v2/cache/{image.image_id}/pin")
    assert response.status_code == 400
    assert "active" in error_message(response)
    assert cache.pins.ids() == frozenset()


def test_unpinning_is_204_then_404(api, cache, service) -> None:
    image = service.add()
    fill(cache, image)
    cache.pins.pin(image.image_id)
    response = call(api, "DELETE", f"/v2/cache/{image.image_id}/pin")
    assert response.status_code == 204 and response.body == b""
    assert cache.pins.ids() == frozenset()
    assert cache.is_cached(image.image_id)  # unpinned, not deleted
    again = call(api, "DELETE", f"/v2/cache/{image.image_id}/pin")
    assert again.status_code == 404
    assert error_message(again) == f"Image {image.image_id} is not pinned."


def test_the_pins_listing_and_the_records(api, cache, service) -> None:
    assert call(api, "GET", "/v2/cache/pins").json == {
        "pinned_images": [], "pinned_bytes": 0, "image_cache_max_size": cache.settings.image_cache_max_size,
        "over_limit": False,
    }
    pinned, ordinary, absent = service.add(), service.add(), service.add()
    fill(cache, pinned)
    fill(cache, ordinary)
    cache.pins.pin(pinned.image_id)
    cache.pins.pin(absent.image_id, "prewarm")
    body = call(api, "GET", "/v2/cache/pins").json
    assert sorted(body["pinned_images"], key=lambda pin: pin["image_id"]) == sorted([
        {"image_id": pinned.image_id, "pinned_by": "manual", "cached": True, "size": len(pinned.data)},
        {"image_id": absent.image_id, "pinned_by": "prewarm", "cached": False, "size": None},
    ], key=lambda pin: pin["image_id"])
    assert body["pinned_bytes"] == len(pinned.data) and body["over_limit"] is False
    for path in ("/v2/cache", "/v1/cached_images", "/v2/cached_images"):
        marks = {entry["image_id"]: entry["pinned"] for entry in call(api, "GET", path).json["cached_images"]}
        assert marks == {pinned.image_id: True, ordinary.image_id: False}


def test_deleting_a_pinned_images_copy_keeps_its_pin(api, cache, service) -> None:
    image = service.add()
    fill(cache, image)
    cache.pins.pin(image.image_id)
    assert call(api, "DELETE", f"/v2/cache/{image.image_id}").status_code == 204
    assert not cache.is_cached(image.image_id)
    [pin] = call(api, "GET", "/v2/cache/pins").json["pinned_images"]
    assert (pin["image_id"], pin["cached"]) == (image.image_id, False)


def test_glanceclient_still_reads_a_listing_with_pinned_images(api, cache, service, capsys) -> None:
    utils = pytest.importorskip("glanceclient.common.utils")
    image = service.add()
    fill(cache, image)
    cache.pins.pin(image.image_id)
    cache.pins.pin(UNKNOWN_ID)  # a pin without a copy is no queued image to glanceclient
    utils.print_cached_images(call(api, "GET", "/v2/cache").json)
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "ID" not in line]
    assert len(rows) == 1 and image.image_id in rows[0] and "cached" in rows[0]

