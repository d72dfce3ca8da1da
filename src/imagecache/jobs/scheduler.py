"""PeriodicJobs: the cache jobs on a timer inside the server, one process at a time.

Every gunicorn worker runs one :class:`PeriodicJobs` on a daemon thread, and
they share the cache directory, so they agree through it:

* a job runs only under a non-blocking exclusive ``flock`` on its own lock
  file, ``<image_cache_dir>/.job-<name>.lock`` (the cache layout ignores names
  that are not image ids): a worker that finds it held skips that turn;
* the lock file records when the job last started, and a worker runs the job
  only once that is an interval ago, so N workers run it once per interval,
  not N times; if the worker that ran it dies, another takes over.

An interval <= 0 disables a job.  A job that raises is logged and runs again
at its next turn; nothing a job does stops the thread.  :meth:`stop` is prompt
(the thread waits on an Event), except that a job already running finishes
its turn first.
"""

from __future__ import annotations

import enum
import fcntl
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from imagecache.jobs.cleaner import Cleaner
from imagecache.jobs.pruner import Pruner

if TYPE_CHECKING:
    from imagecache.cache import ImageCache
    from imagecache.config import Settings
    from imagecache.jobs.prefetcher import Prefetcher

LOG = logging.getLogger(__name__)

#: Shortest wait between two looks at the schedule: a floor against spinning.
MIN_WAIT = 0.05
_NAME = re.compile(r"\A[a-z0-9][a-z0-9_-]*\Z")


class Outcome(enum.Enum):
    """What one attempt at a job came to."""

    RAN = "ran"
    FAILED = "failed"  # it raised (logged), or its lock file could not be used
    BUSY = "busy"  # another process or thread is running it
    NOT_DUE = "not due"  # someone ran it less than an interval ago


@dataclass(frozen=True)
class Job:
    """A named callable to run every ``interval`` seconds (<= 0: never)."""

    name: str
    interval: float
    run: Callable[[], object]


def lock_path(lock_dir: str, name: str) -> str:
    return os.path.join(lock_dir, f".job-{name}.lock")


def _read_stamp(fd: int) -> float | None:
    """When the job last started, as the lock file says (None: never, or unreadable)."""
    try:
        return float(os.pread(fd, 64, 0).decode("ascii").strip())
    except (ValueError, UnicodeDecodeError):
        return None


def _write_stamp(fd: int, when: float) -> None:
    data = f"{when:.6f}\n".encode("ascii")
    os.pwrite(fd, data, 0)
    os.ftruncate(fd, len(data))


