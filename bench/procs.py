"""A server's processes, from /proc: who they are, their memory, their reads.

Every server a benchmark starts leads its own session (``start_new_session``),
so its processes (gunicorn's master and workers, or the limit server) are
the members of one process group.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, field

PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def group_pids(pgid: int) -> list[int]:
    """Live processes whose process group is ``pgid``."""
    found: list[int] = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 2 and int(fields[2]) == pgid:
            found.append(int(name))
    return sorted(found)


def rss_each(pids: list[int]) -> list[int]:
    """Resident set size of each of ``pids`` (0 for a process gone meanwhile)."""
    sizes = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", "rb") as fh:
                sizes.append(int(fh.read().split()[1]) * PAGE)
        except (OSError, IndexError, ValueError):
            sizes.append(0)
    return sizes


def rss_bytes(pids: list[int]) -> int:
    """Resident set size summed over ``pids`` (shared pages count once per process)."""
    return sum(rss_each(pids))


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds (``utime`` + ``stime`` of ``/proc/<pid>/stat``, every thread) summed over
    ``pids``; a process gone meanwhile counts 0 (take the pids again at each reading)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()  # fields[0] is field 3 (state)
        with contextlib.suppress(IndexError, ValueError):
            total += int(fields[11]) + int(fields[12])  # fields 14 and 15: utime, stime
    return total / TICKS


def io_counters(pids: list[int]) -> dict[str, int]:
    """``/proc/<pid>/io`` summed over ``pids`` (rchar, read_bytes, ...)."""
    totals: dict[str, int] = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/io") as fh:
                for line in fh:
                    key, _, value = line.partition(":")
                    totals[key] = totals.get(key, 0) + int(value)
        except (OSError, ValueError):
            pass
    return totals


@dataclass
class RssSampler:
    """Samples the RSS of a process group every ``interval`` s on a thread (``with``)."""

    pgid: int
    interval: float = 0.05
    rescan: float = 1.0  # seconds between looks for new processes
    peak: int = 0
    #: The largest RSS of any one process of the group (the worker answering, say).
    peak_process: int = 0
    samples: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        pids = group_pids(self.pgid)
        scanned = time.monotonic()
        while True:  # at least one sample, however short the ``with``
            if time.monotonic() - scanned > self.rescan:
                pids, scanned = group_pids(self.pgid), time.monotonic()
            each = rss_each(pids)
            value = sum(each)
            self.samples.append(value)
            self.peak = max(self.peak, value)
            self.peak_process = max(self.peak_process, *each, 0)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
