"""Many downloads at once from several client processes, so the load generator is not what is measured.

One Python process reading 128 sockets from 128 threads spends its time
passing the GIL around: at N=128 the limit server itself "slowed down" by a
fifth in the storm, with its own CPU barely used.  Here the N downloads are
shared out over a few processes (threads in each), released together by one
``multiprocessing.Barrier``; every process stamps with ``time.perf_counter``
(CLOCK_MONOTONIC, one clock for the whole machine), so wall = first start to
last finish across them all, as in :func:`bench.http.release_together`.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from dataclasses import dataclass
from typing import Any

from bench.http import Client, Download

#: Processes the downloads are shared out over: enough that no client process holds
#: more than a few dozen sockets, few enough not to crowd a 2-core machine.
DEFAULT_PROCESSES = 4


@dataclass(frozen=True)
class _Job:
    host: str
    port: int
    headers: dict[str, str]
    image_id: str
    count: int
    verify: bool
    timeout: float


@dataclass
class Result:
    """What one download did, carried back from its process (a :class:`Download`'s facts)."""

    status: int | None
    nbytes: int
    sha256: str | None
    started: float | None
    finished: float | None
    error: str | None

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started


def _run(index: int, job: _Job, barrier: Any, results: Any) -> None:
    """In a client process: ``job.count`` downloads in threads, released with the others."""
    client = Client(job.host, job.port, timeout=job.timeout, headers=job.headers)
    downloads = [Download(client, job.image_id, verify=job.verify, timeout=job.timeout) for _ in range(job.count)]

    def go(download: Download) -> None:
        try:
            barrier.wait(job.timeout)
        except threading.BrokenBarrierError:
            download.error = "the barrier broke before the start"
            return
        download()

    threads = [threading.Thread(target=go, args=(d,), daemon=True) for d in downloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(job.timeout + 10)
    results.put((index, [Result(d.status, d.nbytes, d.sha256, d.started, d.finished, d.error) for d in downloads]))


def download_together(client: Client, image_id: str, n: int, *, verify: bool, timeout: float,
                      processes: int = DEFAULT_PROCESSES) -> list[Result]:
    """``n`` downloads of ``image_id`` released together from up to ``processes`` processes.

    A process that does not report within ``timeout`` (plus start-up) is
    killed; its downloads come back as errors, never as silence.
    """
    processes = max(1, min(processes, n))
    counts = [n // processes + (1 if i < n % processes else 0) for i in range(processes)]
    return download_across([(client, count) for count in counts], image_id, verify=verify, timeout=timeout)


def download_across(targets: list[tuple[Client, int]], image_id: str, *, verify: bool,
                    timeout: float) -> list[Result]:
    """Downloads from several servers at once: one client process per ``(client, count)``, one barrier.

    The results come back in the order of ``targets`` (each target's
    ``count`` results together), so a caller can tell which server
    served which download.
    """
    context = multiprocessing.get_context("spawn")
    targets = [(client, count) for client, count in targets if count > 0]
    barrier = context.Barrier(sum(count for _, count in targets))
    results = context.Queue()
    workers = [
        context.Process(target=_run, args=(index, _Job(client.host, client.port, dict(client.headers), image_id,
                                                       count, verify, timeout), barrier, results), daemon=True)
        for index, (client, count) in enumerate(targets)
    ]
    for worker in workers:
        worker.start()
    reported: dict[int, list[Result]] = {}
    try:
        for _ in workers:
            index, batch = results.get(timeout=timeout + 60)
            reported[index] = batch
    except queue.Empty:
        pass
    finally:
        for worker in workers:
            worker.join(5)
            if worker.is_alive():
                worker.kill()
                worker.join(5)
    collected: list[Result] = []
    for index, (_, count) in enumerate(targets):
        collected += reported.get(index) or [
            Result(None, 0, None, None, None, "no report from its client process") for _ in range(count)
        ]
    return collected
