"""The fills' progress writer: the fill's call never waits, each image is written at most once an interval.

The writes go to a list here, instead of the central index (the driver's
own test, tests/unit/central/test_peers.py, writes to PostgreSQL).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time

import pytest

from imagecache.cache.drivers.central_progress import ProgressWriter
from tests.support.waiting import wait_until


class Recorder:
    """Keeps every write with its time; ``gate`` (when set) holds each write until it is opened."""

    def __init__(self) -> None:
        self.writes: list[tuple[float, str, int | None, int]] = []
        self.gate: threading.Event | None = None
        self.writing = threading.Event()
        self.fail = False

    def __call__(self, image_id: str, size: int | None, nbytes: int) -> None:
        self.writing.set()
        if self.gate is not None:
            self.gate.wait(30)
        if self.fail:
            raise OSError("the database is gone")
        self.writes.append((time.monotonic(), image_id, size, nbytes))

    def of(self, image_id: str) -> list[tuple[float, str, int | None, int]]:
        return [w for w in self.writes if w[1] == image_id]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def writer(recorder: Recorder):  # type: ignore[no-untyped-def]
    writer = ProgressWriter(recorder, interval=0.1)
    yield writer
    writer.close()


def test_each_image_is_written_at_most_once_an_interval_and_its_latest_figure_lands(writer, recorder) -> None:
    images = ["a", "b"]
    for image_id in images:
        writer.started(image_id, 1000)
    deadline = time.monotonic() + 0.6
    n = 0
    while time.monotonic() < deadline:
        n += 1
        for image_id in images:
            writer.note(image_id, n)
    for image_id in images:
        wait_until(lambda image_id=image_id: recorder.of(image_id) and recorder.of(image_id)[-1][3] == n,
                   f"the last figure of {image_id}")
        times = [w[0] for w in recorder.of(image_id)]
        # Seen from inside the write, so a thread's scheduling blurs the spacing a little.
        assert all(later - earlier >= writer.interval / 2 for earlier, later in itertools.pairwise(times))
        assert all(w[2] == 1000 for w in recorder.of(image_id))  # the size from started()
    assert len(recorder.writes) < n / 10


def test_the_first_figure_waits_an_interval_after_the_start(writer, recorder) -> None:
    writer.interval = 30.0
    writer.started("a", None)
    writer.note("a", 5)
    writer.note("b", 7)  # never started (its start failed to be written): due at once
    wait_until(lambda: recorder.of("b"), "b's figure")
    assert recorder.of("a") == []


def test_a_stuck_write_never_holds_up_the_fill(writer, recorder) -> None:
    recorder.gate = threading.Event()
    writer.interval = 0.0
    writer.note("a", 1)
    assert recorder.writing.wait(10)  # the thread is stuck in the database
    started = time.monotonic()
    for n in range(2, 10_000):
        writer.note("a", n)
    assert time.monotonic() - started < 5  # the fill's calls did not wait for the write
    recorder.gate.set()
    wait_until(lambda: recorder.of("a") and recorder.of("a")[-1][3] == 9_999, "the latest figure")


def test_forget_drops_what_is_pending_and_waits_for_a_write_under_way(writer, recorder) -> None:
    writer.interval = 30.0
    writer.started("pending", None)
    writer.note("pending", 5)  # due in 30 s: pending
    writer.forget("pending")
    recorder.gate = threading.Event()
    writer.interval = 0.0
    writer.note("busy", 1)
    assert recorder.writing.wait(10)
    forgotten = threading.Event()
    thread = threading.Thread(target=lambda: (writer.forget("busy"), forgotten.set()))
    thread.start()
    assert not forgotten.wait(0.2)  # still writing "busy"
    recorder.gate.set()
    thread.join(10)
    assert forgotten.is_set()
    writer.close()
    assert recorder.of("pending") == []


def test_failing_writes_are_logged_once_until_they_work(writer, recorder, caplog) -> None:
    writer.interval = 0.0
    recorder.fail = True
    with caplog.at_level(logging.INFO, logger="imagecache.cache.drivers.central_progress"):
        for n in range(5):
            done = writer.writes
            recorder.writing.clear()
            writer.note("a", n)
            assert recorder.writing.wait(10)
        recorder.fail = False
        writer.note("a", 99)
        wait_until(lambda: writer.writes == done + 1, "a write that works")
    messages = [r.getMessage() for r in caplog.records]
    assert sum("could not record" in m for m in messages) == 1
    assert sum("works again" in m for m in messages) == 1


def test_a_closed_writer_can_be_used_again(writer, recorder) -> None:
    writer.interval = 0.0
    writer.close()
    writer.note("a", 1)
    wait_until(lambda: recorder.of("a"), "a write after close")
