"""The prefetcher: verified fetches through the image app, the queue, background fetches."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from imagecache import ImageCache, Settings
from imagecache.cache import InvalidImageId
from imagecache.config import ConfigError
from imagecache.http.context import ENVIRON_KEY, RequestContext
from imagecache.jobs import CacheApp
from imagecache.jobs.prefetcher import Prefetcher, RunResult, caller_environ
from imagecache.wsgi.image_source import ImageSource
from tests.support.waiting import wait_until
from tests.unit.jobs import embedded
from tests.unit.jobs.conftest import ADMIN
from tests.unit.wsgi.fake_images import FakeImage


def cached_bytes(cache: ImageCache, image: FakeImage) -> bytes:
    with open(cache.layout.path(image.image_id), "rb") as fh:
        return fh.read()


def queue(cache: ImageCache, *images: FakeImage) -> None:
    for image in images:
        assert cache.queue_image(image.image_id)


# -- one image ---------------------------------------------------------------------


def test_fetch_caches_the_verified_image_and_dequeues_it(cache, service, prefetcher) -> None:
    image = service.add()
    queue(cache, image)
    assert prefetcher.fetch_image_into_cache(image.image_id) is True
    assert cached_bytes(cache, image) == image.data
    assert cache.get_queued_images() == []
    record = cache.get_cached_image(image.image_id)
    assert record is not None and record.checksum == image.metadata()["checksum"]
    assert record.os_hash_value == image.metadata()["os_hash_value"]


def test_fetch_acts_as_the_given_context_with_its_token(cache, service, prefetcher) -> None:
    image = service.add()
    prefetcher.fetch_image_into_cache(image.image_id)
    assert service.tokens_seen and set(service.tokens_seen) == {"admin-token"}


def test_caller_environ_carries_context_and_token() -> None:
    assert caller_environ(ADMIN) == {ENVIRON_KEY: ADMIN, "HTTP_X_AUTH_TOKEN": "admin-token"}
    no_token = RequestContext.admin()
    assert caller_environ(no_token) == {ENVIRON_KEY: no_token}


def test_an_image_already_cached_is_dequeued_without_fetching(cache, service, prefetcher) -> None:
    image = service.add()
    assert prefetcher.fetch_image_into_cache(image.image_id)
    cache.driver.queue(image.image_id)  # queued again behind the cache's back
    service.data_requests.clear()
    assert prefetcher.fetch_image_into_cache(image.image_id) is True
    assert service.data_requests == []
    assert cache.get_queued_images() == []


@pytest.mark.parametrize(
    "breakage",
    [
        pytest.param({"status": "queued"}, id="not-active"),
        pytest.param({"status": "deactivated"}, id="deactivated"),
        pytest.param({"data_status": 500}, id="data-500"),
        pytest.param({"data_status": 403}, id="data-403"),
        pytest.param({"fail_after": 64 * 1024}, id="stream-dies"),
    ],
)
def test_a_failed_fetch_leaves_the_image_queued_and_uncached(
    cache, service, prefetcher, breakage: dict[str, Any]
) -> None:
    image = service.add(**breakage)
    queue(cache, image)
    assert prefetcher.fetch_image_into_cache(image.image_id) is False
    assert not cache.is_cached(image.image_id)
    assert cache.get_queued_images() == [image.image_id]
    assert os.listdir(cache.layout.incomplete_dir) == []


def test_an_unknown_image_stays_queued(cache, prefetcher) -> None:
    image_id = "3f6f8b0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
    cache.queue_image(image_id)
    assert prefetcher.fetch_image_into_cache(image_id) is False
    assert cache.get_queued_images() == [image_id]


def test_an_image_the_context_cannot_see_is_not_fetched(cache, service) -> None:
    service.admin_sees_all = False
    image = service.add(owner="p-other")
    prefetcher = Prefetcher(cache, ImageSource(service), ADMIN)
    assert prefetcher.fetch_image_into_cache(image.image_id) is False
    assert service.data_requests == []


@pytest.mark.parametrize(
    "served",
    [
        pytest.param(lambda data: data[:-1] + bytes([data[-1] ^ 1]), id="one-bit-flipped"),
        pytest.param(lambda data: data[:-10], id="short"),
        pytest.param(lambda data: data + b"x", id="long"),
    ],
)
def test_a_fetch_that_fails_verification_goes_to_invalid_and_stays_queued(cache, service, prefetcher, served) -> None:
    image = service.add()
    image.served = served(image.data)
    queue(cache, image)
    assert prefetcher.fetch_image_into_cache(image.image_id) is False
    assert not cache.is_cached(image.image_id)
    assert cache.get_queued_images() == [image.image_id]
    if len(image.served) <= len(image.data):  # a longer body is dropped before it ends
        assert os.listdir(cache.layout.invalid_dir) == [image.image_id]


def test_an_invalid_id_is_refused(prefetcher) -> None:
    with pytest.raises(InvalidImageId):
        prefetcher.fetch_image_into_cache("../../etc/passwd")
    with pytest.raises(InvalidImageId):
        prefetcher.fetch_soon("not-a-uuid")


# -- the queue -------------------------------------------------------------------------


def test_run_fetches_the_queue_and_reports_failures(cache, service, prefetcher) -> None:
    good = [service.add(), service.add()]
    bad = service.add()
    bad.served = b"not the image"
    queue(cache, good[0], bad, good[1])
    assert prefetcher.run() == RunResult(fetched=2, failed=1)
    assert all(cache.is_cached(image.image_id) for image in good)
    assert cache.get_queued_images() == [bad.image_id]


def test_run_with_an_empty_queue(prefetcher) -> None:
    assert prefetcher.run() == (0, 0)


def test_run_never_raises(cache, service) -> None:
    class Exploding(ImageSource):
        def metadata(self, environ: Any, image_id: str) -> Any:
            raise RuntimeError("boom")

    image = service.add()
    queue(cache, image)
    prefetcher = Prefetcher(cache, Exploding(service), ADMIN)
    assert prefetcher.run() == (0, 1)
    assert cache.get_queued_images() == [image.image_id]


# -- in the background -------------------------------------------------------------------


def test_fetch_soon_caches_in_the_background(cache, service, prefetcher) -> None:
    image = service.add()
    queue(cache, image)
    assert prefetcher.fetch_soon(image.image_id) is True
    assert prefetcher.wait_idle(timeout=30)
    assert cached_bytes(cache, image) == image.data
    assert cache.get_queued_images() == []


def test_one_fetch_per_image_at_a_time(cache, service, prefetcher) -> None:
    gate = threading.Event()
    image = service.add(gate=gate)
    assert prefetcher.fetch_soon(image.image_id) is True
    assert prefetcher.fetch_soon(image.image_id) is False
    assert prefetcher.wait_idle(timeout=0) is False  # the gate holds the fetch: no need to wait and see
    assert prefetcher.run() == (0, 0)  # the background fetch has it
    gate.set()
    assert prefetcher.wait_idle(timeout=30)
    assert service.data_requests == [image.image_id]
    assert cache.is_cached(image.image_id)
    assert prefetcher.fetch_soon(image.image_id) is True  # done: may be asked again


def test_background_fetches_are_bounded_and_run_on_daemon_threads(cache, service) -> None:
    prefetcher = Prefetcher(cache, ImageSource(service), ADMIN, max_concurrent=2)
    gate = threading.Event()
    images = [service.add(gate=gate) for _ in range(5)]
    earlier = set(threading.enumerate())  # other tests' workers may still be on their way out
    for image in images:
        assert prefetcher.fetch_soon(image.image_id)
    # Every worker these five will ever get was started by fetch_soon, before this wait.
    workers = [t for t in threading.enumerate() if t.name == "imagecache-prefetch" and t not in earlier]
    wait_until(lambda: service.in_flight >= 2, "two fetches to reach the image service",
               describe=lambda: f"{service.in_flight} in flight")
    # Both workers are held at the gate, and no third one exists: two fetches run, three wait.
    assert len(workers) == 2 and all(t.daemon for t in workers)
    assert service.in_flight == 2 and len(service.data_requests) == 2
    gate.set()
    assert prefetcher.wait_idle(timeout=30)
    assert service.max_in_flight <= 2
    assert all(cache.is_cached(image.image_id) for image in images)


def test_a_background_fetch_uses_the_context_it_was_given(cache, service, prefetcher) -> None:
    image = service.add()
    prefetcher.fetch_soon(image.image_id, RequestContext.admin(project_id="p-x", auth_token="caller-token"))
    assert prefetcher.wait_idle(timeout=30)
    assert set(service.tokens_seen) == {"caller-token"}


def test_a_failing_background_fetch_is_logged_not_raised(cache, service, prefetcher, caplog) -> None:
    image = service.add()
    image.served = b"garbage"
    queue(cache, image)
    prefetcher.fetch_soon(image.image_id)
    assert prefetcher.wait_idle(timeout=30)
    assert cache.get_queued_images() == [image.image_id]
    assert any("failed verification" in message for message in caplog.messages)


def test_max_concurrent_must_be_positive(cache, service) -> None:
    with pytest.raises(ValueError, match="max_concurrent"):
        Prefetcher(cache, ImageSource(service), ADMIN, max_concurrent=0)


def test_an_error_body_is_closed(cache, service) -> None:
    """The app's response is released (an upstream connection goes back to its pool)."""
    image = service.add()
    closed: list[bool] = []

    class ErrorBody:
        def __iter__(self) -> Iterator[bytes]:
            yield b'{"message": "backend trouble"}'

        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["PATH_INFO"].endswith("/file"):
            start_response("503 Service Unavailable", [("Content-Type", "application/json")])
            return ErrorBody()
        return service(environ, start_response)

    assert Prefetcher(cache, ImageSource(app), ADMIN).fetch_image_into_cache(image.image_id) is False
    assert closed == [True]


