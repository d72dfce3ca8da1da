"""Writers racing, writers dying, disks filling, indexes drifting from files."""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
import threading
import time
import uuid

import pytest

from imagecache import ImageCache, Settings
from tests.support.waiting import wait_until

from .conftest import cache_it, make_image
from .scratch_fs import mounted


def _settings(cache_dir: str, driver: str = "sqlite", **kw) -> Settings:
    return Settings(image_cache_dir=cache_dir, image_cache_driver=driver, image_cache_min_free=0, **kw)


# -- racing writers -------------------------------------------------------------
def test_threads_racing_to_cache_one_image_cache_it_once(cache):
    image = make_image(1 << 20)
    barrier = threading.Barrier(8)
    results: list[bool] = []

    def slow_chunks():
        for chunk in image.chunks(65536):
            time.sleep(0.001)
            yield chunk

    def race() -> None:
        barrier.wait()
        results.append(cache.cache_image_iter(image.image_id, slow_chunks(), image.checksum))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    with cache.open_for_read(image.image_id) as fh:
        assert fh.read() == image.data


def test_a_partial_file_is_never_seen_as_cached(cache):
    image = make_image(1 << 20)
    it = cache.get_caching_iter(image.image_id, image.checksum, image.chunks())
    next(it)
    assert not cache.is_cached(image.image_id)
    assert cache.get_cached_images() == []
    assert cache.get_image_size(image.image_id) is None
    for _ in it:
        pass
    assert cache.is_cached(image.image_id)


def _cache_in_process(cache_dir: str, driver: str, image_id: str, data: bytes, checksum: str, barrier, results) -> None:
    cache = ImageCache(_settings(cache_dir, driver))
    barrier.wait()

    def slow_chunks():
        for start in range(0, len(data), 65536):
            time.sleep(0.002)
            yield data[start : start + 65536]

    results.put(cache.cache_image_iter(image_id, slow_chunks(), checksum))


