"""The pre-warmer over the real embedded image service, in-process, with a settable clock.

The image service is the one a node embeds (its listing, its filters, its
data); only time is simulated (the pacer sleeps on a fake clock), so the
rate limit is checked exactly and the tests take no real time for it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from webob import Response

from imagecache import ImageCache, Settings, images
from imagecache.cache.flight import readers_path
from imagecache.cache.tail import ReaderMark
from imagecache.http.context import RequestContext
from imagecache.jobs import prewarm_policy
from imagecache.jobs.prefetcher import Prefetcher
from imagecache.jobs.prewarmer import Prewarmer, PrewarmResult, prewarm_jobs
from imagecache.wsgi.image_source import ImageSource
from tests.unit.jobs import embedded

MiB = 1 << 20


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.now += seconds


@dataclass
class Node:
    settings: Settings
    cache: ImageCache
    app: Any
    prewarmer: Prewarmer
    time: FakeTime

    def add(self, size: int = 100_000, **fields: Any) -> str:
        fields.setdefault("visibility", "public")
        return embedded.add_image(self.settings, os.urandom(size), **fields)

    def cached(self) -> set[str]:
        return {record.image_id for record in self.cache.get_cached_images()}


@pytest.fixture
def make_node(tmp_path) -> Iterator[Callable[..., Node]]:
    made: list[Node] = []

    def make(**options: Any) -> Node:
        values: dict[str, Any] = {"data_dir": str(tmp_path / "data"), "image_cache_min_free": 0,
                                  "prewarm_tags": ("golden",), "prewarm_max_bytes_per_second": 0}
        values.update(options)
        settings = Settings(**values)
        cache = ImageCache(settings)
        app = images.make_app(settings)
        time = FakeTime()
        prefetcher = Prefetcher(cache, ImageSource(app), RequestContext.admin())
        node = Node(settings, cache, app, Prewarmer(cache, prefetcher, clock=time.clock, sleep=time.sleep), time)
        made.append(node)
        return node

    yield make
    for node in made:
        node.app.db.close()
        node.cache.close()


def test_a_tagged_public_image_is_cached_without_any_download(make_node) -> None:
    node = make_node()
    golden = node.add(tags=["golden"])
    node.add(tags=["other"])
    node.add(tags=["golden"], visibility="private")  # its owner's tags: not the operator's policy
    node.add(tags=["golden"], size=0)  # (an empty image is still an image)
    result = node.prewarmer.run()
    assert result.selected == 2 and result.fetched == 2 and result.failed == 0
    assert golden in node.cached()
    assert node.prewarmer.run() == PrewarmResult(selected=2, fetched=0, failed=0, pinned=0, unpinned=0,
                                                 over_budget=0)  # nothing left to do


def test_a_property_match_selects_too(make_node) -> None:
    node = make_node(prewarm_tags=(), prewarm_properties=(("os_distro", "ubuntu"),))
    ubuntu = node.add(os_distro="ubuntu")
    node.add(os_distro="debian")
    assert node.prewarmer.run().fetched == 1
    assert node.cached() == {ubuntu}


def test_the_fetches_keep_to_the_rate_limit(make_node) -> None:
    node = make_node(prewarm_max_bytes_per_second=MiB)
    node.add(size=4 * MiB, tags=["golden"])
    started = node.time.now
    assert node.prewarmer.run().fetched == 1
    # 4 MiB at 1 MiB/s, less the quarter second the bucket holds (and at most one chunk read ahead).
    assert node.time.now - started >= 4 - 0.25 - 1.0
    assert node.time.now - started <= 4 + 0.25


def test_an_image_a_client_is_streaming_is_fetched_at_full_speed(make_node) -> None:
    node = make_node(prewarm_max_bytes_per_second=MiB)
    image_id = node.add(size=4 * MiB, tags=["golden"])
    os.makedirs(node.cache.layout.incomplete_dir, exist_ok=True)
    follower = ReaderMark(readers_path(node.cache.layout, image_id))  # a client following the fill
    try:
        assert node.prewarmer.run().fetched == 1
    finally:
        follower.release()
    assert node.time.slept < 0.5  # at most the look before the reader was seen


def test_with_prewarm_pin_it_pins_what_it_keeps_and_gives_back_only_its_own_pins(make_node) -> None:
    node = make_node(prewarm_pin=True)
    golden, manual = node.add(tags=["golden"]), node.add(tags=["golden"])
    node.cache.pins.pin(manual)  # an operator's pin of an image the policy also selects
    assert node.prewarmer.run().pinned == 1
    assert node.cache.driver.pins() == {golden: "prewarm", manual: "manual"}
    embedded.patch_image(node.settings, golden, [{"op": "replace", "path": "/tags", "value": []}])
    embedded.patch_image(node.settings, manual, [{"op": "replace", "path": "/tags", "value": []}])
    assert node.prewarmer.run().unpinned == 1
    assert node.cache.driver.pins() == {manual: "manual"}
    assert golden in node.cached()  # unpinned, still cached until the LRU says otherwise


def test_without_prewarm_pin_its_earlier_pins_are_given_back(make_node) -> None:
    node = make_node()
    image_id = node.add(tags=["golden"])
    node.cache.pins.pin(image_id, "prewarm")  # left by a run with prewarm_pin = true
    assert node.prewarmer.run().unpinned == 1
    assert node.cache.pins.ids() == frozenset()


def test_what_the_policy_selects_beyond_the_limit_is_left_out_not_churned(make_node, caplog) -> None:
    node = make_node(image_cache_max_size=300_000)
    older = node.add(size=200_000, tags=["golden"])
    newer = node.add(size=200_000, tags=["golden"])  # listed first: newest first
    small = node.add(size=50_000, tags=["golden"])
    with caplog.at_level(logging.WARNING, logger="imagecache.jobs.prewarmer"):
        result = node.prewarmer.run()
    assert (result.selected, result.fetched, result.over_budget) == (3, 2, 1)
    assert node.cached() == {small, newer}
    assert f"left out: {older}" in caplog.text
    assert node.prewarmer.run().fetched == 0  # the next run does not evict one to fetch the other


def test_an_operators_pins_shrink_the_budget(make_node) -> None:
    node = make_node(image_cache_max_size=300_000)
    held = node.add(size=200_000)
    node.cache.pins.pin(held)
    with open(os.path.join(node.settings.data_dir, "images", held), "rb") as stored:
        assert node.cache.cache_image_file(held, stored)
    golden = node.add(size=200_000, tags=["golden"])
    assert node.prewarmer.run().over_budget == 1
    assert node.cached() == {held} and golden not in node.cached()


def test_every_page_of_a_listing_is_read(make_node, monkeypatch) -> None:
    monkeypatch.setattr(prewarm_policy, "PAGE_SIZE", 2)
    node = make_node()
    ids = {node.add(size=1000, tags=["golden"]) for _ in range(5)}
    assert node.prewarmer.run().fetched == 5
    assert node.cached() == ids


def test_a_listing_that_fails_changes_nothing(make_node, caplog) -> None:
    node = make_node(prewarm_pin=True)
    image_id = node.add(tags=["golden"])
    node.cache.pins.pin(image_id, "prewarm")

    def refusing(environ: dict[str, Any], start_response: Any) -> Any:
        return Response(status=503, body=b"busy")(environ, start_response)

    node.prewarmer.prefetcher.source.app = refusing
    with caplog.at_level(logging.WARNING, logger="imagecache.jobs.prewarmer"):
        assert node.prewarmer.run() == PrewarmResult(0, 0, 0, 0, 0, 0)
    assert "the image service answered 503 to GET /v2/images?tag=golden" in caplog.text
    assert node.cache.driver.pins() == {image_id: "prewarm"}  # no pin given back on a failed listing


def test_an_edge_node_whose_upstream_refuses_its_token_is_told_why(make_node, caplog) -> None:
    node = make_node(upstream_url="http://127.0.0.1:9")

    def unauthorized(environ: dict[str, Any], start_response: Any) -> Any:
        return Response(status=401, body=b"")(environ, start_response)

    node.prewarmer.prefetcher.source.app = unauthorized
    with caplog.at_level(logging.WARNING, logger="imagecache.jobs.prewarmer"):
        node.prewarmer.run()
    assert "is upstream_auth_token set" in caplog.text


def test_a_fetch_that_fails_is_counted_and_tried_again_next_run(make_node) -> None:
    node = make_node()
    image_id = node.add(tags=["golden"])
    embedded.corrupt_stored_image(node.settings, image_id)
    assert node.prewarmer.run().failed == 1
    assert image_id not in node.cached()


def test_no_policy_no_job(make_node) -> None:
    node = make_node(prewarm_tags=())
    assert node.prewarmer.run() == PrewarmResult(0, 0, 0, 0, 0, 0)
    assert prewarm_jobs(node.cache, node.prewarmer.prefetcher) is None
    jobs = prewarm_jobs(make_node(prewarm_interval=5).cache, node.prewarmer.prefetcher)
    assert jobs is not None and jobs.names == ["prewarm"]
    assert prewarm_jobs(make_node(prewarm_interval=0).cache, node.prewarmer.prefetcher) is None
