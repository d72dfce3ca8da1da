"""Every fill tells its index it started, how far it got, and that it ended, whatever the way in and the result.

The index here is a sqlite driver that also writes down the fill hooks'
calls (and, when asked, fails them as a lost database would): the central
index's own answers to them are tested against PostgreSQL in
tests/unit/central/.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator

import pytest

from imagecache import ImageCache, Settings
from imagecache.cache import FillFailed, FillResult, ImageVerificationError, InvalidImageId
from imagecache.cache.drivers.sqlite import SqliteDriver
from imagecache.cache.fill import is_locked
from imagecache.cache.layout import CacheLayout
from tests.support.waiting import wait_until

from .conftest import Image, make_image


class RecordingDriver(SqliteDriver):
    """sqlite, plus a log of the fill hooks' calls: (hook, image, value, was the writer's lock held)."""

    def __init__(self, layout: CacheLayout, path: str) -> None:
        super().__init__(layout, path)
        self.layout = layout
        self.calls: list[tuple[str, str, object, bool]] = []
        self.failing = False
        self._calls_lock = threading.Lock()

    def _note(self, hook: str, image_id: str, value: object) -> None:
        with self._calls_lock:
            self.calls.append((hook, image_id, value, is_locked(self.layout.incomplete_path(image_id))))
        if self.failing:
            raise ConnectionError("the index is gone")

    def fill_started(self, image_id: str, size: int | None) -> None:
        self._note("started", image_id, size)

    def fill_progress(self, image_id: str, nbytes: int) -> None:
        self._note("progress", image_id, nbytes)

    def fill_ended(self, image_id: str) -> None:
        self._note("ended", image_id, None)

    def peer_sources(self, image_id: str) -> list:  # type: ignore[type-arg]
        self._note("peers", image_id, None)
        return []

    def claim_cluster_fill(self, image_id: str) -> bool:
        self._note("claim", image_id, None)
        return False

    def mark_suspect(self, peer_url: str, seconds: float) -> None:
        if self.failing:
            raise ConnectionError("the index is gone")

    def fleet(self) -> list:  # type: ignore[type-arg]
        if self.failing:
            raise ConnectionError("the index is gone")
        return []

    def hooks(self, image_id: str) -> list[str]:
        return [hook for hook, seen, _, _ in self.calls if seen == image_id]


@pytest.fixture
def cache(tmp_path) -> Iterator[ImageCache]:
    cache = ImageCache(Settings(image_cache_dir=str(tmp_path / "cache"), image_cache_min_free=0))
    cache.driver.close()
    cache.driver = RecordingDriver(cache.layout, cache.settings.image_cache_sqlite_db)
    cache.configure_driver()
    yield cache
    cache.close()


def recorded(cache: ImageCache) -> RecordingDriver:
    assert isinstance(cache.driver, RecordingDriver)
    return cache.driver


def claim(cache: ImageCache, image: Image, **override: object):  # type: ignore[no-untyped-def]
    facts = {"size": len(image.data), "os_hash_value": image.sha512, **override}
    return cache.claim_fill(image.image_id, image.checksum, **facts)


def assert_one_lifecycle(driver: RecordingDriver, image: Image, size: int | None) -> None:
    """started (lock held, expected size), growing progress (lock held), ended once (lock released)."""
    calls = [c for c in driver.calls if c[1] == image.image_id]
    assert calls[0] == ("started", image.image_id, size, True)
    assert calls[-1][0] == "ended" and calls[-1][3] is False
    assert [c[0] for c in calls].count("ended") == 1
    progress = [c[2] for c in calls if c[0] == "progress"]
    assert progress == sorted(progress) and all(c[3] for c in calls if c[0] == "progress")


def test_a_background_fill_reports_its_whole_life_before_anyone_hears_its_result(cache) -> None:
    image = make_image(300_000)
    fill = claim(cache, image)
    heard: list[list[str]] = []
    fill.on_done(lambda claim, result: heard.append(recorded(cache).hooks(image.image_id)))
    reader = fill.start(image.chunks())
    assert b"".join(reader) == image.data
    reader.close()
    fill.thread.join(30)
    assert_one_lifecycle(recorded(cache), image, len(image.data))
    assert [c[2] for c in recorded(cache).calls if c[0] == "progress"][-1] == len(image.data)
    assert heard and heard[0][-1] == "ended"  # a callback may start the next fill: the index is ready for it


@pytest.mark.parametrize("how", ["mismatch", "source fails", "cancelled"])
def test_a_fill_that_does_not_publish_ends_once_too(cache, how: str) -> None:
    image = make_image(200_000)
    if how == "cancelled":
        fill = claim(cache, image)
        fill.cancel()
        fill.cancel()
        assert recorded(cache).hooks(image.image_id) == ["started", "ended"]
        return

    def broken() -> Iterator[bytes]:
        yield image.data[:65536]
        raise OSError("the origin reset the connection")

    fill = claim(cache, image, os_hash_value="0" * 128) if how == "mismatch" else claim(cache, image)
    results: list[FillResult] = []
    fill.on_done(lambda claim, result: results.append(result))
    reader = fill.start(image.chunks() if how == "mismatch" else broken())
    with pytest.raises((ImageVerificationError, FillFailed)):
        b"".join(reader)
    reader.close()
    fill.thread.join(30)
    assert results == [FillResult.FAILED]
    assert_one_lifecycle(recorded(cache), image, len(image.data))


def test_a_tee_reports_its_fill_and_an_abandoned_tee_ends_it(cache) -> None:
    image, left = make_image(300_000), make_image(300_000)
    body = cache.get_caching_iter(image.image_id, image.checksum, image.chunks(), os_hash_value=image.sha512)
    assert b"".join(body) == image.data
    assert_one_lifecycle(recorded(cache), image, None)
    partial = cache.get_caching_iter(left.image_id, left.checksum, left.chunks(), size=len(left.data))
    next(partial)
    next(partial)
    partial.close()  # the client went away
    assert_one_lifecycle(recorded(cache), left, len(left.data))


def test_a_fill_that_stops_while_its_stream_goes_on_ends_when_it_stops(cache) -> None:
    image = make_image(300_000)
    # The metadata says fewer bytes than come: the cache stops keeping them, the client still gets them all.
    body = cache.get_caching_iter(image.image_id, image.checksum, image.chunks(), size=100_000)
    got = bytearray()
    ended_while_streaming = False
    for chunk in body:
        got += chunk
        ended_while_streaming |= "ended" in recorded(cache).hooks(image.image_id)
    assert bytes(got) == image.data and ended_while_streaming
    assert_one_lifecycle(recorded(cache), image, 100_000)


def test_a_failing_index_never_fails_a_fill(cache, caplog: pytest.LogCaptureFixture) -> None:
    recorded(cache).failing = True
    image, copied = make_image(300_000), make_image(300_000)
    with caplog.at_level(logging.WARNING, logger="imagecache.cache.pipeline"):
        fill = claim(cache, image)
        reader = fill.start(image.chunks())
        assert b"".join(reader) == image.data
        reader.close()
        fill.thread.join(30)
        assert cache.cache_image_iter(copied.image_id, copied.chunks(), copied.checksum) is True
    assert cache.is_cached(image.image_id) and cache.is_cached(copied.image_id)
    for one in (image, copied):
        lines = [r.getMessage() for r in caplog.records if one.image_id in r.getMessage()]
        assert len(lines) == 3, lines  # started, progress (once, however many chunks), ended
        assert all("\n" not in line for line in lines)


def test_the_cache_asks_its_index_about_peers_for_a_fill(cache) -> None:
    image_id = str(uuid.uuid4())
    assert cache.peer_sources(image_id.upper()) == []
    assert cache.claim_cluster_fill(image_id) is False
    assert recorded(cache).hooks(image_id) == ["peers", "claim"]  # canonical ids only
    cache.mark_suspect("http://liar:9292", 600)
    assert cache.fleet() == []
    with pytest.raises(InvalidImageId):
        cache.peer_sources("../etc/passwd")


def test_a_failing_index_means_no_peers_and_the_claim_won(cache, caplog: pytest.LogCaptureFixture) -> None:
    recorded(cache).failing = True
    image_id = str(uuid.uuid4())
    with caplog.at_level(logging.ERROR, logger="imagecache.cache.core"):
        assert cache.peer_sources(image_id) == []
        assert cache.claim_cluster_fill(image_id) is True
        cache.mark_suspect("http://liar:9292", 600)
    assert len(caplog.records) == 3
    with pytest.raises(ConnectionError):
        cache.fleet()  # an operator's question gets the failure


def test_a_node_alone_has_no_peers_and_wins_every_claim(tmp_path) -> None:
    cache = ImageCache(Settings(image_cache_dir=str(tmp_path / "cache")))
    try:
        image_id = str(uuid.uuid4())
        assert cache.peer_sources(image_id) == [] and cache.claim_cluster_fill(image_id) is True
        cache.mark_suspect("http://peer:9292", 600)
        assert cache.fleet() == []
    finally:
        cache.close()


def test_progress_is_reported_as_the_bytes_land(cache) -> None:
    image = make_image(400_000)
    gate = threading.Event()

    def gated() -> Iterator[bytes]:
        yield image.data[:65536]
        gate.wait(30)
        yield image.data[65536:]

    fill = claim(cache, image)
    reader = fill.start(gated())
    wait_until(lambda: ("progress", image.image_id, 65536, True) in recorded(cache).calls, "the first chunk reported")
    gate.set()
    assert b"".join(reader) == image.data
    reader.close()
    fill.thread.join(30)
    assert_one_lifecycle(recorded(cache), image, len(image.data))
