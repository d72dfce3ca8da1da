"""Slow clients, many sockets on one thread: paced readers, slowloris, and one-shot probes.

* :class:`SlowReaders`: ``n`` clients that ``GET`` one path and read the body
  at ``rate`` bytes/s each (after an optional ``burst``), with a small
  receive buffer (``SO_RCVBUF``, 64 KiB by default) so the kernel does not
  soak up the image on their behalf: the server's send blocks as a slow
  client's would.  All of them run on one thread with :mod:`selectors`
  (non-blocking connects, a heap of wake-up times for the paced ones), so
  the load generator costs little CPU.  With ``repeat`` a client that gets
  the whole body connects again and starts over.
* :class:`Slowloris`: ``n`` connections that send ``GET <path> HTTP/1.1``
  and then one header line every ``interval`` s, never the blank line; when
  the server closes each of them (or answers, e.g. 408 / 400) is recorded.
* :func:`probe`: one blocking request on a fresh connection, with a
  deadline: its latency to the first body byte (``first_byte=True``) or to
  the whole response; a timeout is a result (``timed_out``), not an error.
  :func:`sample_probes` starts one every ``interval`` s, each on its own
  thread, so a slow answer does not delay the next sample.

Everything is bounded: both drivers stop by themselves after ``max_seconds``
(and ``stop()`` ends them sooner), every probe has a timeout.  Loopback only
(the benchmark's servers listen on 127.0.0.1).
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import selectors
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

KiB = 1 << 10
RCVBUF = 64 * KiB
READ_CAP = 256 * KiB  # most bytes one recv asks for
HEAD_READ = 16 * KiB  # recv size until the response head is in (so the pacing starts near the burst)
HEAD_LIMIT = 64 * KiB

Clock = Callable[[], float]


def request_bytes(host: str, port: int, path: str, headers: Mapping[str, str] | None = None,
                  connection: str = "close") -> bytes:
    """A complete ``GET`` request (HTTP/1.1, ``Host``, the headers, ``Connection``)."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", *(f"{k}: {v}" for k, v in (headers or {}).items()),
             f"Connection: {connection}", "", ""]
    return "\r\n".join(lines).encode("latin-1")


