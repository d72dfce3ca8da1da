"""A WAN link on loopback: a TCP relay whose downstream bytes share one rate limit.

An edge site reaches its origin over one link, so every node's fill shares
that link's bandwidth: four nodes each reading a 512 MiB image over a
200 MiB/s link take four times as long as one.  A throttle inside the origin
server (per download) would not show that; this relay does.  It forwards
every connection to the origin and paces what flows back (origin → node)
through one token bucket for all of them; requests flow up unpaced.

Run it in its own process so its pacing never competes with the load
generator's GIL::

    with WanLink(origin_host, origin_port, rate=200 * MiB) as link:
        ... # point nodes at link.url
        link.bytes_down()  # what crossed the link so far
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

from bench.server import HOST, stop_group

#: Bytes a pump moves per turn: small enough that pacing stays smooth at 200 MiB/s.
PIECE = 256 << 10


class Bucket:
    """One rate for many senders: each asks when it may send ``n`` bytes."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._free_at = time.monotonic()
        self.sent = 0

    def take(self, n: int) -> None:
        """Block until ``n`` more bytes fit in the rate (first come, first served)."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self._free_at)
            self._free_at = start + n / self.rate
            self.sent += n
            wait = self._free_at - now
        if wait > 0:
            time.sleep(wait)


def _pump(source: socket.socket, sink: socket.socket, bucket: Bucket | None) -> None:
    """Copy until either side closes; then shut the other side's write half."""
    try:
        while True:
            data = source.recv(PIECE)
            if not data:
                break
            if bucket is not None:
                bucket.take(len(data))
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def _relay(client: socket.socket, target: tuple[str, int], bucket: Bucket) -> None:
    try:
        upstream = socket.create_connection(target, timeout=30)
    except OSError:
        client.close()
        return
    upstream.settimeout(None)
    up = threading.Thread(target=_pump, args=(client, upstream, None), daemon=True)
    up.start()
    _pump(upstream, client, bucket)
    up.join(60)
    client.close()
    upstream.close()


def serve(listener: socket.socket, target: tuple[str, int], rate: float, counter: Path) -> None:
    """Accept forever; every connection relayed, its downstream paced by one bucket.

    ``counter`` is rewritten with the bytes sent down whenever someone asks
    (SIGUSR1), so a benchmark can read what crossed the link.
    """
    bucket = Bucket(rate)

    def report(*_: object) -> None:
        tmp = counter.with_suffix(".tmp")
        tmp.write_text(str(bucket.sent))
        os.replace(tmp, counter)

    signal.signal(signal.SIGUSR1, report)
    while True:
        readable, _, _ = select.select([listener], [], [], 1.0)
        if not readable:
            continue
        client, _ = listener.accept()
        threading.Thread(target=_relay, args=(client, target, bucket), daemon=True).start()


class WanLink:
    """``python -m bench.wan`` in its own process group, for the length of a ``with``."""

    def __init__(self, target_host: str, target_port: int, *, rate: float, work_dir: Path) -> None:
        self.target = (target_host, target_port)
        self.rate = rate
        self.counter = work_dir / "wan-bytes"
        self.host = HOST
        self.port = 0
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> WanLink:
        self._popen = subprocess.Popen(
            [sys.executable, "-m", "bench.wan", "--target", f"{self.target[0]}:{self.target[1]}",
             "--rate", str(self.rate), "--counter", str(self.counter)],
            stdout=subprocess.PIPE, start_new_session=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        assert self._popen.stdout is not None
        line = self._popen.stdout.readline().decode().strip()
        if not line.isdigit():
            self.stop()
            raise RuntimeError(f"the WAN relay did not start (it said {line!r})")
        self.port = int(line)
        return self

    def bytes_down(self, timeout: float = 10.0) -> int:
        """Bytes the link has carried towards the nodes so far."""
        assert self._popen is not None
        with contextlib.suppress(FileNotFoundError):
            self.counter.unlink()
        os.kill(self._popen.pid, signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(FileNotFoundError, ValueError):
                return int(self.counter.read_text())
            time.sleep(0.01)
        raise RuntimeError("the WAN relay did not report its byte count")

    def stop(self) -> None:
        popen, self._popen = self._popen, None
        if popen is not None:
            stop_group(popen, 10)
            if popen.stdout is not None:
                popen.stdout.close()

    def __enter__(self) -> WanLink:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.wan", description=__doc__.split("\n")[0])
    parser.add_argument("--target", required=True, help="HOST:PORT of the origin")
    parser.add_argument("--rate", type=float, required=True, help="bytes per second down the link, for all")
    parser.add_argument("--counter", type=Path, required=True, help="file the byte count is written to on SIGUSR1")
    args = parser.parse_args(argv)
    host, _, port = args.target.rpartition(":")
    listener = socket.create_server((HOST, 0), backlog=256)
    print(listener.getsockname()[1], flush=True)
    serve(listener, (host, int(port)), args.rate, args.counter)


if __name__ == "__main__":
    main()
