"""Plain HTTP to an image API node: images, downloads, the cache, /metrics.

Only ``http.client``, one fresh connection per call, so that what is timed is
the server and the loopback, not a client library's pooling.  (Absolute
imports make ``import http.client`` here the standard library's.)
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

CHUNK = 1 << 20
TIMEOUT = 60.0


class BenchHTTPError(RuntimeError):
    """The server answered something a benchmark cannot go on with."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Client:
    """Requests to one server at ``host:port``."""

    def __init__(
        self, host: str, port: int, timeout: float = TIMEOUT, headers: dict[str, str] | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        #: Sent with every request (e.g. ``X-Auth-Token``); a call's own headers win.
        self.headers = dict(headers or {})

    def connection(self, timeout: float | None = None) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(
            self.host, self.port, timeout=self.timeout if timeout is None else timeout, blocksize=CHUNK
        )

    def request(
        self, method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Answer:
        connection = self.connection(timeout)
        try:
            connection.request(method, path, body=body, headers={**self.headers, **(headers or {})})
            response = connection.getresponse()
            return Answer(response.status, response.read())
        finally:
            connection.close()

    def expect(self, status: int, method: str, path: str, **kwargs: Any) -> Answer:
        answer = self.request(method, path, **kwargs)
        if answer.status != status:
            raise BenchHTTPError(f"{method} {path}: {answer.status} (wanted {status}): {answer.text[:500]}")
        return answer

    # -- images ----------------------------------------------------------------------
    def create_image(self, name: str = "bench") -> str:
        body = json.dumps({"name": name, "disk_format": "raw", "container_format": "bare"})
        answer = self.expect(201, "POST", "/v2/images", body=body, headers={"Content-Type": "application/json"})
        return str(answer.json()["id"])

    def upload_file(self, image_id: str, path: str | os.PathLike[str], timeout: float = 600.0) -> None:
        """Stream a file as the image's data (``PUT /v2/images/{id}/file``)."""
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            self.expect(
                204, "PUT", f"/v2/images/{image_id}/file", body=fh, timeout=timeout,
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            )

    def download(self, image_id: str, **kwargs: Any) -> Download:
        """GET the image's data now (see :class:`Download`)."""
        download = Download(self, image_id, **kwargs)
        download()
        return download

    # -- cache -----------------------------------------------------------------------
    def cached_images(self) -> dict[str, dict[str, Any]]:
        answer = self.expect(200, "GET", "/v2/cache")
        return {entry["image_id"]: entry for entry in answer.json().get("cached_images", [])}

    def evict(self, image_id: str) -> None:
        """``DELETE /v2/cache/{id}``, then make sure ``GET /v2/cache`` no longer lists it."""
        self.expect(204, "DELETE", f"/v2/cache/{image_id}")
        if image_id in self.cached_images():
            raise BenchHTTPError(f"image {image_id} is still listed in /v2/cache after DELETE")

    def wait_cached(self, image_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """The image's /v2/cache entry once it is listed (a fill publishes just after its last byte)."""
        deadline = time.monotonic() + timeout
        while True:
            entry = self.cached_images().get(image_id)
            if entry is not None:
                return entry
            if time.monotonic() >= deadline:
                raise BenchHTTPError(f"image {image_id} was not listed in /v2/cache within {timeout:.0f} s")
            time.sleep(0.02)

    # -- metrics ---------------------------------------------------------------------
    def metrics(self) -> Metrics:
        return Metrics.parse(self.expect(200, "GET", "/metrics").text)


MetricKey = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class Metrics:
    """One scrape of /metrics: sample (name, labels) -> value."""

    samples: dict[MetricKey, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Metrics:
        return cls({
            (sample.name, tuple(sorted(sample.labels.items()))): float(sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        })

    def get(self, name: str, **labels: str) -> float:
        return self.samples.get((name, tuple(sorted(labels.items()))), 0.0)

    def __sub__(self, before: Metrics) -> Metrics:
        """The change since ``before`` (for counters)."""
        keys = self.samples.keys() | before.samples.keys()
        return Metrics({key: self.samples.get(key, 0.0) - before.samples.get(key, 0.0) for key in keys})


class Download:
    """One client's ``GET /v2/images/{id}/file``, the body counted (and hashed if asked) and dropped.

    Call it (in its own thread, typically); afterwards ``status``,
    ``nbytes``, ``started``/``finished`` (``time.perf_counter``), ``sha256``
    (when ``verify``) and ``error`` (None when the transfer completed) tell
    what happened.  ``abort()`` from another thread breaks a transfer in
    progress (for timeouts).
    """

    def __init__(
        self, client: Client, image_id: str, *, verify: bool = False, timeout: float | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.client = client
        self.image_id = image_id
        self.verify = verify
        self.timeout = timeout
        self.clock = clock
        self.status: int | None = None
        self.declared: int | None = None
        self.nbytes = 0
        self.sha256: str | None = None
        self.started: float | None = None
        self.finished: float | None = None
        self.error: str | None = None
        self._connection: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()
        self._aborted = False

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started

    def __call__(self) -> None:
        digest = hashlib.sha256() if self.verify else None
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        self.started = self.clock()
        connection = self.client.connection(self.timeout)
        with self._lock:
            self._connection = connection
            if self._aborted:
                connection.close()
        try:
            connection.request("GET", f"/v2/images/{self.image_id}/file", headers=self.client.headers)
            response = connection.getresponse()
            self.status = response.status
            length = response.getheader("Content-Length")
            self.declared = int(length) if length is not None else None
            while True:
                n = response.readinto(view)
                if not n:
                    break
                self.nbytes += n
                if digest is not None:
                    digest.update(view[:n])
            if self.status != 200:
                self.error = f"status {self.status}"
            elif self.declared is not None and self.nbytes != self.declared:
                self.error = f"got {self.nbytes} of {self.declared} bytes"
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self.error = f"{type(exc).__name__}: {exc}" if not self._aborted else "aborted (timeout)"
        finally:
            self.finished = self.clock()
            connection.close()
            if digest is not None:
                self.sha256 = digest.hexdigest()

    def abort(self) -> None:
        """Break the transfer from another thread (the reader gets an error at once)."""
        with self._lock:
            self._aborted = True
            connection = self._connection
        if connection is not None and connection.sock is not None:
            with contextlib.suppress(OSError):
                connection.sock.shutdown(socket.SHUT_RDWR)


@dataclass
class Batch:
    """N downloads released together."""

    wall: float
    downloads: list[Any]  # Download, or bench.clients.Result from a client process
    errors: list[str]

    @property
    def nbytes(self) -> int:
        return sum(d.nbytes for d in self.downloads)


def release_together(client: Client, image_id: str, n: int, size: int, timeout: float, *,
                     expected_sha256: str | None = None, processes: int = 1) -> Batch:
    """``n`` concurrent downloads (threads released by a barrier); every client must get ``size`` bytes.

    wall = first start to last finish; the errors name each client that got
    less, the wrong bytes (when ``expected_sha256`` is given) or no end.
    ``processes`` > 1 shares the downloads out over that many client
    processes (:mod:`bench.clients`), so a large N measures the server
    rather than one process's GIL.
    """
    if processes > 1:
        from bench.clients import download_together  # it imports this module

        results = download_together(client, image_id, n, verify=expected_sha256 is not None, timeout=timeout,
                                    processes=processes)
        return judge_batch(results, size, expected_sha256)
    downloads = [Download(client, image_id, verify=expected_sha256 is not None, timeout=timeout) for _ in range(n)]
    barrier = threading.Barrier(n)

    def go(download: Download) -> None:
        try:
            barrier.wait(timeout)
        except threading.BrokenBarrierError:
            download.error = "the barrier broke before the start"
            return
        download()

    threads = [threading.Thread(target=go, args=(d,), name=f"client-{i}", daemon=True) for i, d in enumerate(downloads)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    if any(thread.is_alive() for thread in threads):
        barrier.abort()
        for download in downloads:
            download.abort()
        for thread in threads:
            thread.join(10)
    return judge_batch(downloads, size, expected_sha256)


def judge_batch(downloads: Sequence[Any], size: int, expected_sha256: str | None) -> Batch:
    """The batch of finished downloads (:class:`Download`, or :class:`bench.clients.Result`), judged."""
    errors: list[str] = []
    for i, download in enumerate(downloads):
        problem = download.error
        if problem is None and download.nbytes != size:
            problem = f"received {download.nbytes} of {size} bytes"
        if problem is None and expected_sha256 is not None and download.sha256 != expected_sha256:
            problem = f"sha256 {download.sha256} is not the uploaded data's"
        if problem is None and download.finished is None:
            problem = "still running after the timeout"
        if problem is not None:
            errors.append(f"client {i}: {problem}")
    starts = [d.started for d in downloads if d.started is not None]
    ends = [d.finished for d in downloads if d.finished is not None]
    wall = (max(ends) - min(starts)) if starts and ends else float("nan")
    return Batch(wall, list(downloads), errors)


def write_random_file(path: str | os.PathLike[str], size: int, chunk: int = 8 * CHUNK) -> str:
    """``size`` random bytes into ``path``; their sha256 (hex)."""
    digest = hashlib.sha256()
    with open(Path(path), "wb") as fh:
        remaining = size
        while remaining > 0:
            data = os.urandom(min(chunk, remaining))
            fh.write(data)
            digest.update(data)
            remaining -= len(data)
    return digest.hexdigest()
