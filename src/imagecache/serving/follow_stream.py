"""A fill being followed, sent to its client from the event loop.

A follower used to hold a request thread from its first byte to its last,
most of that time waiting for the writer or for a slow client: a node took
``workers × threads`` first downloads at once and queued the rest.  Here the
loop sends whatever part of the growing file is on disk (non-blocking
``sendfile``, as for hits), and when the follower has caught up with the
writer it *parks*: the fill's progress watch calls back on the next change
and the loop sends again.  What may block — the image's last byte, held
until the image is verified, and a fill that stopped and must be finished
from the image service — is handed back to a thread
(:attr:`Outcome.HANDOFF`), which carries on with the body's own ``pieces()``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Literal, Protocol

from imagecache.serving.file_stream import Outcome, send_piece

#: (descriptor, offset, length) of a run of the growing file.
Run = tuple[int, int, int]


class Followable(Protocol):
    """A response body the worker may send from its loop while its file grows (FillBody is one)."""

    def next_run(self) -> Run | Literal["wait", "handoff"]: ...

    def call_on_change(self, callback: Callable[[], None]) -> bool: ...

    def on_bytes(self, n: int) -> None: ...

    def close(self) -> None: ...


class FollowStream:
    """Sends a followed fill's runs to a non-blocking socket; says what to wait for next.

    ``wake()`` (thread-safe) asks the loop to pump this stream again: it is
    what the body calls back with when the fill moves.
    """

    def __init__(self, sock: socket.socket, body: Followable, wake: Callable[[], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sock = sock
        self.body = body
        self._wake = wake
        self._clock = clock
        self._run: Run | None = None
        self.sent = 0
        self.parked = False
        self.error: OSError | None = None
        self._last_progress = clock()

    def idle_for(self, now: float) -> float:
        return now - self._last_progress

    def pump(self) -> str:
        """Send what the socket takes and the file holds now.

        WAITING: the socket is full; PARKED: the writer has nothing new (the
        loop hears of progress); HANDOFF: finish on a thread; BROKEN: the
        client went away.
        """
        self.parked = False
        while True:
            if self._run is None:
                run = self.body.next_run()
                if run == "handoff":
                    return Outcome.HANDOFF
                if run == "wait":
                    self.parked = True
                    if not self.body.call_on_change(self._wake):
                        self._wake()  # it moved while we looked: go round the loop once, then look again
                    return Outcome.PARKED
                self._run = run
            fd, offset, length = self._run
            sent = send_piece(self.sock, fd, offset, length)
            if sent is None:
                return Outcome.WAITING
            if isinstance(sent, OSError):
                self.error = sent
                return Outcome.BROKEN
            self._run = (fd, offset + sent, length - sent) if sent < length else None
            self.sent += sent
            self._last_progress = self._clock()
            self.body.on_bytes(sent)