def parse_head(head: bytes) -> tuple[int, int | None]:
    """(status, Content-Length or None) of a response head (up to the blank line)."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP status line: {lines[0][:80]!r}")
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    return int(parts[1]), length


def _connect_nonblocking(host: str, port: int, rcvbuf: int | None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: the window follows it
    sock.setblocking(False)
    code = sock.connect_ex((host, port))
    if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
        sock.close()
        raise OSError(code, f"connect to {host}:{port}: {errno.errorcode.get(code, code)}")
    return sock


# -- paced readers -----------------------------------------------------------------------------


@dataclass
class Reader:
    """One slow client (its current download, and totals over its repeats)."""

    index: int
    sock: socket.socket | None = None
    state: str = "idle"  # connecting, sending, head, body, paused, done, failed, stopped
    sent: int = 0
    head: bytearray = field(default_factory=bytearray)
    status: int | None = None
    length: int | None = None
    body: int = 0  # body bytes of the current download
    total: int = 0  # body bytes over every download
    connects: int = 0
    downloads: int = 0  # complete bodies received
    started: float | None = None  # this download's connect
    first_byte: float | None = None  # first body byte of the first download (absolute clock)
    first_byte_s: float | None = None  # ... seconds after its connect
    body_clock: float = 0.0  # pacing origin of the current download
    last_data: float | None = None
    error: str | None = None


class SlowReaders:
    """``n`` clients reading ``path`` at ``rate`` bytes/s each, on one selector thread (see the module doc).

    ``with SlowReaders(...) as readers:`` starts them; ``readers.snapshot()``
    gives live counts from any thread; leaving the ``with`` (or
    ``max_seconds``) stops them and closes every socket.
    """

    def __init__(self, host: str, port: int, path: str, n: int, rate: float, *,
                 headers: Mapping[str, str] | None = None, burst: int = 0, rcvbuf: int | None = RCVBUF,
                 repeat: bool = False, max_seconds: float = 60.0, connect_spread: float = 0.0,
                 clock: Clock = time.monotonic) -> None:
        if n < 1 or rate <= 0:
            raise ValueError("need at least one reader and a positive rate")
        self.host, self.port, self.path, self.n, self.rate = host, port, path, n, float(rate)
        self.burst, self.rcvbuf, self.repeat, self.max_seconds = burst, rcvbuf, repeat, max_seconds
        self.connect_spread = connect_spread  # seconds over which the n connects are spread
        self.clock = clock
        self.request = request_bytes(host, port, path, headers)
        # Wake a paused reader when it may read at least this much (fewer wake-ups at low rates).
        self.quantum = int(min(64 * KiB, max(4 * KiB, self.rate / 8)))
        self.readers = [Reader(i) for i in range(n)]
        self.began: float | None = None
        self.ended: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._buffer = bytearray(READ_CAP)
        self.loop_error: str | None = None

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> SlowReaders:
        self.began = self.clock()
        self._thread = threading.Thread(target=self._run, name="slow-readers", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> SlowReaders:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- what happened -------------------------------------------------------------------
    def snapshot(self, within: float = 1.0) -> dict[str, int]:
        """Live counts: connected, with a response head, got data in the last ``within`` s, bytes so far."""
        now = self.clock()
        readers = list(self.readers)
        return {
            "streaming": sum(1 for r in readers if r.last_data is not None and now - r.last_data <= within),
            "with_data": sum(1 for r in readers if r.total > 0),
            "bytes": sum(r.total for r in readers),
            "downloads": sum(r.downloads for r in readers),
            "failed": sum(1 for r in readers if r.error is not None),
        }

    def errors(self) -> list[str]:
        return [f"reader {r.index}: {r.error}" for r in self.readers if r.error is not None]

    # -- the loop ------------------------------------------------------------------------
    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        wake: list[tuple[float, int]] = []  # (time, reader index): paused readers and pending connects
        assert self.began is not None
        deadline = self.began + self.max_seconds
        for reader in self.readers:
            at = self.began + (self.connect_spread * reader.index / self.n if self.connect_spread else 0.0)
            heapq.heappush(wake, (at, reader.index))
            reader.state = "waiting"
        try:
            while not self._stop.is_set():
                now = self.clock()
                if now >= deadline:
                    break
                while wake and wake[0][0] <= now:
                    _, index = heapq.heappop(wake)
                    self._wake(sel, self.readers[index], now, wake)
                if not sel.get_map() and not wake:
                    break  # every reader is done or failed
                timeout = 0.05 if not wake else max(0.0, min(0.05, wake[0][0] - now))
                for key, _mask in sel.select(timeout):
                    self._event(sel, key.data, wake)
        except Exception as exc:  # noqa: BLE001 - recorded, the sockets still get closed
            self.loop_error = f"{type(exc).__name__}: {exc}"
        finally:
            self.ended = self.clock()
            for reader in self.readers:
                if reader.sock is not None:
                    with contextlib.suppress(OSError):
                        reader.sock.close()
                    reader.sock = None
                if reader.state not in ("done", "failed"):
                    reader.state = "stopped"
            sel.close()

    def _wake(self, sel: selectors.BaseSelector, reader: Reader, now: float, wake: list[tuple[float, int]]) -> None:
        if reader.state == "waiting":
            self._connect(sel, reader, now)
        elif reader.state == "paused" and reader.sock is not None:
            reader.state = "body"
            sel.register(reader.sock, selectors.EVENT_READ, reader)

    def _connect(self, sel: selectors.BaseSelector, reader: Reader, now: float) -> None:
        try:
            sock = _connect_nonblocking(self.host, self.port, self.rcvbuf)
        except OSError as exc:
            self._fail(sel, reader, f"connect: {exc}")
            return
        reader.sock, reader.state, reader.sent = sock, "connecting", 0
        reader.head.clear()
        reader.status, reader.length, reader.body = None, None, 0
        reader.started = now
        reader.connects += 1
        sel.register(sock, selectors.EVENT_WRITE, reader)

    def _fail(self, sel: selectors.BaseSelector, reader: Reader, message: str) -> None:
        reader.error = message
        reader.state = "failed"
        self._close(sel, reader)

    def _close(self, sel: selectors.BaseSelector, reader: Reader) -> None:
        if reader.sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                sel.unregister(reader.sock)
            with contextlib.suppress(OSError):
                reader.sock.close()
            reader.sock = None

    def _event(self, sel: selectors.BaseSelector, reader: Reader, wake: list[tuple[float, int]]) -> None:
        sock = reader.sock
        assert sock is not None
        if reader.state == "connecting":
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                self._fail(sel, reader, f"connect: {errno.errorcode.get(code, code)}")
                return
            reader.state = "sending"
        if reader.state == "sending":
            try:
                reader.sent += sock.send(self.request[reader.sent:])
            except BlockingIOError:
                return
            except OSError as exc:
                self._fail(sel, reader, f"send: {exc}")
                return
            if reader.sent == len(self.request):
                reader.state = "head"
                sel.modify(sock, selectors.EVENT_READ, reader)
            return
        now = self.clock()
        want = HEAD_READ
        if reader.state == "body":
            allowed = self.burst + self.rate * (now - reader.body_clock) - reader.body
            want = int(min(READ_CAP, allowed))
            if reader.length is not None:
                want = min(want, reader.length - reader.body)
            if want < 1:
                self._pause(sel, reader, now, wake)
                return
        try:
            n = sock.recv_into(self._buffer, want)
        except BlockingIOError:
            return
        except OSError as exc:
            self._fail(sel, reader, f"recv after {reader.body} body bytes: {exc}")
            return
        if n == 0:
            self._fail(sel, reader, f"closed by the server after {reader.body} body bytes"
                       + (f" of {reader.length}" if reader.length is not None else ""))
            return
        if reader.state == "head":
            reader.head += self._buffer[:n]
            end = reader.head.find(b"\r\n\r\n")
            if end < 0:
                if len(reader.head) > HEAD_LIMIT:
                    self._fail(sel, reader, "response head over 64 KiB")
                return
            try:
                reader.status, reader.length = parse_head(bytes(reader.head[:end]))
            except ValueError as exc:
                self._fail(sel, reader, str(exc))
                return
            if reader.status != 200:
                self._fail(sel, reader, f"status {reader.status}")
                return
            n = len(reader.head) - end - 4
            reader.state, reader.body_clock = "body", now
        if n > 0:
            if reader.first_byte is None:
                reader.first_byte = now
                reader.first_byte_s = now - (reader.started or now)
            reader.body += n
            reader.total += n
            reader.last_data = now
        if reader.length is not None and reader.body >= reader.length:
            reader.downloads += 1
            self._close(sel, reader)
            if self.repeat and not self._stop.is_set():
                self._connect(sel, reader, now)
            else:
                reader.state = "done"
            return
        if self.burst + self.rate * (now - reader.body_clock) - reader.body < 1:
            self._pause(sel, reader, now, wake)

    def _pause(self, sel: selectors.BaseSelector, reader: Reader, now: float, wake: list[tuple[float, int]]) -> None:
        assert reader.sock is not None
        sel.unregister(reader.sock)
        reader.state = "paused"
        at = reader.body_clock + (reader.body + self.quantum - self.burst) / self.rate
        heapq.heappush(wake, (max(at, now + 0.001), reader.index))


# -- slowloris -------------------------------------------------------------------------------


@dataclass
class SlowConn:
    index: int
    sock: socket.socket | None = None
    state: str = "waiting"  # connecting, open, closed, failed, stopped
    started: float | None = None
    lines: int = 0  # header lines sent after the request line
    answered: float | None = None  # the server sent something (seconds after the start)
    answer: bytes = b""  # its first bytes
    closed: float | None = None  # the server closed or reset it (seconds after the start)
    how: str | None = None  # "eof", "reset", "send failed: ..."
    error: str | None = None  # our side could not connect


class Slowloris:
    """``n`` connections sending a request head one line every ``interval`` s (see the module doc).

    Runs until every connection is closed by the server or ``cap`` seconds
    have passed since the start (then we close them), or ``stop()``.
    """

    def __init__(self, host: str, port: int, n: int, *, path: str = "/versions", interval: float = 2.0,
                 cap: float = 40.0, clock: Clock = time.monotonic) -> None:
        self.host, self.port, self.n, self.path = host, port, n, path
        self.interval, self.cap, self.clock = interval, cap, clock
        self.conns = [SlowConn(i) for i in range(n)]
        self.began: float | None = None
        self.ended: float | None = None
        self.loop_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Slowloris:
        self.began = self.clock()
        self._thread = threading.Thread(target=self._run, name="slowloris", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> None:
        """Until every connection is closed or the cap is reached."""
        if self._thread is not None:
            self._thread.join(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.wait(timeout)

    def __enter__(self) -> Slowloris:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def snapshot(self) -> dict[str, int]:
        conns = list(self.conns)
        return {
            "open": sum(1 for c in conns if c.state == "open"),
            "closed": sum(1 for c in conns if c.closed is not None),
            "answered": sum(1 for c in conns if c.answered is not None),
            "failed": sum(1 for c in conns if c.error is not None),
        }

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        assert self.began is not None
        deadline = self.began + self.cap
        due: list[tuple[float, int]] = []  # (time, index): the next header line
        for conn in self.conns:
            try:
                conn.sock = _connect_nonblocking(self.host, self.port, None)
            except OSError as exc:
                conn.state, conn.error = "failed", f"connect: {exc}"
                continue
            conn.state, conn.started = "connecting", self.clock()
            sel.register(conn.sock, selectors.EVENT_WRITE, conn)
        try:
            while not self._stop.is_set():
                now = self.clock()
                if now >= deadline or not sel.get_map():
                    break
                while due and due[0][0] <= now:
                    _, index = heapq.heappop(due)
                    conn = self.conns[index]
                    if conn.state == "open":
                        self._send(sel, conn, f"X-Slow-{conn.lines}: {index}\r\n".encode(), now)
                        conn.lines += 1
                        if conn.state == "open":
                            heapq.heappush(due, (now + self.interval, index))
                timeout = 0.1 if not due else max(0.0, min(0.1, due[0][0] - now))
                for key, mask in sel.select(timeout):
                    conn = key.data
                    now = self.clock()
                    if conn.state == "connecting":
                        code = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        if code:
                            conn.state, conn.error = "failed", f"connect: {errno.errorcode.get(code, code)}"
                            self._close(sel, conn)
                            continue
                        conn.state = "open"
                        sel.modify(conn.sock, selectors.EVENT_READ, conn)
                        self._send(sel, conn, f"GET {self.path} HTTP/1.1\r\n".encode(), now)
                        if conn.state == "open":
                            heapq.heappush(due, (now + self.interval, conn.index))
                    elif mask & selectors.EVENT_READ:
                        self._read(sel, conn, now)
        except Exception as exc:  # noqa: BLE001
            self.loop_error = f"{type(exc).__name__}: {exc}"
        finally:
            self.ended = self.clock()
            for conn in self.conns:
                if conn.sock is not None:
                    with contextlib.suppress(OSError):
                        conn.sock.close()
                    conn.sock = None
                if conn.state in ("open", "connecting"):
                    conn.state = "stopped"
            sel.close()

    def _since(self, conn: SlowConn, now: float) -> float:
        return now - (conn.started if conn.started is not None else now)

    def _send(self, sel: selectors.BaseSelector, conn: SlowConn, data: bytes, now: float) -> None:
        assert conn.sock is not None
        try:
            conn.sock.send(data)
        except BlockingIOError:
            pass  # a full send buffer: this line is lost, the next one goes later
        except OSError as exc:
            self._closed(sel, conn, now, f"send failed: {exc.strerror or exc}")

    def _read(self, sel: selectors.BaseSelector, conn: SlowConn, now: float) -> None:
        assert conn.sock is not None
        try:
            data = conn.sock.recv(4096)
        except BlockingIOError:
            return
        except OSError as exc:
            self._closed(sel, conn, now, f"reset ({exc.strerror or exc})")
            return
        if not data:
            self._closed(sel, conn, now, "eof")
            return
        if conn.answered is None:
            conn.answered = self._since(conn, now)
        if len(conn.answer) < 200:
            conn.answer += data[:200 - len(conn.answer)]

    def _closed(self, sel: selectors.BaseSelector, conn: SlowConn, now: float, how: str) -> None:
        conn.closed, conn.how, conn.state = self._since(conn, now), how, "closed"
        self._close(sel, conn)

    def _close(self, sel: selectors.BaseSelector, conn: SlowConn) -> None:
        if conn.sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                sel.unregister(conn.sock)
            with contextlib.suppress(OSError):
                conn.sock.close()
            conn.sock = None


# -- probes ----------------------------------------------------------------------------------


@dataclass
class Probe:
    """One request's outcome: ``seconds`` (None when it timed out or failed)."""

    path: str
    started: float  # clock value at the start
    seconds: float | None = None
    timed_out: bool = False
    status: int | None = None
    error: str | None = None
    stage: str = "connect"  # how far it got: connect, sent, head, body

    @property
    def value(self) -> float:
        """Seconds, ``inf`` for a timeout, NaN for an error (for :class:`bench.results.Cell`)."""
        if self.timed_out:
            return float("inf")
        return self.seconds if self.seconds is not None else float("nan")


