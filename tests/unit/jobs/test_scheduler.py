"""PeriodicJobs: one runner per job across processes, disabled jobs, failures, prompt stop."""

from __future__ import annotations

import itertools
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from imagecache import ImageCache
from imagecache.jobs.prefetcher import Prefetcher
from imagecache.jobs.scheduler import MIN_WAIT, Job, Outcome, PeriodicJobs, lock_path
from imagecache.wsgi.image_source import ImageSource
from tests.support.waiting import wait_until
from tests.unit.jobs.conftest import ADMIN

REPO = Path(__file__).resolve().parents[3]


class Calls:
    """A job that counts its runs (and can be told to fail or to wait)."""

    def __init__(self, fail: int = 0) -> None:
        self.count = 0
        self.fail = fail
        self.ran = threading.Event()

    def __call__(self) -> int:
        self.count += 1
        self.ran.set()
        if self.count <= self.fail:
            raise RuntimeError(f"job failure number {self.count}")
        return self.count


def child(*args: str) -> list[str]:
    return [sys.executable, "-m", "tests.unit.jobs.scheduler_child", *args]


# -- one turn -----------------------------------------------------------------------------


def test_run_once_runs_the_job_and_stamps_its_lock_file(tmp_path, clock) -> None:
    calls = Calls()
    jobs = PeriodicJobs(str(tmp_path), [Job("cleaner", 60, calls)], clock=clock)
    assert jobs.run_once("cleaner") is Outcome.RAN
    assert calls.count == 1
    path = lock_path(str(tmp_path), "cleaner")
    assert path == str(tmp_path / ".job-cleaner.lock")
    assert float(Path(path).read_text()) == clock.now
    assert jobs.run_once("cleaner") is Outcome.RAN  # forced: no waiting for the interval


def test_a_job_runs_when_due_and_not_before(tmp_path, clock) -> None:
    calls = Calls()
    jobs = PeriodicJobs(str(tmp_path), [Job("pruner", 60, calls)], clock=clock)
    assert jobs.tick() == 60  # a fresh cache dir: due at once, then in an interval
    assert calls.count == 1
    clock.advance(59)
    assert jobs.tick() == pytest.approx(1)
    assert calls.count == 1
    clock.advance(1)
    jobs.tick()
    assert calls.count == 2


def test_the_rhythm_is_start_to_start(tmp_path, clock) -> None:
    jobs = PeriodicJobs(str(tmp_path), [Job("prefetcher", 60, lambda: clock.advance(10))], clock=clock)
    assert jobs.tick() == pytest.approx(50)  # a 10 s run does not push the next one back


def test_workers_share_one_rhythm(tmp_path, clock) -> None:
    """Two schedulers on one cache dir (two workers) run a job once per interval, not twice."""
    calls = Calls()
    first = PeriodicJobs(str(tmp_path), [Job("pruner", 60, calls)], clock=clock)
    second = PeriodicJobs(str(tmp_path), [Job("pruner", 60, calls)], clock=clock)
    first.tick()
    clock.advance(10)
    assert second.tick() == pytest.approx(50)  # it follows the stamp the first one left
    assert calls.count == 1
    clock.advance(50)
    second.tick()
    first.tick()
    assert calls.count == 2


def test_a_job_whose_worker_died_is_taken_over(tmp_path, clock) -> None:
    calls = Calls()
    PeriodicJobs(str(tmp_path), [Job("pruner", 60, calls)], clock=clock).tick()  # then that worker is gone
    survivor = PeriodicJobs(str(tmp_path), [Job("pruner", 60, calls)], clock=clock)
    clock.advance(60)
    survivor.tick()
    assert calls.count == 2


def test_a_stamp_from_the_future_does_not_stall_the_job(tmp_path, clock) -> None:
    calls = Calls()
    Path(lock_path(str(tmp_path), "pruner")).write_text(f"{clock.now + 86400}\n")  # the clock went back
    PeriodicJobs(str(tmp_path), [Job("pruner", 60, calls)], clock=clock).tick()
    assert calls.count == 1


def test_a_disabled_job_never_runs(tmp_path, clock) -> None:
    calls, other = Calls(), Calls()
    jobs = PeriodicJobs(
        str(tmp_path), [Job("cleaner", 0, calls), Job("pruner", -1, calls), Job("prefetcher", 60, other)], clock=clock
    )
    assert jobs.names == ["prefetcher"]
    for _ in range(3):
        jobs.tick()
        clock.advance(3600)
    assert calls.count == 0 and other.count == 3
    with pytest.raises(KeyError):
        jobs.run_once("cleaner")
    assert not os.path.exists(lock_path(str(tmp_path), "cleaner"))


def test_with_every_job_disabled_the_thread_just_waits(tmp_path) -> None:
    jobs = PeriodicJobs(str(tmp_path), [Job("cleaner", 0, Calls())])
    jobs.start()
    assert jobs.running
    assert jobs.stop(timeout=30)


def test_a_failing_job_is_logged_and_runs_again_next_time(tmp_path, clock, caplog) -> None:
    calls = Calls(fail=1)
    jobs = PeriodicJobs(str(tmp_path), [Job("cleaner", 60, calls)], clock=clock)
    with caplog.at_level(logging.ERROR, logger="imagecache.jobs.scheduler"):
        jobs.tick()
    assert calls.count == 1
    assert "periodic job cleaner failed" in caplog.text and "job failure number 1" in caplog.text
    clock.advance(60)
    jobs.tick()
    assert calls.count == 2


