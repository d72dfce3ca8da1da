"""The worker's loop side of a response body: hits and followed fills sent without a thread.

A thread builds the response (authorization, headers) and hands the body
to the loop as an :class:`Offload`; from then on the loop sends it
whenever the socket can take more (:class:`FileStream` for a cached file,
:class:`FollowStream` for a fill in progress).  Work that may block goes
back to a pool thread and returns through gunicorn's method queue: a hit's
completion (it touches the index), and a followed fill's end (its last
byte waits for verification; a stopped fill is finished from the image
service).  A mixin of :class:`~imagecache.serving.worker.StreamWorker`,
which it relies on for gunicorn's ``poller``, ``tpool``, ``method_queue``,
``log``, ``alive`` and ``keepalived_conns``.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from gunicorn.workers.gthread import TConn

from imagecache.serving.file_stream import FileStream, Outcome, send_range
from imagecache.serving.follow_stream import FollowStream


@dataclass
class Offload:
    """A response whose headers are sent and whose body the loop sends (a thread's result)."""

    req: Any
    resp: Any
    environ: dict[str, Any]
    body: Any  # Offloadable with ``source``; Followable without
    started: datetime
    keepalive: bool
    source: tuple[int, int, int] | None = None  # a hit's (fd, offset, length); None: a followed fill


@dataclass
class Streaming:
    stream: FileStream | FollowStream
    offload: Offload
    registered: bool = False  # waiting for the socket to be writable
    handed_off: bool = False  # a thread is finishing it


def write_pieces(resp: Any, sock: socket.socket, body: Any, send_timeout: float) -> None:
    """A followed fill's ``pieces()`` from a thread: file runs by sendfile, other bytes as usual."""
    for piece in body.pieces():
        if isinstance(piece, bytes):
            resp.write(piece)
            continue
        fd, offset, length = piece
        length = min(length, resp.response_length - resp.sent)
        send_range(sock, fd, offset, length, send_timeout, body.on_bytes)
        resp.sent += length


class LoopStreams:
    """Sends offloaded bodies from the event loop (see the module docstring)."""

    poller: selectors.BaseSelector
    tpool: futures.ThreadPoolExecutor
    method_queue: Any
    log: Any
    alive: bool
    keepalived_conns: Any
    streaming: dict[TConn, Streaming]
    send_timeout: float

    if TYPE_CHECKING:  # the worker's own
        def _close(self, conn: TConn) -> None: ...

        def enqueue_req(self, conn: TConn) -> None: ...

        def on_client_socket_readable(self, conn: TConn, client: socket.socket) -> None: ...

    def _start_stream(self, conn: TConn, offload: Offload) -> None:
        conn.sock.setblocking(False)
        stream: FileStream | FollowStream
        if offload.source is not None:
            fd, offset, length = offload.source
            stream = FileStream(conn.sock, offload.body, fd, offset, length)
        else:
            stream = FollowStream(conn.sock, offload.body, self._waker(conn))
        self.streaming[conn] = Streaming(stream, offload)
        self._pump(conn)

    def _waker(self, conn: TConn) -> Callable[[], None]:
        """Thread-safe: pump ``conn`` again, on the loop."""
        return lambda: self.method_queue.defer(self._pump, conn)

    def _pump(self, conn: TConn) -> None:
        state = self.streaming.get(conn)
        if state is None or state.handed_off:
            return  # ended, or a thread has it: a late wake-up
        outcome = state.stream.pump()
        if outcome == Outcome.WAITING:
            if not state.registered:
                self.poller.register(conn.sock, selectors.EVENT_WRITE, lambda _sock: self._pump(conn))
                state.registered = True
            return
        self._unregister(state)
        if outcome == Outcome.PARKED:
            return  # the fill's progress pumps it again
        if outcome == Outcome.NEEDS_COMPLETION:
            # The body's completion (a hit counted in the index) may block: a thread runs it,
            # and the last piece goes out after it, as when the body is iterated.
            done = self.tpool.submit(state.offload.body.complete)
            done.add_done_callback(lambda fut: self.method_queue.defer(self._completed, conn, fut))
            return
        if outcome == Outcome.HANDOFF:
            state.handed_off = True
            handoff = self.tpool.submit(self._finish_follow, conn, state)
            handoff.add_done_callback(lambda fut: self.method_queue.defer(self._followed, conn, fut))
            return
        self._end_stream(conn, ok=outcome == Outcome.DONE)

    def _completed(self, conn: TConn, fs: futures.Future[Any]) -> None:
        state = self.streaming.get(conn)
        if state is None:
            return
        if fs.exception() is not None:
            self.log.error("completing a response failed: %s", fs.exception())
        assert isinstance(state.stream, FileStream)
        state.stream.completed = True
        self._pump(conn)

    def _finish_follow(self, conn: TConn, state: Streaming) -> bool:
        """On a thread: the rest of a followed fill, blocking with the send deadline."""
        resp = state.offload.resp
        assert isinstance(state.stream, FollowStream), "only a followed fill is handed to a thread"
        resp.sent = state.stream.sent
        try:
            conn.sock.settimeout(self.send_timeout)
            write_pieces(resp, conn.sock, state.offload.body, self.send_timeout)
        except OSError as exc:  # the client's side, a deadline, or an aborted response
            self.log.debug("a followed fill's response ended early: %s", exc)
            return False
        except Exception:  # the headers are out: all we can do is log and close
            self.log.exception("Error handling request")
            return False
        return True

    def _followed(self, conn: TConn, fs: futures.Future[Any]) -> None:
        ok = not fs.cancelled() and fs.exception() is None and bool(fs.result())
        if conn in self.streaming:
            self._end_stream(conn, ok=ok)

    def _unregister(self, state: Streaming) -> None:
        if state.registered:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.poller.unregister(state.stream.sock)
            state.registered = False

    def _end_stream(self, conn: TConn, *, ok: bool) -> None:
        state = self.streaming.pop(conn)
        self._unregister(state)
        offload, stream = state.offload, state.stream
        if isinstance(stream, FileStream):
            assert offload.source is not None
            offload.resp.sent = offload.source[2] - stream.progress.remaining
        elif not state.handed_off:
            offload.resp.sent = stream.sent
        try:
            offload.body.close()
        except Exception:  # a close must not stop the loop
            self.log.exception("closing a response body failed")
        self.log.access(offload.resp, offload.req, offload.environ, datetime.now() - offload.started)
        if ok and offload.keepalive and self.alive:
            if conn.parser.unreader.buf.getvalue():
                self.enqueue_req(conn)  # a pipelined request is already read: the socket will not wake us
                return
            conn.sock.setblocking(False)
            conn.set_timeout()
            self.keepalived_conns.append(conn)
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_client_socket_readable, conn))
            return
        if not ok and stream.error is not None:
            self.log.debug("a client went away during a response: %s", stream.error)
        self._close(conn)

    def check_streams(self, now: float) -> None:
        """Once a second: close streams whose client reads nothing; look again at parked followers.

        The look is a safety net for a missed wake-up (a watch that stopped):
        the fill's progress normally pumps a parked follower first.
        """
        for conn, state in list(self.streaming.items()):
            if state.registered and state.stream.idle_for(now) > self.send_timeout:
                self.log.info("closed the connection of %s: it read nothing for %.0f s", peer(conn), self.send_timeout)
                self._end_stream(conn, ok=False)
            elif isinstance(state.stream, FollowStream) and state.stream.parked and not state.handed_off:
                self._pump(conn)


def peer(conn: TConn) -> str:
    client = conn.client
    return f"{client[0]}:{client[1]}" if isinstance(client, tuple) and len(client) >= 2 else str(client)
