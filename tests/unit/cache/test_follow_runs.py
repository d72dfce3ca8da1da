"""TailReader.next_run: a fill followed without blocking (an event loop's view), then finished by pieces().

The loop's contract: runs only of bytes on disk, never the image's last byte,
WAIT while the writer is still at it (with a wake-up on its next change),
HANDOFF once the fill is over or cannot be waited for without blocking.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator

import pytest

from imagecache import ImageCache, Settings
from imagecache.cache import ImageVerificationError
from imagecache.cache.progress import ProgressWatch
from imagecache.cache.tail import Edge, TailReader

from .conftest import Image, make_image


def _cache(tmp_path) -> ImageCache:
    return ImageCache(Settings(image_cache_dir=str(tmp_path / "c"), image_cache_min_free=0))


def _paced(image: Image, chunk: int = 32768, pause: float = 0.002) -> Iterator[bytes]:
    for start in range(0, len(image.data), chunk):
        time.sleep(pause)
        yield image.data[start:start + chunk]


def _follow_like_a_loop(reader: TailReader) -> tuple[bytearray, int, int]:
    """(bytes read from next_run's runs, how many waits, how many of them were woken)."""
    got = bytearray()
    waits = woken = 0
    while True:
        run = reader.next_run()
        if run is Edge.HANDOFF:
            return got, waits, woken
        if run is Edge.WAIT:
            waits += 1
            changed = threading.Event()
            if reader.call_on_change(changed.set):
                assert changed.wait(30), "no wake-up within 30 s of parking on a live fill"
                woken += 1
            continue
        offset, length = run
        assert offset == len(got), "runs come in order, without gaps"
        got += os.pread(reader.fd, length, offset)


def _rest(reader: TailReader) -> bytes:
    return b"".join(os.pread(reader.fd, length, offset) for offset, length in reader.pieces())


def _claim(cache: ImageCache, image: Image, **override: object):
    facts = {"size": len(image.data), "os_hash_value": image.sha512, **override}
    return cache.claim_fill(image.image_id, image.checksum, **facts)


@pytest.mark.parametrize("who", ["claimant", "follower"])
def test_runs_then_pieces_deliver_the_image_and_waits_are_woken(tmp_path, who: str) -> None:
    cache = _cache(tmp_path)
    if cache.progress.watch(str(tmp_path)) is None:
        pytest.skip("inotify is not available here: readers are handed off to poll on a thread")
    image = make_image(2 << 20)
    fill = _claim(cache, image)
    leader = fill.start(_paced(image))
    reader = leader if who == "claimant" else cache.follow(image.image_id, len(image.data))
    assert reader is not None
    try:
        got, waits, woken = _follow_like_a_loop(reader)
        assert len(got) <= len(image.data) - 1, "the last byte is never a run"
        assert waits >= 1 and woken >= 1, "a follower of a paced fill caught up and was woken"
        got += _rest(reader)
    finally:
        reader.close()
        if reader is not leader:
            leader.close()
    assert bytes(got) == image.data
    fill.thread.join(30)
    assert cache.is_cached(image.image_id)


def test_a_reader_without_a_size_or_a_watch_is_handed_off_at_once(tmp_path) -> None:
    cache = _cache(tmp_path)
    image = make_image(1 << 20)
    release = threading.Event()

    def held() -> Iterator[bytes]:
        yield image.data[:1000]
        release.wait(30)
        yield image.data[1000:]

    fill = _claim(cache, image)
    leader = fill.start(held())
    unsized = cache.follow(image.image_id)
    unwatched = TailReader(cache.layout, image.image_id, os.dup(leader.fd), len(image.data), leader._mark, None)
    try:
        assert unsized is not None and unsized.next_run() is Edge.HANDOFF
        assert unwatched.next_run() is Edge.HANDOFF
    finally:
        release.set()
        for reader in (unsized, leader):
            if reader is not None:
                reader.close()
        os.close(unwatched.fd)
    fill.thread.join(30)


def test_a_failed_verification_is_handed_off_and_raised_by_pieces(tmp_path) -> None:
    cache = _cache(tmp_path)
    image = make_image(1 << 20)
    fill = _claim(cache, image, os_hash_value="0" * 128)  # the bytes cannot match this
    reader = fill.start(_paced(image))
    try:
        got, _, _ = _follow_like_a_loop(reader)
        assert len(got) <= len(image.data) - 1
        with pytest.raises(ImageVerificationError):
            _rest(reader)
    finally:
        reader.close()
    fill.thread.join(30)
    assert not cache.is_cached(image.image_id)


def test_call_on_change_calls_once_and_refuses_a_stale_mark(tmp_path) -> None:
    progress = ProgressWatch()
    try:
        path = tmp_path / "incomplete"
        path.write_bytes(b"")
        watch = progress.watch(str(path))
        if watch is None:
            pytest.skip("inotify is not available here")
        calls: list[int] = []
        called = threading.Event()
        mark = watch.mark()
        assert watch.call_on_change(mark, lambda: (calls.append(1), called.set()))
        with open(path, "ab") as file:
            file.write(b"x")
        assert called.wait(30)
        assert watch.call_on_change(mark, calls.append) is False  # changed since that mark: look again
        fresh = watch.mark()
        second = threading.Event()
        assert watch.call_on_change(fresh, second.set)
        with open(path, "ab") as file:
            file.write(b"y")
        assert second.wait(30)
        assert calls == [1], "a callback is called once, not at every later change"
        watch.close()
    finally:
        progress.close()


def test_a_follower_of_a_losing_claimants_empty_file_gets_the_published_image(tmp_path) -> None:
    """The instant after a publish, a losing claimant creates, locks and unlinks an empty incomplete file;
    a follower that opened it then must not fetch the whole image again: it reads the published one."""
    cache = _cache(tmp_path)
    image = make_image(1 << 20)
    fill = _claim(cache, image)
    b"".join(fill.start(iter([image.data])))
    fill.thread.join(30)
    assert cache.is_cached(image.image_id)
    path = cache.layout.incomplete_path(image.image_id)
    phantom = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(phantom, fcntl.LOCK_EX)
    reader = cache.follow(image.image_id, len(image.data))
    assert reader is not None, "the follower found the loser's file locked"
    os.unlink(path)
    os.close(phantom)
    try:
        assert reader.next_run() is Edge.HANDOFF
        assert _rest(reader) == image.data
    finally:
        reader.close()


def test_on_done_hears_the_result_and_whether_verification_failed(tmp_path) -> None:
    cache = _cache(tmp_path)
    heard: list[tuple[bool, object]] = []
    for image, facts in ((make_image(1 << 16), {}), (make_image(1 << 16), {"os_hash_value": "0" * 128})):
        fill = _claim(cache, image, **facts)
        fill.on_done(lambda claim, result: heard.append((claim.failed_verification, result)))
        reader = fill.start(iter([image.data]))
        fill.thread.join(30)
        reader.close()
    assert [(invalid, getattr(result, "value", result)) for invalid, result in heard] == [
        (False, "completed"), (True, "failed")]
