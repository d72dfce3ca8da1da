"""A hash computed on its own thread, beside the fill that feeds it.

A fill computes two digests of every byte (md5 and the image's multihash),
and each runs at roughly the speed of a disk copy on one core.  hashlib
releases the GIL for buffers over 2 KiB, so computing one of them on a second
thread lets a fill use two cores instead of doing the two hashes in turn.
"""

from __future__ import annotations

import hashlib
import queue
import threading

#: Chunks queued ahead of the hashing thread (1 MiB each at most: bounded memory).
QUEUE_DEPTH = 8


class ThreadedHash:
    """``hashlib.new(name)`` fed through a queue to a daemon thread."""

    def __init__(self, name: str) -> None:
        self._hash = hashlib.new(name, usedforsecurity=False)
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUE_DEPTH)
        self._thread: threading.Thread | None = None
        self._done = False

    def update(self, chunk: bytes) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="fill-hash", daemon=True)
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
