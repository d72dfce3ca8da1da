"""Single-flight fills: one background writer, readers tailing it from threads and processes."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from imagecache import ImageCache, Settings
from imagecache.cache import FillFailed, ImageVerificationError
from imagecache.cache.flight import readers_path
from tests.support.waiting import WaitTimeout, wait_until

from .conftest import Image, make_image


def _settings(cache_dir: str, **extra: object) -> Settings:
    return Settings(image_cache_dir=cache_dir, image_cache_min_free=0, **extra)


def paced(image: Image, chunk: int = 65536, pause: float = 0.001) -> Iterator[bytes]:
    for start in range(0, len(image.data), chunk):
        time.sleep(pause)
        yield image.data[start:start + chunk]


def claim(cache: ImageCache, image: Image, **override: object):
    facts = {"size": len(image.data), "os_hash_value": image.sha512, **override}
    return cache.claim_fill(image.image_id, image.checksum, **facts)


def read_all(reader) -> bytes:
    try:
        return b"".join(reader)
    finally:
        reader.close()


def test_one_fill_serves_the_claimant_and_every_follower(tmp_path):
    cache = ImageCache(_settings(str(tmp_path / "c")))
    image = make_image(3 << 20)
    reads = {"n": 0}

    def counted() -> Iterator[bytes]:
        for chunk in paced(image):
            reads["n"] += len(chunk)
            yield chunk

    fill = claim(cache, image)
    assert fill is not None
    assert claim(cache, image) is None  # one writer per image
    leader = fill.start(counted())
    followers = [cache.follow(image.image_id, len(image.data)) for _ in range(6)]
    assert all(f is not None for f in followers)
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda r=r: results.append(read_all(r))) for r in [leader, *followers]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [image.data] * 7
    assert reads["n"] == len(image.data)
    fill.thread.join(30)
    assert cache.is_cached(image.image_id)
    assert cache.follow(image.image_id) is None  # nothing left to follow
    assert os.listdir(cache.layout.incomplete_dir) == []  # readers file gone too
    assert cache.metrics.fills.labels(result="completed")._value.get() == 1


def _follow_in_process(cache_dir: str, image_id: str, size: int, ready, results) -> None:
    cache = ImageCache(_settings(cache_dir))
    try:
        reader = wait_until(lambda: cache.follow(image_id, size), f"a fill of {image_id} to follow")
    except WaitTimeout:
        reader = None
    ready.set()
    try:
        results.put(("ok", read_all(reader)) if reader is not None else ("no fill", b""))
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        results.put((type(exc).__name__, b""))


def test_followers_in_other_processes_tail_the_file(tmp_path):
    cache_dir = str(tmp_path / "c")
    cache = ImageCache(_settings(cache_dir))
    image = make_image(2 << 20)
    fill = claim(cache, image)
    gate = threading.Event()

    def gated() -> Iterator[bytes]:
        yield image.data[:65536]
        gate.wait(30)  # hold the fill open until every process follows it
        yield from paced(Image(image.image_id, image.data[65536:]))

    leader = fill.start(gated())
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    readies = [ctx.Event() for _ in range(3)]
    procs = [
        ctx.Process(target=_follow_in_process, args=(cache_dir, image.image_id, len(image.data), ready, results))
        for ready in readies
    ]
    for proc in procs:
        proc.start()
    assert all(ready.wait(60) for ready in readies)
    gate.set()
    assert read_all(leader) == image.data
    outcomes = [results.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(30)
    assert outcomes == [("ok", image.data)] * 3


def test_a_mismatch_aborts_every_reader_before_the_last_byte(tmp_path):
    cache = ImageCache(_settings(str(tmp_path / "c")))
    image = make_image(1 << 20)
    fill = claim(cache, image, os_hash_value="0" * 128)  # the bytes cannot match this
    leader = fill.start(paced(image))
    follower = cache.follow(image.image_id, len(image.data))
    for reader in (leader, follower):
        got = bytearray()
        with pytest.raises(ImageVerificationError):
            for chunk in reader:
                got += chunk
        reader.close()
        assert len(got) == len(image.data) - 1  # everything but the last byte
    fill.thread.join(30)
    assert not cache.is_cached(image.image_id)
    assert os.path.exists(cache.layout.invalid_path(image.image_id))
    assert cache.metrics.fills.labels(result="failed")._value.get() == 1


def test_the_last_byte_waits_for_the_verification(tmp_path):
    cache = ImageCache(_settings(str(tmp_path / "c")))
    image = make_image(300_000)
    release = threading.Event()

    def held() -> Iterator[bytes]:
        yield image.data
        release.wait(30)  # everything written, verification not begun

    reader = claim(cache, image).start(held())
    got = bytearray()
    done = threading.Event()
    # How much the consumer held each time the reader looked whether the fill was verified yet.
    held_when_asked: list[int] = []
    ask = reader._state

    def asking() -> object:
        held_when_asked.append(len(got))
        return ask()

    reader._state = asking

    def consume() -> None:
        for chunk in reader:
            got.extend(chunk)
        done.set()

    thread = threading.Thread(target=consume)
    thread.start()
    # Proof that enough time passed for the last byte to go out: the reader asked for the verdict
    # with at least all but the last byte delivered (or it finished, which the assertion catches).
    wait_until(lambda: done.is_set() or max(held_when_asked, default=0) >= len(image.data) - 1,
               "the reader to hold back the last byte and ask for the verdict",
               describe=lambda: f"{len(got)} bytes delivered, asked at {held_when_asked[-5:]}")
    assert len(got) == len(image.data) - 1 and not done.is_set()
    release.set()
    thread.join(30)
    reader.close()
    assert bytes(got) == image.data


def _fill_then_hang(cache_dir: str, image: Image, halfway) -> None:
    cache = ImageCache(_settings(cache_dir))

    def chunks() -> Iterator[bytes]:
        yield image.data[: len(image.data) // 2]
        halfway.set()
        time.sleep(3600)  # killed here
        yield image.data[len(image.data) // 2 :]

    reader = claim(cache, image).start(chunks())
    read_all(reader)


def test_a_killed_writer_fails_its_followers_with_their_offset(tmp_path):
    cache_dir = str(tmp_path / "c")
    cache = ImageCache(_settings(cache_dir))
    image = make_image(1 << 20)
    ctx = multiprocessing.get_context("spawn")
    halfway = ctx.Event()
    writer = ctx.Process(target=_fill_then_hang, args=(cache_dir, image, halfway))
    writer.start()
    assert halfway.wait(60)
    follower = cache.follow(image.image_id, len(image.data))
    assert follower is not None
    got = bytearray()
    iterator = iter(follower)
    while len(got) < len(image.data) // 2:
        got += next(iterator)
    os.kill(writer.pid, signal.SIGKILL)
    writer.join()
    started = time.monotonic()
    with pytest.raises(FillFailed) as failure:
        for chunk in iterator:
            got += chunk
    assert time.monotonic() - started < 5
    follower.close()
    assert failure.value.offset == len(got) == len(image.data) // 2
    assert bytes(got) == image.data[: len(got)]
    # The next claim starts afresh on a new file, and publishes the right bytes.
    assert not cache.is_cached(image.image_id)
    fill = claim(cache, image)
    assert fill is not None
    assert read_all(fill.start(iter([image.data]))) == image.data
    fill.thread.join(30)
    assert cache.is_cached(image.image_id)


def test_a_write_failure_sends_readers_elsewhere_and_keeps_nothing(tmp_path):
    cache = ImageCache(_settings(str(tmp_path / "c")))
    image = make_image(1 << 20)
    # The source sends more than the metadata's size: the fill stops at the limit.
    fill = claim(cache, image, size=len(image.data) // 2)
    reader = fill.start(paced(image))
    with pytest.raises(FillFailed) as failure:
        read_all(reader)
    assert failure.value.offset <= len(image.data) // 2
    fill.thread.join(30)
    assert not cache.is_cached(image.image_id)
    assert os.listdir(cache.layout.incomplete_dir) == []


def test_a_fill_nobody_reads_is_abandoned(tmp_path, monkeypatch):
    monkeypatch.setattr("imagecache.cache.flight.READER_CHECK_INTERVAL", 0.01)
    cache = ImageCache(_settings(str(tmp_path / "c"), fill_abandon_after=0.05))
    image = make_image(4 << 20)
    fill = claim(cache, image)
    reader = fill.start(paced(image, chunk=16384, pause=0.002))
    next(iter(reader))
    reader.close()  # the only client went away
    fill.thread.join(30)
    assert not cache.is_cached(image.image_id)
    assert os.listdir(cache.layout.incomplete_dir) == []
    assert cache.metrics.fills.labels(result="abandoned")._value.get() == 1


def test_a_fill_with_a_reader_left_is_not_abandoned(tmp_path, monkeypatch):
    monkeypatch.setattr("imagecache.cache.flight.READER_CHECK_INTERVAL", 0.01)
    cache = ImageCache(_settings(str(tmp_path / "c"), fill_abandon_after=0.05))
    image = make_image(2 << 20)
    fill = claim(cache, image)
    leader = fill.start(paced(image, chunk=16384, pause=0.002))
    follower = cache.follow(image.image_id, len(image.data))
    leader.close()  # one client left; the other is slow but still there
    assert os.path.exists(readers_path(cache.layout, image.image_id))
    got = bytearray()
    for chunk in follower:
        got += chunk
        time.sleep(0.01)
    follower.close()
    assert bytes(got) == image.data
    fill.thread.join(30)
    assert cache.is_cached(image.image_id)


def test_cancel_releases_the_claim(tmp_path):
    cache = ImageCache(_settings(str(tmp_path / "c")))
    image = make_image()
    fill = claim(cache, image)
    fill.cancel()
    assert not cache.is_being_cached(image.image_id)
    assert claim(cache, image) is not None


def test_clean_and_reconcile_never_remove_a_live_fill_however_old(tmp_path):
    cache = ImageCache(_settings(str(tmp_path / "c"), image_cache_stall_time=1))
    image = make_image(1 << 20)
    gate = threading.Event()

    def gated() -> Iterator[bytes]:
        yield image.data[:1000]
        gate.wait(30)
        yield image.data[1000:]

    fill = claim(cache, image)
    reader = fill.start(gated())
    path = cache.layout.incomplete_path(image.image_id)
    wait_until(lambda: os.path.getsize(path) >= 1000, "the fill to write its first 1000 bytes")
    os.utime(path, (1, 1))  # untouched since 1970, as far as mtime says
    assert cache.clean(stall_time=0).stalled_removed == 0
    assert cache.reconcile().stalled_removed == 0
    gate.set()
    assert read_all(reader) == image.data
    fill.thread.join(30)
    assert cache.is_cached(image.image_id)


def test_readers_finish_only_once_the_image_is_published_and_listed(tmp_path):
    """Read-your-writes: whoever has the last byte finds the image cached and listed."""
    cache = ImageCache(_settings(str(tmp_path / "c")))
    image = make_image(1 << 20)
    results: dict[str, bytes] = {}
    with cache.layout.publish_lock():  # the publish (make room, rename, index) cannot happen yet
        fill = claim(cache, image)
        reader = fill.start(iter([image.data]))
        follower = cache.follow(image.image_id, len(image.data))
        threads = [
            threading.Thread(target=lambda name=name, r=r: results.__setitem__(name, read_all(r)))
            for name, r in (("reader", reader), ("follower", follower))
        ]
        for thread in threads:
            thread.start()
        wait_until(lambda: reader.offset == follower.offset == len(image.data) - 1, "both to hold the last byte")
        assert not results  # the last byte waits for the publish, which waits for us
        assert not cache.is_cached(image.image_id)
    for thread in threads:
        thread.join(30)
    assert results == {"reader": image.data, "follower": image.data}
    # No waiting here: the readers ended after the image was published and indexed.
    assert cache.is_cached(image.image_id)
    assert [record.image_id for record in cache.get_cached_images()] == [image.image_id]
    assert os.stat(cache.layout.path(image.image_id)).st_mode & 0o777 == 0o644
    fill.thread.join(10)


def test_clean_removes_the_records_a_crashed_writer_left_and_nothing_a_fill_or_reader_uses(tmp_path):
    import fcntl
    import uuid

    from imagecache.cache.fill_size import size_path

    cache = ImageCache(_settings(str(tmp_path / "c"), image_cache_stall_time=1))
    layout = cache.layout
    crashed, held, live = (str(uuid.uuid4()) for _ in range(3))
    os.makedirs(layout.incomplete_dir, exist_ok=True)
    records = {
        "crashed size": size_path(layout, crashed), "crashed readers": readers_path(layout, crashed),
        "crashed partial size": size_path(layout, crashed) + ".new",
        "held readers": readers_path(layout, held), "live size": size_path(layout, live),
    }
    for path in records.values():
        with open(path, "w") as fh:
            fh.write("123")
        os.utime(path, (time.time() - 60, time.time() - 60))  # a minute ago
    writer = os.open(layout.incomplete_path(live), os.O_WRONLY | os.O_CREAT)
    fcntl.flock(writer, fcntl.LOCK_EX)  # a live fill of ``live``: its writer holds the lock
    unrelated = os.path.join(layout.incomplete_dir, "not-an-image.size")
    open(unrelated, "w").close()
    reader = os.open(records["held readers"], os.O_RDONLY)
    try:
        fcntl.flock(reader, fcntl.LOCK_SH)  # a reader (another process, as far as flock can tell) holds it
        cache.clean(stall_time=3600)
        assert all(os.path.exists(path) for path in records.values()), "records touched within stall_time stay"
        cache.clean(stall_time=0)
    finally:
        os.close(reader)
        os.close(writer)
    left = {name for name, path in records.items() if os.path.exists(path)}
    assert left == {"held readers", "live size"}
    assert os.path.exists(unrelated), "files not named after an image are not the cache's to remove"