class PeriodicJobs:
    """Runs jobs every N seconds on one daemon thread, coordinated by lock files in ``lock_dir``."""

    def __init__(
        self,
        lock_dir: str,
        jobs: Iterable[Job],
        *,
        clock: Callable[[], float] = time.time,
        thread_name: str = "imagecache-jobs",
    ) -> None:
        self.lock_dir = lock_dir
        self._clock = clock  # wall time: the stamps are compared across processes
        self._thread_name = thread_name
        self._jobs: dict[str, Job] = {}
        for job in jobs:
            if not _NAME.match(job.name):
                raise ValueError(f"job name {job.name!r}: use lower-case letters, digits, '-' and '_'")
            if job.name in self._jobs:
                raise ValueError(f"two jobs are named {job.name!r}")
            if job.interval <= 0:
                LOG.info("periodic job %s is disabled (interval %s)", job.name, job.interval)
                continue
            self._jobs[job.name] = job
        #: Per job: not before this time in this process (after a turn it took, skipped or failed).
        self._not_before: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_cache(
        cls,
        cache: ImageCache,
        *,
        prefetcher: Prefetcher | None = None,
        settings: Settings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> PeriodicJobs:
        """The server's jobs over ``cache``: cleaner, pruner and (given one) prefetcher.

        Intervals come from ``settings`` (default: the cache's):
        ``cleaner_interval``, ``pruner_interval``, ``prefetcher_interval``.
        Pass the prefetcher the management API uses, so a periodic run and a
        ``PUT /v2/cache/{id}`` never fetch the same image twice at once.
        """
        settings = settings if settings is not None else cache.settings
        jobs = [
            Job("cleaner", settings.cleaner_interval, Cleaner(settings, cache=cache).run),
            Job("pruner", settings.pruner_interval, Pruner(settings, cache=cache).run),
        ]
        if prefetcher is not None:
            jobs.append(Job("prefetcher", settings.prefetcher_interval, prefetcher.run))
        return cls(settings.image_cache_dir, jobs, clock=clock)

    @property
    def names(self) -> list[str]:
        """The enabled jobs."""
        return list(self._jobs)

    # -- one turn ----------------------------------------------------------------------
    def run_once(self, name: str) -> Outcome:
        """Run job ``name`` now, unless another process or thread is running it.

        Unlike the timer it does not wait for the job's interval to pass.
        KeyError for a job that is unknown or disabled.
        """
        return self._attempt(self._jobs[name], force=True)

    def tick(self) -> float:
        """Run every job that is due once; the seconds until one may be due again."""
        for job in self._jobs.values():
            if self._stop.is_set():
                break
            if self._due_in(job) <= 0:
                started = self._clock()
                if self._attempt(job, force=False) is not Outcome.NOT_DUE:
                    # Start to start, like the stamp the run left for the other workers.
                    self._not_before[job.name] = started + job.interval
        if not self._jobs:
            return 3600.0
        return max(MIN_WAIT, min(min(self._due_in(job), job.interval) for job in self._jobs.values()))

    def _due_in(self, job: Job) -> float:
        now = self._clock()
        due = self._not_before.get(job.name, now)
        stamp = self._peek_stamp(job.name)
        if stamp is not None and stamp <= now:  # a stamp in the future: the clock went back; ignore it
            due = max(due, stamp + job.interval)
        return due - now

    def _peek_stamp(self, name: str) -> float | None:
        """The last start without taking the lock (scheduling only; :meth:`_attempt` re-reads it locked)."""
        try:
            fd = os.open(lock_path(self.lock_dir, name), os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            return _read_stamp(fd)
        finally:
            os.close(fd)

    def _attempt(self, job: Job, *, force: bool) -> Outcome:
        try:
            fd = os.open(lock_path(self.lock_dir, job.name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            LOG.error("periodic job %s: cannot open its lock file: %s", job.name, exc)
            return Outcome.FAILED
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                LOG.debug("periodic job %s is running elsewhere; skipped", job.name)
                return Outcome.BUSY
            now = self._clock()
            last = _read_stamp(fd)
            if not force and last is not None and 0 <= now - last < job.interval:
                return Outcome.NOT_DUE
            try:
                _write_stamp(fd, now)
            except OSError as exc:
                LOG.error("periodic job %s: cannot write its lock file: %s", job.name, exc)
                return Outcome.FAILED
            return self._run(job)
        finally:
            os.close(fd)  # releases the lock

    @staticmethod
    def _run(job: Job) -> Outcome:
        started = time.monotonic()
        try:
            result = job.run()
        except Exception:  # a failing job must not end the thread
            LOG.exception("periodic job %s failed", job.name)
            return Outcome.FAILED
        LOG.debug("periodic job %s done in %.2fs: %r", job.name, time.monotonic() - started, result)
        return Outcome.RAN

    # -- the thread ----------------------------------------------------------------------
    def start(self) -> None:
        """Start the daemon thread (in the process that will run the jobs: after a fork)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self._thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> bool:
        """Stop the thread; False if a running job kept it past ``timeout`` seconds."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                delay = self.tick()
            except Exception:  # belt and braces: the thread must survive
                LOG.exception("periodic jobs: unexpected failure")
                delay = 60.0
            if self._stop.wait(delay):
                return
