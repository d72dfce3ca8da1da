"""StreamWorker: gunicorn's threaded worker, made to hold through a boot storm.

gunicorn's ``gthread`` worker gives each request a pool thread from its
first byte to its last: a client that sends its header slowly (slowloris)
or reads its image slowly holds that thread the whole time, and with a
fixed pool the next client, ``/healthcheck`` included, waits.  This worker
keeps gunicorn's parsing, WSGI handling and process model, and changes who
waits:

* **headers are read on the event loop**: a connection gets a thread only
  once its whole request header is buffered; a header that takes longer
  than ``client_header_timeout`` is answered 408 and closed, one that
  breaks the size limits 431 (or 400, 414);
* **past ``max_connections``** a new connection is answered 503 with
  ``Retry-After`` as soon as its header is in, instead of waiting without
  end in a backlog;
* **health and metrics have their own lane** (a small pool of their own),
  so they never queue behind downloads;
* **image data is sent from the loop** (non-blocking ``sendfile``, see
  :mod:`~imagecache.serving.loop_streams`): a hit, and a follower of a fill
  in progress, hold a thread only while they are authorized, however
  slowly their client reads; a follower that has caught up with the fill
  waits for its progress on the loop too;
* **a small known body goes with its headers** (one ``sendall``, see
  :mod:`~imagecache.serving.small_body`), a small hit included;
* **every blocking write has a deadline** (``send_timeout``): a client that
  stops reading is closed, on a thread or on the loop.

It depends on gunicorn's ``gthread`` internals (pinned to one major version
in ``pyproject.toml``); the WSGI layers know nothing of it.
"""

from __future__ import annotations

import contextlib
import errno
import math
import selectors
import socket
import time
from concurrent import futures
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from gunicorn.http import wsgi
from gunicorn.workers.gthread import TConn, ThreadWorker

from imagecache.serving import canned, malloc_tuning, small_body
from imagecache.serving.file_stream import ClientStalled
from imagecache.serving.header_scan import Complete, HeaderLimits, Incomplete, scan
from imagecache.serving.loop_streams import LoopStreams, Offload, Streaming, peer

#: Paths answered on the lane: what load balancers and scrapers poll.
LANE_PATHS = frozenset({"/healthcheck", "/metrics"})
LANE_THREADS = 4
#: Connections past the limit that are still read (to answer 503) before new
#: ones are left in the kernel's backlog.
REFUSAL_HEADROOM = 256
#: How long a refused connection may take to send its header before it is
#: simply closed.
REFUSAL_READ_TIMEOUT = 2.0
RECV_SIZE = 65536


@dataclass(frozen=True)
class ServingLimits:
    """The limits a worker enforces (from :class:`~imagecache.config.Settings`)."""

    connections_per_worker: int
    client_header_timeout: float
    send_timeout: float
    header: HeaderLimits = field(default_factory=HeaderLimits)

    @classmethod
    def for_node(cls, *, max_connections: int, workers: int, client_header_timeout: float,
                 send_timeout: float, header: HeaderLimits) -> ServingLimits:
        """A node-wide connection limit shared out over its workers."""
        return cls(math.ceil(max_connections / workers), client_header_timeout, send_timeout, header)


@dataclass
class _Reading:
    """A connection whose request header is still arriving."""

    conn: TConn
    deadline: float
    refuse: bool
    buffer: bytearray = field(default_factory=bytearray)