def probe(host: str, port: int, path: str, *, headers: Mapping[str, str] | None = None, timeout: float = 30.0,
          first_byte: bool = False, expect: tuple[int, ...] | None = None, clock: Clock = time.monotonic) -> Probe:
    """One ``GET path`` on a fresh connection, from connect to the first body byte (``first_byte``) or to
    the end of the response (``Connection: close``; the body is read and dropped)."""
    started = clock()
    result = Probe(path, started)
    deadline = started + timeout
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((host, port))
        result.stage = "sent"
        sock.sendall(request_bytes(host, port, path, headers))
        head = bytearray()
        body = 0
        length: int | None = None
        while True:
            left = deadline - clock()
            if left <= 0:
                raise TimeoutError
            sock.settimeout(left)
            data = sock.recv(65536 if first_byte else 1 << 20)
            if not data:
                if result.stage == "body" and (length is None or body >= length):
                    break
                raise ConnectionError(f"closed by the server at stage {result.stage} ({body} body bytes)")
            if result.stage != "body":
                head += data
                end = head.find(b"\r\n\r\n")
                if end < 0:
                    if len(head) > HEAD_LIMIT:
                        raise ValueError("response head over 64 KiB")
                    continue
                result.status, length = parse_head(bytes(head[:end]))
                result.stage = "body"
                if expect is not None and result.status not in expect:
                    raise ValueError(f"status {result.status}")
                data = bytes(head[end + 4:])
            body += len(data)
            if first_byte and body > 0:
                break
            if length is not None and body >= length:
                if first_byte and length == 0:
                    raise ValueError("empty body: no first byte")
                break
        result.seconds = clock() - started
    except TimeoutError:
        result.timed_out = True
    except (OSError, ValueError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        sock.close()
    return result


def sample_probes(makers: Mapping[str, Callable[[], Probe]], *, seconds: float, interval: float = 1.0,
                  timeout: float = 30.0, on_tick: Callable[[int], None] | None = None,
                  clock: Clock = time.monotonic) -> dict[str, list[Probe]]:
    """Every ``interval`` s for ``seconds`` s, start each maker's probe on its own thread (all at once);
    every result by maker name, in start order.

    ``on_tick(i)`` runs on the caller's thread at each start (for live
    counts).  Waits at most ``timeout`` + 5 s after the last start: a probe
    still running then (its own timeout should have ended it) counts as
    timed out.
    """
    count = max(1, int(seconds / interval + 1e-9))
    results: dict[str, list[Probe | None]] = {name: [None] * count for name in makers}
    threads: list[threading.Thread] = []
    began = clock()

    def run(name: str, i: int) -> None:
        results[name][i] = makers[name]()

    for i in range(count):
        delay = began + i * interval - clock()
        if delay > 0:
            time.sleep(delay)
        if on_tick is not None:
            on_tick(i)
        for name in makers:
            thread = threading.Thread(target=run, args=(name, i), name=f"probe-{name}-{i}", daemon=True)
            thread.start()
            threads.append(thread)
    last = clock()
    for thread in threads:
        thread.join(max(0.0, last + timeout + 5 - clock()))
    out: dict[str, list[Probe]] = {}
    for name, found in results.items():
        out[name] = [p if p is not None else Probe(name, began + i * interval, timed_out=True,
                                                   error="probe thread still running")
                     for i, p in enumerate(found)]
    return out