# -- one of the jobs -----------------------------------------------------------------------


def test_a_prefetched_image_is_then_a_cache_hit(cache, service, prefetcher) -> None:
    image = service.add()
    queue(cache, image)
    assert prefetcher.run() == (1, 0)
    service.data_requests.clear()
    with cache.open_for_read(image.image_id) as fh:
        assert fh.read() == image.data
    assert cache.get_hit_count(image.image_id) == 1
    assert service.data_requests == []


def test_fetch_queued_reports_each_image(cache, service, prefetcher) -> None:
    good, bad = service.add(), service.add(data_status=500)
    queue(cache, good, bad)
    assert list(prefetcher.fetch_queued()) == [(good.image_id, True), (bad.image_id, False)]


def test_progress_hears_every_chunk(cache, service, prefetcher) -> None:
    image = service.add(data=b"z" * 300_000)
    queue(cache, image)
    seen: list[tuple[str, int, int | None]] = []
    assert list(prefetcher.fetch_queued(progress=lambda *event: seen.append(event))) == [(image.image_id, True)]
    assert seen[0] == (image.image_id, 0, 300_000)
    assert seen[-1] == (image.image_id, 300_000, 300_000)
    done = [event[1] for event in seen]
    assert done == sorted(done) and len(seen) == 1 + 5  # 64 KiB chunks