def test_an_unusable_lock_dir_is_a_failure_not_a_crash(tmp_path, clock, caplog) -> None:
    calls = Calls()
    jobs = PeriodicJobs(str(tmp_path / "missing"), [Job("cleaner", 60, calls)], clock=clock)
    assert jobs.run_once("cleaner") is Outcome.FAILED
    assert jobs.tick() == 60  # not retried in a spin
    assert calls.count == 0
    assert "cannot open its lock file" in caplog.text


@pytest.mark.parametrize("name", ["", "../x", "Cleaner", "a b", "-x"])
def test_job_names_must_be_safe_file_names(tmp_path, name: str) -> None:
    with pytest.raises(ValueError, match="job name"):
        PeriodicJobs(str(tmp_path), [Job(name, 60, Calls())])


def test_job_names_are_unique(tmp_path) -> None:
    with pytest.raises(ValueError, match="two jobs"):
        PeriodicJobs(str(tmp_path), [Job("cleaner", 60, Calls()), Job("cleaner", 30, Calls())])


# -- across processes ----------------------------------------------------------------------


def test_a_job_another_process_is_running_is_skipped(tmp_path) -> None:
    calls = Calls()
    jobs = PeriodicJobs(str(tmp_path), [Job("shared", 3600, calls)])
    holder = subprocess.Popen(
        child("hold", str(tmp_path)), cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "started"
        assert jobs.run_once("shared") is Outcome.BUSY
        assert jobs.tick() == pytest.approx(3600, abs=60)  # the holder's stamp says: an hour from now
        assert calls.count == 0
    finally:
        out, _ = holder.communicate("", timeout=30)
    assert out.strip() == "ran"
    assert jobs.run_once("shared") is Outcome.RAN
    assert calls.count == 1


def test_two_processes_never_run_a_job_at_the_same_time(tmp_path) -> None:
    log = tmp_path / "runs.log"
    interval, seconds, at_least = 0.05, 1.5, 5
    procs = [
        subprocess.Popen(child("loop", str(tmp_path), str(log), str(interval), str(seconds), str(at_least)), cwd=REPO)
        for _ in range(2)
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    runs = sorted(
        (float(start), float(end), int(pid))
        for pid, start, end in (line.split() for line in log.read_text().splitlines())
    )
    assert len(runs) >= at_least, runs
    for (_, end, _), (start, _, _) in itertools.pairwise(runs):
        assert start >= end - 0.001, f"runs overlap: {runs}"


# -- the thread ------------------------------------------------------------------------------


def test_the_thread_runs_jobs_and_survives_a_failure(tmp_path, caplog) -> None:
    calls = Calls(fail=1)
    jobs = PeriodicJobs(str(tmp_path), [Job("cleaner", 0.05, calls)])
    jobs.start()
    try:
        wait_until(lambda: calls.count >= 3, "three runs of the job", describe=lambda: f"{calls.count} runs")
        thread = [t for t in threading.enumerate() if t.name == "imagecache-jobs"]
        assert thread and thread[0].daemon
    finally:
        assert jobs.stop(timeout=30)
    assert "periodic job cleaner failed" in caplog.text


def test_stop_is_prompt(tmp_path) -> None:
    calls = Calls()
    jobs = PeriodicJobs(str(tmp_path), [Job("cleaner", 3600, calls)])
    jobs.start()
    assert calls.ran.wait(30)
    started = time.monotonic()
    assert jobs.stop(timeout=30)
    # Woken by the stop, not by the job's hour-long interval or a poll: a few ms when idle,
    # under 2 s however busy the machine.
    assert time.monotonic() - started < 2
    assert not jobs.running


def test_start_twice_is_one_thread_and_it_can_restart(tmp_path) -> None:
    jobs = PeriodicJobs(str(tmp_path), [Job("cleaner", 3600, Calls())])
    jobs.start()
    jobs.start()
    assert len([t for t in threading.enumerate() if t.name == "imagecache-jobs"]) == 1
    assert jobs.stop()
    jobs.start()
    assert jobs.running
    assert jobs.stop()
    assert jobs.stop()  # stopping a stopped scheduler is fine


def test_the_wait_has_a_floor(tmp_path, clock) -> None:
    jobs = PeriodicJobs(str(tmp_path), [Job("cleaner", 0.001, Calls())], clock=clock)
    assert jobs.tick() == MIN_WAIT


# -- the server's jobs ------------------------------------------------------------------------


def test_for_cache_builds_the_server_jobs_from_settings(settings, cache, service) -> None:
    prefetcher = Prefetcher(cache, ImageSource(service), ADMIN)
    image = service.add()
    cache.queue_image(image.image_id)
    jobs = PeriodicJobs.for_cache(cache, prefetcher=prefetcher)
    assert jobs.names == ["cleaner", "pruner", "prefetcher"]
    assert jobs.lock_dir == settings.image_cache_dir
    assert {name: jobs.run_once(name) for name in jobs.names} == dict.fromkeys(jobs.names, Outcome.RAN)
    assert cache.is_cached(image.image_id)
    locks = {".job-cleaner.lock", ".job-pruner.lock", ".job-prefetcher.lock"}
    assert locks <= set(os.listdir(settings.image_cache_dir))
    assert [r.image_id for r in cache.get_cached_images()] == [image.image_id]  # lock files are not images


def test_for_cache_leaves_out_disabled_jobs_and_a_missing_prefetcher(settings) -> None:
    cache = ImageCache(settings.replace(cleaner_interval=0))
    try:
        assert PeriodicJobs.for_cache(cache).names == ["pruner"]
    finally:
        cache.close()