class StreamWorker(LoopStreams, ThreadWorker):  # type: ignore[misc]
    """See the module docstring.  ``limits`` is set on a subclass per node (:func:`worker_class`)."""

    limits: ServingLimits

    def init_process(self) -> None:
        malloc_tuning.fix_mmap_threshold()  # before any thread: freed image buffers leave the process
        self.lane = futures.ThreadPoolExecutor(max_workers=LANE_THREADS, thread_name_prefix="imagecache-lane")
        self.reading: dict[TConn, _Reading] = {}
        self.streaming: dict[TConn, Streaming] = {}
        self.send_timeout = self.limits.send_timeout
        super().init_process()

    # -- connections arrive: read the header on the loop ----------------------------
    def accept(self, listener: socket.socket) -> None:
        try:
            client, address = listener.accept()
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return
            raise
        self.nr_conns += 1
        conn = TConn(self.cfg, client, address, listener.getsockname())  # non-blocking
        self._read_header(conn, refuse=self.nr_conns > self.limits.connections_per_worker)

    def on_client_socket_readable(self, conn: TConn, client: socket.socket) -> None:
        """A kept-alive connection has its next request coming: read its header on the loop too."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._read_header(conn, refuse=False)

    def _read_header(self, conn: TConn, *, refuse: bool) -> None:
        timeout = REFUSAL_READ_TIMEOUT if refuse else self.limits.client_header_timeout
        state = _Reading(conn, time.monotonic() + timeout, refuse)
        self.reading[conn] = state
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_header_bytes, state))

    def _on_header_bytes(self, state: _Reading, sock: socket.socket) -> None:
        try:
            data = sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._stop_reading(state)
            self._close(state.conn)
            return
        if not data:  # the client went away (or closed a kept-alive connection)
            self._stop_reading(state)
            self._close(state.conn)
            return
        state.buffer += data
        verdict = scan(bytes(state.buffer), self.limits.header)
        if isinstance(verdict, Incomplete):
            return
        self._stop_reading(state)
        if state.refuse:
            self._answer_and_close(state.conn, canned.BUSY)
        elif not isinstance(verdict, Complete):
            self._answer_and_close(state.conn, canned.refusal(verdict.status, verdict.reason))
        else:
            self._dispatch(state, verdict)

    def _dispatch(self, state: _Reading, header: Complete) -> None:
        conn = state.conn
        try:
            conn.init()  # a new connection's parser (a kept-alive one has its own)
        except OSError:
            self._close(conn)
            return
        conn.parser.unreader.unread(bytes(state.buffer))
        conn.data_ready = True
        self._submit(self.lane if header.path in LANE_PATHS else self.tpool, conn)

    def _submit(self, pool: futures.Executor, conn: TConn) -> None:
        done = pool.submit(self.handle, conn)
        done.add_done_callback(lambda fut: self.method_queue.defer(self.finish_request, conn, fut))

    def enqueue_req(self, conn: TConn) -> None:
        """gunicorn's own re-queue (bytes of the next request already read): the main pool."""
        self._submit(self.tpool, conn)

    def _stop_reading(self, state: _Reading) -> None:
        self.reading.pop(state.conn, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(state.conn.sock)

    def _answer_and_close(self, conn: TConn, response: bytes) -> None:
        """Best effort, never blocking: the answer fits a socket buffer, or the client misses it."""
        try:
            conn.sock.send(response)
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self._close(conn)

    def _close(self, conn: TConn) -> None:
        self.nr_conns -= 1
        conn.close()

    # -- on a thread: gunicorn's request handling, with deadlines and offloading ---
    def handle_request(self, req: Any, conn: TConn) -> Any:
        conn.sock.settimeout(self.limits.send_timeout)  # every blocking read and write has a deadline
        try:
            return self._handle_request(req, conn)
        except ClientStalled as exc:
            self.log.info("closed the connection of %s: %s", peer(conn), exc)
            return False
        except TimeoutError:
            self.log.info("closed the connection of %s: no progress for %.0f s", peer(conn), self.limits.send_timeout)
            return False

    def _handle_request(self, req: Any, conn: TConn) -> Any:
        """gunicorn's ``ThreadWorker.handle_request``, less HTTP/2, plus the offload."""
        environ: dict[str, Any] = {}
        resp = None
        try:
            self.cfg.pre_request(self, req)
            started = datetime.now()
            resp, environ = wsgi.create(req, conn.sock, conn.client, conn.server, self.cfg)
            environ["wsgi.multithread"] = True
            self.nr += 1
            if self.nr >= self.max_requests:
                if self.alive:
                    self.log.info("Autorestarting worker after current request.")
                    self.alive = False
                resp.force_close()
            if not self.alive or not self.cfg.keepalive or len(self.keepalived_conns) >= self.max_keepalived:
                resp.force_close()
            respiter = self.wsgi(environ, resp.start_response)
            small = small_body.payload(req, resp, respiter)
            offload = None if small is not None else self._offload(req, resp, environ, respiter, started) or (
                self._follow(req, resp, environ, respiter, started))
            if offload is not None:
                return offload
            try:
                if small is not None:
                    small_body.send(resp, small)
                elif isinstance(respiter, environ["wsgi.file_wrapper"]):
                    resp.write_file(respiter)
                else:
                    for item in respiter:
                        resp.write(item)
                resp.close()
            finally:
                self.log.access(resp, req, environ, datetime.now() - started)
                if hasattr(respiter, "close"):
                    respiter.close()
            return not resp.should_close()
        except OSError:
            raise  # the client's side (a reset, a deadline): handle() and handle_request() judge it
        except (Exception, SystemExit):
            if resp is not None and resp.headers_sent:
                self.log.exception("Error handling request")
                conn.sock.close()
                raise StopIteration() from None
            raise
        finally:
            try:
                self.cfg.post_request(self, req, environ, resp)
            except Exception:  # gunicorn's hook contract: log and go on
                self.log.exception("Exception in post_request hook")

    def _offload(self, req: Any, resp: Any, environ: dict[str, Any], body: Any, started: datetime) -> Offload | None:
        """Send the headers here and leave the body to the loop, when it is a plain file range."""
        source_of = getattr(body, "sendfile_source", None)
        if source_of is None or self.cfg.is_ssl or resp.chunked or resp.response_length is None:
            return None
        if req.method == "HEAD" or resp.status_code < 200 or resp.status_code in (204, 304):
            return None
        source = source_of()
        if source is None or source[2] != resp.response_length:
            return None
        resp.send_headers()
        return Offload(req, resp, environ, body, started, keepalive=not resp.should_close(), source=source)

    def _follow(self, req: Any, resp: Any, environ: dict[str, Any], body: Any, started: datetime) -> Offload | None:
        """Send the headers here and leave the body to the loop, when it is a fill being followed."""
        if not callable(getattr(body, "next_run", None)) or self.cfg.is_ssl or resp.chunked:
            return None
        if resp.response_length is None or req.method == "HEAD" or resp.status_code not in (200, 206):
            return None
        resp.send_headers()
        return Offload(req, resp, environ, body, started, keepalive=not resp.should_close())

    def _keepalive_after(self, conn: TConn, keepalive: Any) -> Any:
        if isinstance(keepalive, Offload):
            if keepalive.keepalive:
                keepalive.keepalive = bool(super()._keepalive_after(conn, True))
            return keepalive
        return super()._keepalive_after(conn, keepalive)

    # -- back on the loop --------------------------------------------------------------
    def finish_request(self, conn: TConn, fs: futures.Future[Any]) -> None:
        result = None if fs.cancelled() or fs.exception() is not None else fs.result()
        if isinstance(result, Offload):
            self._start_stream(conn, result)
            return
        super().finish_request(conn, fs)

    # -- deadlines (the loop runs this at least once a second) -----------------------
    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for state in [s for s in self.reading.values() if s.deadline <= now or (not self.alive and not s.buffer)]:
            self._stop_reading(state)
            if state.buffer and not state.refuse:
                self.log.info("closed the connection of %s: its request header took over %.0f s",
                              peer(state.conn), self.limits.client_header_timeout)
                self._answer_and_close(state.conn, canned.HEADER_TIMEOUT)
            else:
                self._close(state.conn)
        self.check_streams(now)

    def handle_quit(self, sig: int, frame: Any) -> None:
        self.lane.shutdown(wait=False)
        super().handle_quit(sig, frame)


def worker_class(limits: ServingLimits) -> type[StreamWorker]:
    """The worker class for one node's limits (gunicorn takes a class as ``worker_class``)."""
    return type("ImagecacheWorker", (StreamWorker,), {"limits": limits})

