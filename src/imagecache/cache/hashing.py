"""A hash computed on its own thread, beside the fill that feeds it.

Each digest a fill computes runs at roughly the speed of a disk copy on one
core.  hashlib releases the GIL for buffers over 2 KiB, so hashing on a
thread of its own lets the copy and the hash (or two hashes) overlap on
separate cores instead of taking turns on the copying thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import threading

#: Chunks queued ahead of the hashing thread (1 MiB each at most: bounded memory).
QUEUE_DEPTH = 8
#: Name of every hashing thread (tests look for leftovers by it).
THREAD_NAME = "fill-hash"


class ThreadedHash:
    """``hashlib.new(name)`` fed through a queue to a daemon thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._hash = hashlib.new(name, usedforsecurity=False)
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUE_DEPTH)
        self._thread: threading.Thread | None = None
        self._done = False

    def update(self, chunk: bytes) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
            self._thread.start()
        self._queue.put(chunk)

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            self._hash.update(chunk)

    def hexdigest(self) -> str:
        """The digest of everything fed so far; no update may follow."""
        self.close()
        return self._hash.hexdigest()

    def close(self) -> None:
        """Stop the thread (idempotent); pending chunks are still hashed first."""
        if not self._done:
            self._done = True
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join()

    def cancel(self) -> None:
        """Stop the thread without hashing what is still queued (the digest is not wanted)."""
        if not self._done:
            with contextlib.suppress(queue.Empty):
                while True:
                    self._queue.get_nowait()
        self.close()