@pytest.mark.parametrize("driver", ["sqlite", "xattr"])
def test_processes_racing_to_cache_one_image_leave_one_valid_file(tmp_path, driver):
    image = make_image(1 << 20)
    cache_dir = str(tmp_path / "cache")
    ImageCache(_settings(cache_dir, driver)).close()
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = [
        ctx.Process(target=_cache_in_process,
                    args=(cache_dir, driver, image.image_id, image.data, image.checksum, barrier, results))
        for _ in range(4)
    ]
    for p in procs:
        p.start()
    outcomes = sorted(results.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    assert outcomes == [False, False, False, True]
    cache = ImageCache(_settings(cache_dir, driver))
    assert [r.image_id for r in cache.get_cached_images()] == [image.image_id]
    with cache.open_for_read(image.image_id) as fh:
        assert fh.read() == image.data
    assert os.listdir(cache.layout.incomplete_dir) == []


def _write_forever(cache_dir: str, image_id: str, started) -> None:
    cache = ImageCache(_settings(cache_dir))

    def endless():
        while True:
            started.set()
            yield b"x" * 65536
            time.sleep(0.01)

    for _ in cache.get_caching_iter(image_id, None, endless()):
        pass


def test_a_killed_writer_does_not_block_the_next_one(tmp_path):
    cache_dir = str(tmp_path / "cache")
    cache = ImageCache(_settings(cache_dir))
    image = make_image()
    ctx = multiprocessing.get_context("spawn")
    started = ctx.Event()
    writer = ctx.Process(target=_write_forever, args=(cache_dir, image.image_id, started))
    writer.start()
    assert started.wait(30)
    wait_until(lambda: cache.is_being_cached(image.image_id), "the writer in the other process to hold the fill")
    assert cache_it(cache, image) is False  # a live writer holds it
    os.kill(writer.pid, signal.SIGKILL)
    writer.join()
    assert not cache.is_being_cached(image.image_id)  # the kernel released the lock
    assert not cache.is_cached(image.image_id)
    assert cache_it(cache, image) is True  # the stale file is replaced by a fresh one
    with cache.open_for_read(image.image_id) as fh:
        assert fh.read() == image.data


# -- failing disks ---------------------------------------------------------------
def test_disk_full_never_breaks_the_stream(tmp_path):
    with mounted("tmpfs", str(tmp_path / "tiny"), "size=512k") as root:
        cache = ImageCache(_settings(os.path.join(root, "cache"), image_cache_max_size=1 << 30))
        image = make_image(2 << 20)
        out = b"".join(cache.get_caching_iter(image.image_id, image.checksum, image.chunks()))
        assert out == image.data
        assert not cache.is_cached(image.image_id)
        assert os.listdir(cache.layout.incomplete_dir) == []
        cache.close()


def _cache_under_fsize_limit(cache_dir: str, image_id: str, data: bytes, checksum: str, results) -> None:
    # Writes past RLIMIT_FSIZE fail with EFBIG once SIGXFSZ is ignored: an
    # OS-level write failure injected without root.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    cache = ImageCache(_settings(cache_dir))
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
    chunks = (data[i : i + 65536] for i in range(0, len(data), 65536))
    out = b"".join(cache.get_caching_iter(image_id, checksum, chunks))
    results.put((out == data, cache.is_cached(image_id), os.listdir(cache.layout.incomplete_dir)))


def test_a_write_error_never_breaks_the_stream(tmp_path):
    image = make_image(1 << 20)
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    proc = ctx.Process(target=_cache_under_fsize_limit,
                       args=(str(tmp_path / "c"), image.image_id, image.data, image.checksum, results))
    proc.start()
    streamed_whole, cached, leftovers = results.get(timeout=60)
    proc.join(timeout=30)
    assert streamed_whole and not cached and leftovers == []


# -- drivers --------------------------------------------------------------------
def test_xattr_falls_back_to_sqlite_where_xattrs_are_unsupported(tmp_path, caplog):
    with mounted("ramfs", str(tmp_path / "ram")) as root:
        cache = ImageCache(_settings(os.path.join(root, "cache"), "xattr"))
        assert cache.driver.name == "sqlite"
        assert "falling back to sqlite" in caplog.text
        image = make_image()
        assert cache_it(cache, image)
        assert cache.get_cached_images()[0].image_id == image.image_id
        cache.close()


def test_xattr_is_used_where_supported(tmp_path):
    cache = ImageCache(_settings(str(tmp_path / "c"), "xattr"))
    assert cache.driver.name == "xattr"


# -- crash recovery ---------------------------------------------------------------
def test_reconcile_makes_the_index_agree_with_the_files(tmp_path):
    cache_dir = str(tmp_path / "cache")
    cache = ImageCache(_settings(cache_dir))
    kept, lost, truncated = make_image(), make_image(), make_image()
    for image in (kept, lost, truncated):
        cache_it(cache, image)
    os.unlink(cache.layout.path(lost.image_id))  # row without file
    orphan_id = str(uuid.uuid4())  # file without row
    with open(cache.layout.path(orphan_id), "wb") as fh:
        fh.write(b"o" * 777)
    with open(cache.layout.path(truncated.image_id), "r+b") as fh:  # disagrees with its row
        fh.truncate(10)
    stale = cache.layout.incomplete_path(str(uuid.uuid4()))
    open(stale, "wb").close()
    old = time.time() - 2 * 86400
    os.utime(stale, (old, old))
    young = cache.layout.incomplete_path(str(uuid.uuid4()))
    open(young, "wb").close()

    result = ImageCache(_settings(cache_dir)).reconcile()
    assert result == (1, 1, 1, 1)
    records = {r.image_id: r for r in cache.get_cached_images()}
    assert set(records) == {kept.image_id, orphan_id}
    assert records[orphan_id].size == 777
    assert os.path.exists(cache.layout.invalid_path(truncated.image_id))
    assert not os.path.exists(stale) and os.path.exists(young)
    assert ImageCache(_settings(cache_dir)).reconcile() == (0, 0, 0, 0)
