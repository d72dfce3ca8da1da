"""The cleaner: invalid files go, stalled incomplete files go after the stall time, live fills never."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid

import pytest

from imagecache import ImageCache, Settings
from imagecache.cache import CleanResult
from imagecache.cache.fill import FillWriter
from imagecache.cache.verify_plan import VerifyPlan
from imagecache.jobs import CacheApp, Cleaner
from imagecache.jobs.cleaner import remove_if_stalled

STALL = 3600


def new_id() -> str:
    return str(uuid.uuid4())


def leave_file(directory: str, image_id: str, mtime: float, data: bytes = b"partial") -> str:
    path = os.path.join(directory, image_id)
    with open(path, "wb") as fh:
        fh.write(data)
    os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def cleaner(cache: ImageCache, clock) -> Cleaner:
    return Cleaner(cache=cache, stall_time=STALL, clock=clock)


def test_invalid_files_are_removed(cache, cleaner, clock) -> None:
    ids = [new_id(), new_id()]
    for image_id in ids:
        leave_file(cache.layout.invalid_dir, image_id, clock.now)  # even fresh ones: never served
    assert cleaner.run() == CleanResult(invalid_removed=2, stalled_removed=0)
    assert os.listdir(cache.layout.invalid_dir) == []


def test_names_that_are_not_image_ids_are_left_alone(cache, cleaner, clock) -> None:
    for directory in (cache.layout.invalid_dir, cache.layout.incomplete_dir):
        leave_file(directory, "operator-notes.txt", clock.now - 10 * STALL)
    assert cleaner.run() == (0, 0)
    assert os.listdir(cache.layout.invalid_dir) == ["operator-notes.txt"]
    assert os.listdir(cache.layout.incomplete_dir) == ["operator-notes.txt"]


def test_a_stalled_file_is_removed_only_after_the_stall_time(cache, cleaner, clock) -> None:
    image_id = new_id()
    path = leave_file(cache.layout.incomplete_dir, image_id, clock.now)
    assert cleaner.run() == (0, 0)
    clock.advance(STALL - 1)
    assert cleaner.run() == (0, 0)
    assert os.path.exists(path)
    clock.advance(2)
    assert cleaner.run() == CleanResult(invalid_removed=0, stalled_removed=1)
    assert not os.path.exists(path)


def test_the_stall_time_comes_from_the_settings_by_default(settings, clock) -> None:
    with Cleaner(settings.replace(image_cache_stall_time=60), clock=clock) as cleaner:
        path = leave_file(cleaner.cache.layout.incomplete_dir, new_id(), clock.now - 61)
        fresh = leave_file(cleaner.cache.layout.incomplete_dir, new_id(), clock.now - 59)
        assert cleaner.run().stalled_removed == 1
    assert not os.path.exists(path) and os.path.exists(fresh)


def test_a_file_a_live_writer_holds_is_never_removed(cache, cleaner, clock) -> None:
    image_id = new_id()
    writer = FillWriter.acquire(cache.layout, image_id, VerifyPlan(None, ()))
    assert writer is not None
    try:
        writer.write(b"x" * 1000)
        path = cache.layout.incomplete_path(image_id)
        os.utime(path, (clock.now - 10 * STALL,) * 2)  # looks long dead
        assert cleaner.run() == (0, 0)
        assert os.path.exists(path)
    finally:
        writer.discard()


def test_a_slow_fill_survives_the_cleaner_and_still_publishes(cache, cleaner, clock) -> None:
    data = hashlib.sha256(b"slow").digest() * 8192
    image_id = new_id()
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    body = cache.get_caching_iter(
        image_id, hashlib.md5(data).hexdigest(), iter(chunks), os_hash_value=hashlib.sha512(data).hexdigest()
    )
    received = [next(body)]  # the fill has started and holds its lock
    path = cache.layout.incomplete_path(image_id)
    os.utime(path, (clock.now - 10 * STALL,) * 2)
    assert cleaner.run().stalled_removed == 0
    received.extend(body)
    assert b"".join(received) == data
    assert cache.is_cached(image_id)


def test_a_writer_in_another_process_is_respected(cache, cleaner, clock) -> None:
    image_id = new_id()
    path = leave_file(cache.layout.incomplete_dir, image_id, clock.now - 10 * STALL)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR); fcntl.flock(fd, fcntl.LOCK_EX);"
         " print('locked', flush=True); sys.stdin.read()", path],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert cleaner.run() == (0, 0)
        assert os.path.exists(path)
    finally:
        holder.communicate("", timeout=30)  # it exits: the kernel drops its lock
    assert cleaner.run() == (0, 1)
    assert not os.path.exists(path)


def test_remove_if_stalled_rechecks_the_age_under_the_lock(tmp_path, clock) -> None:
    path = leave_file(str(tmp_path), new_id(), clock.now)
    assert remove_if_stalled(path, untouched_since=clock.now) is False
    assert remove_if_stalled(path, untouched_since=clock.now + 1) is True
    assert remove_if_stalled(path, untouched_since=clock.now + 1) is False  # gone already


def test_a_negative_stall_time_is_refused(cache) -> None:
    with pytest.raises(ValueError, match="stall_time"):
        Cleaner(cache=cache, stall_time=-1)


def test_the_cleaner_is_a_cache_app(cache) -> None:
    assert isinstance(Cleaner(cache=cache), CacheApp)


def test_a_cache_app_closes_only_a_cache_it_opened(settings: Settings, cache: ImageCache, monkeypatch) -> None:
    closed: list[ImageCache] = []

    def close(self: ImageCache) -> None:
        closed.append(self)

    monkeypatch.setattr(ImageCache, "close", close)
    shared = Cleaner(cache=cache)
    shared.close()
    assert closed == []
    with Cleaner(settings) as own:
        assert own.cache is not cache and own.settings is settings
    assert closed == [own.cache]
    own.close()
    assert closed == [own.cache]  # once


def test_a_cache_app_needs_settings_or_a_cache() -> None:
    with pytest.raises(TypeError, match="settings or a cache"):
        CacheApp()
