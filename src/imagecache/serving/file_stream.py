"""A cached file sent to a client from the event loop, with non-blocking sendfile.

A hit is pure I/O once it is authorized: bytes of a file to a socket.  A
thread blocked in ``sendall`` for each of hundreds of slow readers is what
made a boot storm stall the node; here the worker's loop calls ``sendfile``
whenever the socket can take more, so a stream costs a descriptor, not a
thread.  The body's own callbacks keep their meaning: ``on_bytes`` after
every piece, ``on_complete`` (the hit is counted) before the last piece
goes out, run on a pool thread because it touches the index.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

#: Largest piece handed to one sendfile call: the loop serves others between pieces.
PIECE = 1 << 20


class Offloadable(Protocol):
    """A response body the worker may send from its loop (FileRangeBody is one)."""

    def sendfile_source(self) -> tuple[int, int, int] | None: ...  # (fd, offset, length)

    def on_bytes(self, n: int) -> None: ...

    def complete(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class Progress:
    """Where a stream stands."""

    offset: int
    remaining: int
    last_progress: float


class Outcome:
    """What one ``pump()`` call achieved (:class:`FileStream`, or a followed fill's stream)."""

    WAITING = "waiting"  # the socket is full: wait until writable
    NEEDS_COMPLETION = "needs-completion"  # run complete() on a thread, then pump again
    DONE = "done"
    BROKEN = "broken"  # the client went away
    PARKED = "parked"  # a followed fill has nothing new: its progress wakes the stream
    HANDOFF = "handoff"  # a followed fill's end: a thread finishes the response


class FileStream:
    """Sends ``length`` bytes of ``fd`` from ``offset`` to a non-blocking socket."""

    def __init__(self, sock: socket.socket, body: Offloadable, fd: int, offset: int, length: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sock = sock
        self.body = body
        self._fd = fd
        self._clock = clock
        self.progress = Progress(offset, length, clock())
        self.completed = False
        self.error: OSError | None = None

    def idle_for(self, now: float) -> float:
        return now - self.progress.last_progress

    def pump(self) -> str:
        """Send what the socket takes now; say what to wait for next."""
        progress = self.progress
        while True:
            if not self.completed and progress.remaining <= PIECE:
                return Outcome.NEEDS_COMPLETION  # the last piece waits for the body's completion
            if progress.remaining == 0:
                return Outcome.DONE
            sent = send_piece(self.sock, self._fd, progress.offset, progress.remaining)
            if sent is None:
                return Outcome.WAITING
            if isinstance(sent, OSError):
                self.error = sent
                return Outcome.BROKEN
            progress.offset += sent
            progress.remaining -= sent
            progress.last_progress = self._clock()
            self.body.on_bytes(sent)


class ClientStalled(TimeoutError):
    """A client that read nothing for the send deadline (its message says so, for the log)."""


def send_piece(sock: socket.socket, fd: int, offset: int, length: int) -> int | OSError | None:
    """One non-blocking ``sendfile`` of at most PIECE bytes: how many went, None when the
    socket is full, or the error that broke the stream (a file that ended early included)."""
    while True:
        try:
            sent = os.sendfile(sock.fileno(), fd, offset, min(PIECE, length))
        except BlockingIOError:
            return None
        except InterruptedError:
            continue
        except OSError as exc:
            return exc
        return sent if sent else OSError(errno.EIO, "the file ended early")


def send_range(sock: socket.socket, fd: int, offset: int, length: int, timeout: float,
               on_bytes: Callable[[int], None] | None = None) -> None:
    """Send a file range to a socket from a thread: sendfile, waiting at most ``timeout`` for room.

    The socket may be in timeout mode (non-blocking underneath), as the
    worker's request sockets are; TimeoutError when the client reads nothing
    for ``timeout`` seconds.  ``on_bytes(n)`` hears of every piece sent.
    """
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLOUT)
    while length > 0:
        try:
            sent = os.sendfile(sock.fileno(), fd, offset, min(PIECE, length))
        except (BlockingIOError, InterruptedError):
            if not poller.poll(timeout * 1000):
                raise ClientStalled(f"it read nothing for {timeout:.0f} s") from None
            continue
        if sent == 0:
            raise OSError(errno.EIO, "the file ended early")
        offset += sent
        length -= sent
        if on_bytes is not None:
            on_bytes(sent)
