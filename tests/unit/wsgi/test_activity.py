"""GET /v2/cache/activity: the fills in progress, the counters /metrics exposes, the size, queue and pins.

Access, wrong methods and the namespace are covered with every other route in test_cache_manage.py.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from imagecache import ImageCache
from imagecache.metrics import NOT_STORED_REASONS, SOURCES, Metrics
from imagecache.wsgi.activity import COUNTERS, counter_totals, counters_view
from imagecache.wsgi.cache_manage import CacheManageFilter

from .test_cache_manage import call, fill


def test_the_counters_are_the_ones_metrics_renders() -> None:
    metrics = Metrics()
    metrics.cache_hits.inc(3)
    metrics.cache_misses.inc()
    metrics.served_bytes.labels(source="cache").inc(4096)
    metrics.count_not_stored("too-large")
    _, text = metrics.render(cache_size=10, cache_max_size=20)
    view = counters_view(counter_totals(text.decode()))
    assert view["hits"] == 3
    assert view["misses"] == 1
    assert view["served_bytes"] == {**dict.fromkeys(SOURCES, 0), "cache": 4096}
    assert view["not_stored"] == {**dict.fromkeys(NOT_STORED_REASONS, 0), "too-large": 1}
    assert set(view) == set(COUNTERS)


@given(st.dictionaries(st.sampled_from(sorted(f for f, _ in COUNTERS.values())),
                       st.dictionaries(st.tuples(st.tuples(st.sampled_from(["source", "reason", "result", "x"]),
                                                           st.text(max_size=5))),
                                       st.floats(0, 1e15), max_size=4), max_size=5))
def test_the_view_has_every_counter_whatever_the_samples(totals) -> None:
    view = counters_view(totals)
    assert set(view) == set(COUNTERS)
    for key, (_, label) in COUNTERS.items():
        assert isinstance(view[key], int if label is None else dict)


def test_activity_lists_a_fill_in_progress_with_its_name(api: CacheManageFilter, cache: ImageCache, service) -> None:
    image = service.add(name="ubuntu-24.04")
    cached = service.add()
    fill(cache, cached)
    cache.queue_image(image.image_id)
    claim = cache.claim_fill(image.image_id, size=len(image.data))
    assert claim is not None
    try:
        claim.writer.write(image.data[:10])
        response = call(api, "GET", "/v2/cache/activity")
    finally:
        claim.cancel()
    assert response.status_code == 200
    body = response.json
    [shown] = body["fills"]
    assert {key: shown[key] for key in ("image_id", "name", "bytes", "expected_size", "source")} == {
        "image_id": image.image_id, "name": "ubuntu-24.04", "bytes": 10, "expected_size": len(image.data),
        "source": "origin"}
    assert body["cache_size"] == len(cached.data)
    assert body["image_cache_max_size"] == cache.settings.image_cache_max_size
    assert body["queued_images"] == [image.image_id]
    assert body["pinned_images"] == []
    assert set(body["counters"]) == set(COUNTERS)


def test_activity_of_an_idle_node(api: CacheManageFilter) -> None:
    body = call(api, "GET", "/v2/cache/activity").json
    assert body["fills"] == []
    assert body["counters"]["hits"] == 0
    assert body["pinned_over_limit"] is False
    assert body["nodes"] is None  # no central index: no fleet to show
