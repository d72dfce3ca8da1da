"""The limits: what a raw socket and the hash functions can do on this machine.

* :func:`serve` (``python -m bench.limit --root DIR --port N``): a minimal
  HTTP/1.1 file server, one thread per connection, keep-alive, that answers
  ``GET /v2/images/{id}/file`` (or any path: its last segment names the file,
  ``/file`` dropped) with the file ``DIR/{id}``, read into one buffer and
  sent with ``sendall`` in 1 MiB chunks.  No auth, no index, no hashing: the
  floor under any Python image server.  :class:`LimitServer` runs it in its
  own process (its own session, like the real servers) for the length of a
  ``with``.
* :func:`hash_rates`: the hashes of ``size`` bytes held in memory, in 1 MiB
  chunks: sha512 alone (the ceiling of a fill under the default
  ``image_cache_verify = strongest``, which checks the multihash only), and
  md5 + sha512 one after the other on one thread and on two threads at once
  (hashlib releases the GIL: the ceiling under ``image_cache_verify = all``).
* :func:`durable_write_seconds`: writing ``size`` bytes to a new file in 1 MiB
  chunks and fsyncing it, on the filesystem the servers keep their data on:
  the ceiling of any miss that, like imagecache's, makes the file durable
  before its answer ends.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from bench.server import HOST, free_port, stop_group

CHUNK = 1 << 20
READY_TIMEOUT = 15.0
HEADER_LIMIT = 64 * 1024


# -- the server (runs in its own process) ---------------------------------------------


def _file_for(root: str, target: str) -> str | None:
    path = target.split("?", 1)[0]
    parts = [p for p in path.split("/") if p]
    if parts and parts[-1] == "file":
        parts = parts[:-1]
    if not parts or parts[-1] in (".", ".."):
        return None
    return os.path.join(root, parts[-1])


def _handle(conn: socket.socket, root: str) -> None:
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    pending = b""
    with conn:
        while True:
            while b"\r\n\r\n" not in pending:
                data = conn.recv(65536)
                if not data:
                    return
                pending += data
                if len(pending) > HEADER_LIMIT:
                    return
            head, _, pending = pending.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            try:
                method, target, version = lines[0].split(" ", 2)
            except ValueError:
                return
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
            length = int(headers.get("content-length") or 0)
            while len(pending) < length:  # a body nobody reads (none expected)
                data = conn.recv(65536)
                if not data:
                    return
                pending += data
            pending = pending[length:]
            connection = b"keep-alive" if keep_alive else b"close"
            name = _file_for(root, target)
            if target == "/healthcheck":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: " + connection + b"\r\n\r\nOK")
            elif method not in ("GET", "HEAD") or name is None or not os.path.isfile(name):
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: " + connection + b"\r\n\r\n")
            else:
                with open(name, "rb", buffering=0) as fh:
                    size = os.fstat(fh.fileno()).st_size
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                        b"Content-Length: %d\r\nConnection: %s\r\n\r\n" % (size, connection)
                    )
                    if method == "GET":
                        while True:
                            n = fh.readinto(buf)
                            if not n:
                                break
                            conn.sendall(view[:n])
            if not keep_alive:
                return


def serve(root: str, host: str, port: int) -> None:
    """Serve ``root`` on ``host:port`` until SIGTERM."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(512)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))

    def guarded(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            _handle(conn, root)

    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=guarded, args=(conn,), daemon=True).start()


class LimitServer:
    """:func:`serve` in its own process on a free port, files in ``root``; a context manager."""

    def __init__(self, root: str | os.PathLike[str], work_dir: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.work_dir = Path(work_dir).resolve()
        self.log_path = self.work_dir / "limit.log"
        self.host = HOST
        self.port = 0
        self.pid = 0
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LimitServer:
        self.root.mkdir(parents=True, exist_ok=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        repo = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": repo + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.port = free_port(self.host)
        with open(self.log_path, "ab") as log:
            self._popen = subprocess.Popen(
                [sys.executable, "-m", "bench.limit", "--root", str(self.root), "--port", str(self.port)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True,
            )
        self.pid = self._popen.pid
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._popen.poll() is not None:
                raise RuntimeError(f"the limit server exited ({self._popen.returncode}): {self.log_path.read_text()}")
            try:
                connection = http.client.HTTPConnection(self.host, self.port, timeout=2)
                connection.request("GET", "/healthcheck")
                if connection.getresponse().status == 200:
                    connection.close()
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the limit server did not answer within {READY_TIMEOUT:.0f} s")

    def stop(self) -> None:
        popen, self._popen = self._popen, None
        if popen is None:
            return
        stop_group(popen, 10)

    def __enter__(self) -> LimitServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# -- hashing ---------------------------------------------------------------------------


def test_data(size: int) -> bytes:
    """``size`` bytes: one random MiB repeated (hash speed does not depend on content)."""
    block = os.urandom(min(CHUNK, size))
    whole, rest = divmod(size, len(block))
    return block * whole + block[:rest]


def hash_rates(data: bytes) -> dict[str, float]:
    """Seconds to hash ``data`` in 1 MiB chunks: ``sha512`` (alone: what a fill verifies by
    default), and for md5 + sha512 (every digest, ``image_cache_verify = all``): ``sequential``
    (one thread, both hashes per chunk) and ``two_threads`` (md5 on one thread, sha512 on another)."""
    view = memoryview(data)
    chunks = [view[i:i + CHUNK] for i in range(0, len(view), CHUNK)]

    started = time.perf_counter()
    alone = hashlib.sha512()
    for chunk in chunks:
        alone.update(chunk)
    alone.hexdigest()
    sha512 = time.perf_counter() - started

    started = time.perf_counter()
    md5, both_sha512 = hashlib.md5(), hashlib.sha512()
    for chunk in chunks:
        md5.update(chunk)
        both_sha512.update(chunk)
    md5.hexdigest(), both_sha512.hexdigest()
    sequential = time.perf_counter() - started

    def run(digest: hashlib._Hash) -> None:
        for chunk in chunks:
            digest.update(chunk)

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(d,)) for d in (hashlib.md5(), hashlib.sha512())]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    two_threads = time.perf_counter() - started
    return {"sha512": sha512, "sequential": sequential, "two_threads": two_threads}


def durable_write_seconds(data: bytes, directory: Path) -> float:
    """Seconds to write ``data`` to a new file in ``directory`` in 1 MiB chunks, then fsync it (file removed after)."""
    view = memoryview(data)
    path = directory / f"durable-write-{os.getpid()}"
    started = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for offset in range(0, len(view), CHUNK):
            os.write(fd, view[offset:offset + CHUNK])
        os.fsync(fd)
        return time.perf_counter() - started
    finally:
        os.close(fd)
        path.unlink()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.limit", description="the raw-socket limit file server")
    parser.add_argument("--root", required=True, help="directory of the files served")
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    serve(args.root, args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
