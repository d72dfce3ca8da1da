"""The cache listing at scale: ``GET /v2/cache`` of 100,000 entries, its time and the node's memory.

Setup (untimed, no downloads): ``entries`` files of 8 bytes written straight
into the cache directory's layout (:class:`bench.index.Entries`), their rows
put into the index with the driver's own ``add_many`` (one transaction, not a
reconcile), and every ``pin_every``-th entry pinned, so the listing merges
pins as it does in production.  Then ``imagecache serve`` (2 workers, tokens).

Timed, ``runs`` times after one untimed warm-up: ``GET /v2/cache`` (admin
token) on a fresh connection, request → last byte.  The answer is parsed and
its entries counted afterwards (untimed, checked).  While it answers, the RSS
of every process of the node (master and workers) is sampled
(:class:`bench.procs.RssSampler`): the peak is reported beside the idle RSS.

``profile_listing`` is the same listing answered in this process by the
management filter under cProfile: where the node's time goes.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.herd import WORK_ROOT, Log, _stderr
from bench.index import Entries
from bench.procs import RssSampler, rss_bytes
from bench.report import facts_line, machine_facts, markdown_table, repo_relative
from bench.stats import Summary
from bench.units import MiB


@dataclass(frozen=True)
class ListingConfig:
    entries: int = 100_000
    runs: int = 5
    workers: int = 2
    pin_every: int = 100
    file_size: int = 8


@dataclass
class ListingReport:
    config: ListingConfig
    seconds: list[float]
    peak_rss: list[float]  # MiB, each run, every process of the node
    peak_worker_rss: list[float]  # MiB, each run, the largest one process (the worker answering)
    idle_rss: float  # MiB, before the first run, every process
    body_bytes: int
    listed: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "entries": self.config.entries, "runs": self.config.runs, "workers": self.config.workers,
            "seconds": self.seconds, "seconds_summary": Summary.of(self.seconds).as_dict(),
            "peak_rss_mib": self.peak_rss, "peak_worker_rss_mib": self.peak_worker_rss,
            "idle_rss_mib": self.idle_rss,
            "body_bytes": self.body_bytes, "listed": self.listed,
        }


def fill_index(data_dir: Path, config: ListingConfig) -> Entries:
    """Files in the layout and their rows in the index, as a long-running node would have them."""
    from imagecache import ImageCache, Settings
    from imagecache.cache import CachedImage
    from imagecache.cache.drivers.base import MANUAL

    entries = Entries.make(config.entries)
    cache_dir = data_dir / "image-cache"
    entries.write(cache_dir, config.file_size)
    cache = ImageCache(Settings(data_dir=str(data_dir), image_cache_dir=str(cache_dir)))
    try:
        cache.driver.add_many(
            CachedImage(image_id, config.file_size, hits=i % 7, last_accessed=mtime, last_modified=mtime)
            for i, (image_id, mtime) in enumerate(zip(entries.ids, entries.mtimes, strict=True))
        )
        for image_id in entries.ids[:: config.pin_every]:
            cache.driver.pin(image_id, MANUAL)
    finally:
        cache.close()
    return entries


def run_listing(config: ListingConfig, work_dir: Path | None = None, log: Log = _stderr) -> ListingReport:
    from bench.targets import ImagecacheTarget

    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    work = work_dir or Path(tempfile.mkdtemp(prefix="listing-", dir=WORK_ROOT))
    try:
        started = time.monotonic()
        fill_index(work / "imagecache" / "data", config)  # where ImagecacheTarget's server keeps its data
        log(f"bench: listing: {config.entries:,} files and rows in {time.monotonic() - started:.1f} s")
        target = ImagecacheTarget(work, workers=config.workers)
        try:
            client = target.client
            client.expect(200, "GET", "/v2/cache")  # warm-up: every worker's imports, the page cache
            idle = rss_bytes(target.pids()) / MiB
            seconds, peaks, worker_peaks, size, listed = [], [], [], 0, 0
            for run in range(config.runs):
                with RssSampler(target.pgid, interval=0.02) as sampler:
                    begun = time.perf_counter()
                    answer = client.expect(200, "GET", "/v2/cache")
                    seconds.append(time.perf_counter() - begun)
                peaks.append(sampler.peak / MiB)
                worker_peaks.append(sampler.peak_process / MiB)
                size, listed = len(answer.body), len(json.loads(answer.body)["cached_images"])
                if listed != config.entries:
                    raise RuntimeError(f"run {run + 1}: listed {listed} of {config.entries}")
                log(f"bench: listing run {run + 1}: {seconds[-1]:.3f} s, peak RSS {peaks[-1]:.0f} MiB "
                    f"(one process at most {worker_peaks[-1]:.0f} MiB)")
        finally:
            target.close()
        return ListingReport(config, seconds, peaks, worker_peaks, idle, size, listed)
    finally:
        if work_dir is None:
            shutil.rmtree(work, ignore_errors=True)


def render(report: ListingReport, command: str) -> str:
    time_summary, rss_summary = Summary.of(report.seconds), Summary.of(report.peak_rss)
    worker_summary = Summary.of(report.peak_worker_rss)
    rows = [
        ["GET /v2/cache, request → last byte", "s",
         f"{time_summary.median:.3f} ({time_summary.min:.3f}–{time_summary.max:.3f})"],
        ["node RSS while answering (peak, every process)", "MiB",
         f"{rss_summary.median:.0f} ({rss_summary.min:.0f}–{rss_summary.max:.0f})"],
        ["its largest process while answering (peak: the worker answering)", "MiB",
         f"{worker_summary.median:.0f} ({worker_summary.min:.0f}–{worker_summary.max:.0f})"],
        ["node RSS before (idle, every process)", "MiB", f"{report.idle_rss:.0f}"],
        ["body", "MiB", f"{report.body_bytes / MiB:.1f}"],
    ]
    return "\n".join([
        f"## listing: {report.config.entries:,} cached entries ({report.config.runs} runs, "
        f"{report.config.workers} workers)", "",
        f"`{command}`; {facts_line(machine_facts())}", "",
        markdown_table(["", "unit", "median (min–max)"], rows, "llr"), "",
    ])


def profile_listing(entries: int, output: Path, log: Log = _stderr) -> Path:
    """cProfile of the management filter answering ``GET /v2/cache`` in this process."""
    from webob import Request

    from bench.profile import cprofiled
    from imagecache import ImageCache, Settings
    from imagecache.http.context import RequestContext, set_context
    from imagecache.wsgi.cache_manage import CacheManageFilter

    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="profile-listing-", dir=WORK_ROOT))
    try:
        fill_index(work, ListingConfig(entries=entries))
        cache = ImageCache(Settings(data_dir=str(work), image_cache_dir=str(work / "image-cache")))
        app = CacheManageFilter.for_app(lambda environ, start_response: [], cache)
        request = Request.blank("/v2/cache")
        set_context(request.environ, RequestContext.admin())
        body, seconds, stats = cprofiled(lambda: request.get_response(app).body, 15)
        cache.close()
        text = (f"cProfile of GET /v2/cache answered in process, {entries:,} entries ({len(body):,} bytes): "
                f"{seconds:.3f} s (under the profiler)\n\n" + repo_relative(stats.replace(str(work), "<work>")))
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        log(f"bench: profile of the listing written to {output}")
        return output
    finally:
        shutil.rmtree(work, ignore_errors=True)
