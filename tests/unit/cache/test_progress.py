"""ProgressWatch: a reader of a growing file is woken by the writer's changes, from any process."""

from __future__ import annotations

import multiprocessing
import os
import threading
from pathlib import Path

import pytest

from imagecache.cache.progress import ProgressWatch


@pytest.fixture
def progress() -> ProgressWatch:
    watch = ProgressWatch()
    yield watch
    watch.close()


def _append(path: str, data: bytes) -> None:
    with open(path, "ab") as file:
        file.write(data)


@pytest.mark.parametrize("change", ["write", "chmod", "rename", "write from another process"])
def test_a_change_wakes_the_reader(progress: ProgressWatch, tmp_path: Path, change: str) -> None:
    path = tmp_path / "incomplete"
    path.write_bytes(b"")
    watch = progress.watch(str(path))
    if watch is None:
        pytest.skip("inotify is not available here: readers poll (tested by the flight tests)")
    mark = watch.mark()
    assert watch.wait(mark, 0) is False  # nothing happened yet
    if change == "write":
        threading.Thread(target=_append, args=(str(path), b"x")).start()
    elif change == "chmod":
        os.chmod(path, 0o644)
    elif change == "rename":
        os.rename(path, tmp_path / "published")
    else:
        child = multiprocessing.get_context("spawn").Process(target=_append, args=(str(path), b"y"))
        child.start()
        child.join(30)
    assert watch.wait(mark, 30) is True
    watch.close()


def test_watches_of_one_file_are_shared_and_released(progress: ProgressWatch, tmp_path: Path) -> None:
    path = tmp_path / "incomplete"
    path.write_bytes(b"")
    first, second = progress.watch(str(path)), progress.watch(str(path))
    if first is None or second is None:
        pytest.skip("inotify is not available here")
    assert len(progress._entries) == 1
    first.close()
    mark = second.mark()
    _append(str(path), b"z")
    assert second.wait(mark, 30)  # the other reader still hears about it
    second.close()
    assert progress._entries == {}


def test_a_missing_file_gets_no_watch_and_the_reader_polls(progress: ProgressWatch, tmp_path: Path) -> None:
    assert progress.watch(str(tmp_path / "gone")) is None


def test_a_closed_watch_gives_no_more_watches(tmp_path: Path) -> None:
    progress = ProgressWatch()
    progress.close()
    path = tmp_path / "f"
    path.write_bytes(b"")
    assert progress.watch(str(path)) is None
