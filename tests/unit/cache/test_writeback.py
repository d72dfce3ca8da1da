"""Writeback pacing: every byte's writeback is started once, in order, and waited for a window later."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from imagecache.cache import writeback
from imagecache.cache.writeback import (
    SYNC_FILE_RANGE_WAIT_AFTER,
    SYNC_FILE_RANGE_WAIT_BEFORE,
    SYNC_FILE_RANGE_WRITE,
    Writeback,
)

WAIT = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[int, int, int]] = []
        self.fail = fail

    def __call__(self, fd: int, offset: int, length: int, flags: int) -> int:
        self.calls.append((offset, length, flags))
        return -1 if self.fail else 0


@given(st.lists(st.integers(min_value=1, max_value=5000), max_size=60), st.integers(min_value=1, max_value=4096))
def test_started_ranges_tile_the_file_and_waits_trail_by_one(appends: list[int], window: int) -> None:
    recorder = Recorder()
    pacing = Writeback(3, window=window, sync_range=recorder)
    size = 0
    for n in appends:
        size += n
        pacing.written(size)
    started = [(o, n) for o, n, f in recorder.calls if f == SYNC_FILE_RANGE_WRITE]
    waited = [(o, n) for o, n, f in recorder.calls if f == WAIT]
    position = 0
    for offset, length in started:
        assert offset == position and length >= window  # whole windows, contiguous, from 0
        position += length
    assert size - position < window  # what is left for the final fsync is less than a window
    # Each wait covers the range started just before the current one, never one not yet started.
    assert waited == started[:-1]
    assert all(length > 0 for _, length in waited)


def test_a_failing_call_stops_all_further_calls() -> None:
    recorder = Recorder(fail=True)
    pacing = Writeback(3, window=10, sync_range=recorder)
    pacing.written(10)
    pacing.written(100)
    assert recorder.calls == [(0, 10, SYNC_FILE_RANGE_WRITE)]


def test_nothing_is_called_below_a_window() -> None:
    recorder = Recorder()
    Writeback(3, window=10, sync_range=recorder).written(9)
    assert recorder.calls == []


def test_the_real_call_works_on_this_filesystem(tmp_path) -> None:
    if writeback._SYNC_FILE_RANGE is None:  # not Linux: the module must still be usable
        Writeback(0).written(1 << 30)
        return
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    try:
        pacing = Writeback(fd, window=1 << 16)
        for n in range(1, 9):
            os.write(fd, os.urandom(1 << 16))
            pacing.written(n << 16)
        assert pacing._sync_range is not None  # no call failed
    finally:
        os.close(fd)
