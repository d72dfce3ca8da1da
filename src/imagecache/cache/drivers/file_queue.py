"""The prefetch queue as files in ``queue/``, the way Glance keeps it.

Each entry is a file named by the image id whose content is the time it was
queued in nanoseconds; ordering by that content (not by mtime, whose
resolution is coarse) keeps "oldest first" exact within a process and right
to within a clock tick across processes.
"""

from __future__ import annotations

import os
import threading
import time

from imagecache.cache.layout import CacheLayout, is_image_id


class FileQueue:
    def __init__(self, layout: CacheLayout) -> None:
        self._layout = layout
        self._lock = threading.Lock()
        self._last_ns = 0

    def _stamp(self) -> int:
        with self._lock:
            self._last_ns = max(time.time_ns(), self._last_ns + 1)
            return self._last_ns

    def add(self, image_id: str) -> bool:
        path = self._layout.queue_path(image_id)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(fd, str(self._stamp()).encode())
        finally:
            os.close(fd)
        return True

    def contains(self, image_id: str) -> bool:
        return os.path.exists(self._layout.queue_path(image_id))

    def remove(self, image_id: str) -> bool:
        try:
            os.unlink(self._layout.queue_path(image_id))
        except FileNotFoundError:
            return False
        return True

    def ids(self) -> list[str]:
        entries: list[tuple[int, str]] = []
        try:
            names = os.listdir(self._layout.queue_dir)
        except FileNotFoundError:
            return []
        for name in names:
            if not is_image_id(name):
                continue
            path = os.path.join(self._layout.queue_dir, name)
            try:
                with open(path, "rb") as fh:
                    raw = fh.read(32)
                stamp = int(raw) if raw.strip().isdigit() else int(os.stat(path).st_mtime_ns)
            except FileNotFoundError:
                continue
            except OSError:
                stamp = 0
            entries.append((stamp, name))
        entries.sort()
        return [name for _, name in entries]


class FileQueueMixin:
    """The driver contract's queue methods, for drivers that keep Glance's ``queue/``."""

    _queue: FileQueue

    def queue(self, image_id: str) -> bool:
        return self._queue.add(image_id)

    def is_queued(self, image_id: str) -> bool:
        return self._queue.contains(image_id)

    def dequeue(self, image_id: str) -> bool:
        return self._queue.remove(image_id)

    def queued(self) -> list[str]:
        return self._queue.ids()