def test_the_prefetcher_is_a_cache_app_that_leaves_a_shared_cache_open(cache, prefetcher, monkeypatch) -> None:
    closed: list[ImageCache] = []

    def close(self: ImageCache) -> None:
        closed.append(self)

    monkeypatch.setattr(ImageCache, "close", close)
    assert isinstance(prefetcher, CacheApp) and prefetcher.settings is cache.settings
    prefetcher.close()
    assert closed == []


# -- from settings alone: the embedded image service in-process --------------------------


@pytest.fixture
def from_settings(settings: Settings) -> Iterator[Prefetcher]:
    prefetcher = Prefetcher.for_settings(settings)
    yield prefetcher
    prefetcher.close()


def test_for_settings_reads_the_embedded_service_as_an_admin(settings, from_settings) -> None:
    data = b"embedded image " * 10_000
    image_id = embedded.add_image(settings, data)
    assert from_settings.cache.queue_image(image_id)
    assert from_settings.context.is_admin
    assert from_settings.run() == (1, 0)
    with from_settings.cache.open_for_read(image_id) as fh:
        assert fh.read() == data
    assert from_settings.cache.get_queued_images() == []


def test_for_settings_bad_checksum_from_the_store_stays_queued(settings, from_settings) -> None:
    image_id = embedded.add_image(settings)
    embedded.corrupt_stored_image(settings, image_id)
    from_settings.cache.queue_image(image_id)
    assert from_settings.run() == (0, 1)
    assert not from_settings.cache.is_cached(image_id)
    assert from_settings.cache.get_queued_images() == [image_id]
    assert os.listdir(from_settings.cache.layout.invalid_dir) == [image_id]


def test_for_settings_missing_image_stays_queued(settings, from_settings) -> None:
    image_id = embedded.add_image(settings)
    embedded.delete_stored_image(settings, image_id)
    from_settings.cache.queue_image(image_id)
    assert from_settings.run() == (0, 1)
    assert from_settings.cache.get_queued_images() == [image_id]


def test_for_settings_closes_the_cache_it_opened(settings, monkeypatch) -> None:
    closed: list[ImageCache] = []

    def close(self: ImageCache) -> None:
        closed.append(self)

    monkeypatch.setattr(ImageCache, "close", close)
    with Prefetcher.for_settings(settings) as prefetcher:
        pass
    assert closed == [prefetcher.cache]


def test_for_settings_shares_a_given_cache_and_app(cache, service, settings) -> None:
    image = service.add()
    queue(cache, image)
    with Prefetcher.for_settings(settings, cache=cache, app=service, context=ADMIN) as prefetcher:
        assert prefetcher.cache is cache
        assert prefetcher.run() == (1, 0)
    assert set(service.tokens_seen) == {"admin-token"}
    assert cache.is_cached(image.image_id)  # still open: it was not the prefetcher's to close


def test_for_settings_reads_the_upstream_in_edge_mode(settings) -> None:
    from imagecache.upstream import UpstreamApp

    edge = settings.replace(upstream_url="http://glance:9292", upstream_auth_token="svc")
    with Prefetcher.for_settings(edge) as prefetcher:
        assert isinstance(prefetcher.source.app, UpstreamApp)
        assert prefetcher.context.auth_token == "svc" and prefetcher.context.is_admin
    with pytest.raises(ConfigError, match="upstream_url"):
        Prefetcher.for_settings(settings.replace(upstream_url="ftp://glance"))
