"""A second process for the scheduler's tests: ``python -m tests.unit.jobs.scheduler_child MODE LOCK_DIR ...``.

* ``hold LOCK_DIR``: run job "shared" once; the job prints ``started`` and
  waits until stdin closes; then the outcome is printed.
* ``loop LOCK_DIR LOG INTERVAL SECONDS RUNS``: run job "shared" every INTERVAL
  on the scheduler's thread for SECONDS, and on until LOG holds RUNS runs (a
  busy machine may fit fewer into SECONDS); each run appends
  ``<pid> <start> <end>`` to LOG after sleeping a little, so overlapping runs
  would show.
"""

from __future__ import annotations

import os
import sys
import time

from imagecache.jobs.scheduler import Job, PeriodicJobs
from tests.support.waiting import wait_until

RUN_SECONDS = 0.1


def hold(lock_dir: str) -> None:
    def job() -> None:
        print("started", flush=True)
        sys.stdin.read()

    outcome = PeriodicJobs(lock_dir, [Job("shared", 3600, job)]).run_once("shared")
    print(outcome.value, flush=True)


def logged_runs(log: str) -> int:
    try:
        with open(log, encoding="ascii") as fh:
            return sum(1 for _ in fh)
    except FileNotFoundError:
        return 0


def loop(lock_dir: str, log: str, interval: float, seconds: float, runs: int) -> None:
    def job() -> None:
        start = time.time()
        time.sleep(RUN_SECONDS)
        with open(log, "a", encoding="ascii") as fh:
            fh.write(f"{os.getpid()} {start:.6f} {time.time():.6f}\n")

    jobs = PeriodicJobs(lock_dir, [Job("shared", interval, job)])
    jobs.start()
    time.sleep(seconds)  # the scenario: both processes contend for the job this long
    wait_until(lambda: logged_runs(log) >= runs, f"{runs} runs in {log}")
    assert jobs.stop(timeout=30)


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "hold":
        hold(args[0])
    else:
        loop(args[0], args[1], float(args[2]), float(args[3]), int(args[4]))
