"""A real Prometheus on loopback, scraping imagecache nodes, for functional tests.

It is Debian's ``prometheus`` binary (``make prometheus`` installs it), run
by the test itself with a configuration and a TSDB of its own in a
temporary directory, on a free loopback port, never the system's service
on 9090.  ``running_prometheus`` always stops it, whatever the test did.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tests.support.ci import skip_unless_ci
from tests.support.waiting import WaitTimeout, wait_until

from .conftest import free_port

#: Seconds Prometheus gets to answer /-/ready (it replays an empty WAL: about a second).
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
JOB = "imagecache"


def prometheus_binary() -> str:
    """The path of ``prometheus``; a skip (a failure under CI=true) saying how to get it."""
    found = shutil.which("prometheus")
    if found is None:
        skip_unless_ci(
            "prometheus is not installed: `make prometheus` (as root) or `apt-get install prometheus` "
            "runs the dashboard's queries on a real one",
            "the dashboard test on a real Prometheus",
        )
    return found


def scrape_config(targets: Sequence[str], interval: str) -> str:
    """A Prometheus configuration scraping ``targets`` (host:port) as job ``imagecache`` (JSON is YAML)."""
    return json.dumps({
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
        "scrape_configs": [{"job_name": JOB, "metrics_path": "/metrics",
                            "static_configs": [{"targets": list(targets)}]}],
    }, indent=2)


class Prometheus:
    """One ``prometheus`` process and its HTTP API."""

    def __init__(self, binary: str, workdir: Path, targets: Sequence[str], interval: str = "1s") -> None:
        self.binary, self.workdir, self.targets, self.interval = binary, workdir, list(targets), interval
        self.log_path = workdir / "prometheus.log"
        self.port = 0
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Launch and wait for /-/ready; a port taken meanwhile is retried with another."""
        config = self.workdir / "prometheus.yml"
        config.write_text(scrape_config(self.targets, self.interval), encoding="utf-8")
        for _attempt in range(3):
            self.port = free_port()
            argv = [self.binary, f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=info"]
            with open(self.log_path, "ab") as log:
                self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                              cwd=self.workdir, start_new_session=True)
            try:
                wait_until(self._ready, f"prometheus to be ready on port {self.port}", timeout=READY_TIMEOUT)
                return
            except WaitTimeout:
                self.stop()
                if "address already in use" not in self.logs():
                    raise
        raise AssertionError(f"prometheus found no free port; its log:\n{self.logs()}")

    def _ready(self) -> bool:
        if self.popen is not None and self.popen.poll() is not None:
            raise WaitTimeout(f"prometheus exited with status {self.popen.returncode}; its log:\n{self.logs()[-3000:]}")
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=5) as answer:
                return bool(answer.status == 200)
        except OSError:  # not listening yet, or 503 while it starts
            return False

    def query(self, expr: str) -> dict[str, Any]:
        """``/api/v1/query`` of ``expr`` now: the whole JSON answer (an error is an answer too)."""
        url = self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                document: dict[str, Any] = json.load(answer)
        except urllib.error.HTTPError as refused:  # 400 for a query that does not parse, with the reason
            with refused:
                document = json.load(refused)
        return document

    def values(self, expr: str) -> list[float]:
        """The sample values of an instant query (empty when it has no data or does not parse)."""
        document = self.query(expr)
        if document.get("status") != "success":
            return []
        return [float(sample["value"][1]) for sample in document["data"]["result"]]

    def logs(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL of its process group if it does not exit in time."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(STOP_TIMEOUT)


@contextlib.contextmanager
def running_prometheus(
    binary: str, workdir: Path, targets: Sequence[str], interval: str = "1s"
) -> Iterator[Prometheus]:
    """A started Prometheus scraping ``targets``, stopped when the block ends (a failure included)."""
    workdir.mkdir(parents=True, exist_ok=True)
    prometheus = Prometheus(binary, workdir, targets, interval)
    try:
        prometheus.start()
        yield prometheus
    finally:
        prometheus.stop()
