"""One ``imagecache serve`` on a free loopback port, for the length of a ``with``.

::

    with ImagecacheServer(work_dir, workers=2) as server:
        http = Client(server.host, server.port)
        ...
    print(server.log_excerpt())       # warnings, errors and tracebacks it logged

The server gets its own data dir under ``work_dir``, its own session (so the
gunicorn master and its workers form one process group) and its log (stderr
and stdout) in ``work_dir/server.log``.  Leaving the ``with`` always stops it:
SIGTERM to the group, then SIGKILL to the group if it is still there.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

HOST = "127.0.0.1"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0

#: Log lines worth a reader's attention (gunicorn's and the app's levels, tracebacks).
NOTEWORTHY = re.compile(r"\b(WARNING|ERROR|CRITICAL|Traceback|WORKER TIMEOUT|Exception)\b")


class ServerDidNotStart(RuntimeError):
    """The server exited or did not answer /healthcheck in time."""


def free_port(host: str = HOST) -> int:
    """A port nobody listens on right now (someone may still take it first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def imagecache_command() -> list[str]:
    """``imagecache`` of this interpreter's environment (the venv's script if there is one)."""
    script = Path(sys.executable).with_name("imagecache")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "imagecache.cli"]


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without IMAGECACHE_* options (a benchmark sets its own), plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("IMAGECACHE_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def stop_group(popen: subprocess.Popen[bytes], timeout: float) -> int | None:
    """SIGTERM a server's process group, wait, SIGKILL what is left; the leader's exit status.

    Every server a benchmark starts leads its own session, so its group holds
    the master and its workers (or the limit server alone).
    """
    pgid = popen.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    try:
        status: int | None = popen.wait(timeout)
    except subprocess.TimeoutExpired:
        status = None
    # Whatever is left of the group (a stuck master, orphaned workers) goes now.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    if status is None:
        status = popen.wait(timeout)
    return status


class ImagecacheServer:
    """``imagecache serve --auth none`` in ``work_dir``; a context manager."""

    def __init__(
        self,
        work_dir: str | os.PathLike[str],
        *,
        workers: int = 2,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        ready_timeout: float = READY_TIMEOUT,
    ) -> None:
        self.work_dir = Path(work_dir).resolve()  # the server runs in it: relative paths would move
        self.data_dir = self.work_dir / "data"
        self.log_path = self.work_dir / "server.log"
        self.workers = workers
        self.extra_args = list(extra_args)
        self.env = clean_environment(env)
        self.ready_timeout = ready_timeout
        self.host = HOST
        self.port = 0
        self.argv: list[str] = []
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The gunicorn master's pid, which is also the process group of its workers (None when stopped)."""
        return self._popen.pid if self._popen is not None else None

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> ImagecacheServer:
        """Launch and wait for /healthcheck; a port taken meanwhile is retried."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):
            self.port = free_port(self.host)
            self.argv = [
                *imagecache_command(), "serve",
                "--host", self.host, "--port", str(self.port),
                "--data-dir", str(self.data_dir), "--workers", str(self.workers),
                "--auth", "none", *self.extra_args,
            ]
            with open(self.log_path, "ab") as log:
                log.write(f"--- {' '.join(self.argv)}\n".encode())
                log.flush()
                self._popen = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    cwd=self.work_dir,
                    env=self.env,
                    start_new_session=True,  # master and workers: one process group
                )
            try:
                self._wait_until_ready()
                return self
            except ServerDidNotStart:
                in_use = "Address already in use" in self.log() or "Connection in use" in self.log()
                self.stop()
                if attempt < 2 and in_use:
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait_until_ready(self) -> None:
        assert self._popen is not None
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self._popen.poll() is not None:
                raise ServerDidNotStart(
                    f"imagecache serve exited with status {self._popen.returncode}; log:\n{self.log()[-4000:]}"
                )
            if self.healthy():
                return
            time.sleep(0.05)
        raise ServerDidNotStart(
            f"imagecache serve did not answer /healthcheck within {self.ready_timeout:.0f} s; "
            f"log:\n{self.log()[-4000:]}"
        )

    def healthy(self) -> bool:
        try:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=2)
            try:
                connection.request("GET", "/healthcheck")
                return connection.getresponse().status == 200
            finally:
                connection.close()
        except (OSError, http.client.HTTPException):
            return False

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM the process group, wait, SIGKILL it; the master's exit status."""
        popen, self._popen = self._popen, None
        if popen is None:
            return None
        return stop_group(popen, timeout)

    def __enter__(self) -> ImagecacheServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- its log ---------------------------------------------------------------------
    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_excerpt(self, limit: int = 40) -> list[str]:
        """The log's warnings, errors and traceback lines (at most ``limit``, first ones)."""
        return noteworthy_lines(self.log(), limit)


def noteworthy_lines(log: str, limit: int = 40) -> list[str]:
    """Lines of ``log`` at WARNING or above, or from a traceback (pure)."""
    found: list[str] = []
    in_traceback = False
    for line in log.splitlines():
        if line.startswith("Traceback"):
            in_traceback = True
        elif in_traceback and line and not line.startswith((" ", "\t")):
            found.append(line)  # the exception line ends the traceback
            in_traceback = False
            continue
        if in_traceback or NOTEWORTHY.search(line):
            found.append(line)
        if len(found) >= limit:
            break
    return found
