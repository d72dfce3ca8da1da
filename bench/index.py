"""Index at scale: a cache of many small entries (100,000 by default).

Setup (not timed): ``entries`` files of ``file_size`` bytes named by fresh
UUIDs, written straight into the cache directory's layout, each with its
own mtime (one second apart, so least-recently-used order is well defined).

imagecache (the library, in this process, and ``imagecache serve``):

* **reconcile**: an empty index (``cache.db`` removed), then
  ``ImageCache.reconcile()`` adopts every file (what start-up does after the
  index is lost); the matching case (index and files agree, the ordinary
  restart) is given as a secondary figure;
* **prune**: ``ImageCache(max size = (entries − prune) × file size).prune()``
  evicts exactly ``prune`` entries; the evicted files are written again with
  their old mtimes and adopted (untimed) before the next run;
* **start**: ``imagecache serve --workers 2`` launch → first ``/healthcheck``
  200 (the master reconciles first);
* **list**: ``GET /v2/cache`` (admin token) on the running server, every
  entry in the answer (checked).

Glance 33 (``centralized_db``, its rows in Glance's own sqlite database):
the rows are inserted straight into ``cached_images`` for the running
server's node reference, next to the files.  **list**: ``GET /v2/cache``;
**prune**: ``glance.image_cache.ImageCache().prune()`` in Glance's venv with
``image_cache_max_size`` lowered the same way (timed inside that process,
not counting its imports); **start**: gunicorn launch → first ``/versions``;
**reconcile**: none (Glance does not reconcile its index at start).

The limit: the filesystem floor of the same work, where there is one:
``os.scandir`` + ``stat`` of every file (reconcile), unlinking ``prune``
files (prune).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.glance import GlanceVenv
from bench.results import Results

Log = Callable[[str], None]

GLANCE_PRUNE_SCRIPT = r'''
import json, sys, time
from glance.common import config
from glance import image_cache  # registers its options: before the arguments are parsed
config.parse_cache_args(args=["--config-dir", sys.argv[1]])
config.CONF.set_override("image_cache_max_size", int(sys.argv[2]))
cache = image_cache.ImageCache()
started = time.perf_counter()
files, nbytes = cache.prune()
print("BENCH-PRUNE " + json.dumps({"seconds": time.perf_counter() - started, "files": files, "bytes": nbytes}))
'''


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class IndexConfig:
    entries: int = 100_000
    prune: int = 1_000
    file_size: int = 8
    runs: int = 5
    workers: int = 2
    targets: tuple[str, ...] = ("imagecache", "glance", "limit")


@dataclass(frozen=True)
class Entries:
    """The ids, oldest first, and their mtimes."""

    ids: list[str]
    mtimes: list[float]

    @classmethod
    def make(cls, n: int) -> Entries:
        base = time.time() - n - 3600
        return cls([str(uuid.uuid4()) for _ in range(n)], [base + i for i in range(n)])

    def write(self, directory: Path, size: int, only: range | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        data = b"x" * size
        for i in only if only is not None else range(len(self.ids)):
            path = os.path.join(directory, self.ids[i])
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            os.utime(path, (self.mtimes[i], self.mtimes[i]))


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def _remove_index(cache_dir: Path, name: str = "cache.db") -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(cache_dir / (name + suffix))


# -- imagecache ----------------------------------------------------------------------


def index_imagecache(config: IndexConfig, work: Path, results: Results, log: Log, extra: dict[str, Any]) -> None:
    from bench.targets import ImagecacheTarget
    from imagecache import ImageCache, Settings

    entries = Entries.make(config.entries)
    cache_dir = work / "imagecache" / "data" / "image-cache"  # where ImagecacheTarget's server keeps it
    started = time.monotonic()
    entries.write(cache_dir, config.file_size)
    log(f"bench: index: imagecache: {config.entries:,} files written in {time.monotonic() - started:.1f} s")
    settings = Settings(data_dir=str(work / "imagecache" / "data"), image_cache_dir=str(cache_dir))

    for run in range(config.runs):
        _remove_index(cache_dir)
        cache = ImageCache(settings)
        try:
            seconds, outcome = _timed(cache.reconcile)
        finally:
            cache.close()
        if outcome.files_adopted != config.entries:
            results.error("index_reconcile", "imagecache", f"run {run + 1}: adopted {outcome.files_adopted}")
        results.add("index_reconcile", "imagecache", seconds)
        log(f"bench: index reconcile run {run + 1}: imagecache {seconds:.3f} s ({outcome.files_adopted:,} adopted)")
    agree = []
    for _ in range(config.runs):
        cache = ImageCache(settings)
        try:
            seconds, outcome = _timed(cache.reconcile)
        finally:
            cache.close()
        agree.append(seconds)
    extra["index_reconcile_agree_imagecache"] = agree

    low = settings.replace(image_cache_max_size=(config.entries - config.prune) * config.file_size)
    for run in range(config.runs):
        cache = ImageCache(low)
        try:
            seconds, (files, _) = _timed(cache.prune)
        finally:
            cache.close()
        if files != config.prune:
            results.error("index_prune", "imagecache", f"run {run + 1}: pruned {files}, not {config.prune}")
        results.add("index_prune", "imagecache", seconds)
        log(f"bench: index prune run {run + 1}: imagecache {seconds:.3f} s ({files} evicted)")
        entries.write(cache_dir, config.file_size, range(config.prune))  # put them back, untimed
        cache = ImageCache(settings)
        try:
            adopted = cache.reconcile().files_adopted
        finally:
            cache.close()
        if adopted != files:
            raise RuntimeError(f"restoring the pruned entries adopted {adopted}, not {files}")

    target = None
    try:
        for run in range(config.runs):
            seconds, target = _timed(lambda: ImagecacheTarget(work, workers=config.workers))
            results.add("index_start", "imagecache", seconds)
            log(f"bench: index start run {run + 1}: imagecache {seconds:.2f} s")
            if run < config.runs - 1:
                target.close()
                target = None
        assert target is not None
        for run in range(config.runs):
            seconds, listed = _timed(target.cached)
            if len(listed) != config.entries:
                results.error("index_list", "imagecache", f"run {run + 1}: listed {len(listed)}")
            results.add("index_list", "imagecache", seconds)
            log(f"bench: index list run {run + 1}: imagecache {seconds:.3f} s ({len(listed):,} entries)")
    finally:
        if target is not None:
            target.close()
    results.cell("index_start", "imagecache").note = (
        "`imagecache serve` launch → first 200 from /healthcheck (polled every 50 ms): the master's "
        "reconcile of the index with the files (they agree), then 2 workers boot"
    )


# -- Glance -----------------------------------------------------------------------------


def _glance_rows(db: Path, node_url: str, entries: Entries, file_size: int, only: range | None = None) -> None:
    def stamp(t: float) -> str:
        return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    with sqlite3.connect(db, timeout=60) as conn:
        row = conn.execute("SELECT node_reference_id FROM node_reference WHERE node_reference_url = ?",
                           (node_url,)).fetchone()
        if row is None:
            raise RuntimeError(f"Glance has no node_reference row for {node_url}")
        indices = only if only is not None else range(len(entries.ids))
        conn.executemany(
            "INSERT INTO cached_images (image_id, last_accessed, last_modified, size, hits, checksum, "
            "node_reference_id) VALUES (?, ?, ?, ?, 0, NULL, ?)",
            [(entries.ids[i], stamp(entries.mtimes[i]), stamp(entries.mtimes[i]), file_size, row[0])
             for i in indices],
        )


def index_glance(config: IndexConfig, work: Path, venv: GlanceVenv, results: Results, log: Log,
                 extra: dict[str, Any]) -> None:
    from bench.targets import GlanceTarget

    entries = Entries.make(config.entries)
    target = GlanceTarget(work, venv, workers=config.workers, threads=8)
    try:
        server = target.server
        started = time.monotonic()
        entries.write(server.cache_dir, config.file_size)
        _glance_rows(server.work_dir / "glance.sqlite", server.url, entries, config.file_size)
        log(f"bench: index: Glance: {config.entries:,} files and rows written in {time.monotonic() - started:.1f} s")
        for run in range(config.runs):
            seconds, listed = _timed(target.cached)
            if len(listed) != config.entries:
                results.error("index_list", "glance", f"run {run + 1}: listed {len(listed)}")
            results.add("index_list", "glance", seconds)
            log(f"bench: index list run {run + 1}: Glance {seconds:.3f} s ({len(listed):,} entries)")

        script = work / "glance_prune.py"
        script.write_text(GLANCE_PRUNE_SCRIPT, encoding="utf-8")
        max_size = (config.entries - config.prune) * config.file_size
        for run in range(config.runs):
            done = subprocess.run(
                [str(venv.bin / "python"), str(script), str(server.etc), str(max_size)],
                capture_output=True, text=True, env=server.environment(), timeout=900, check=False,
            )
            line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH-PRUNE ")), None)
            if done.returncode != 0 or line is None:
                raise RuntimeError(f"Glance prune failed ({done.returncode}): {done.stderr[-1500:]}")
            outcome = json.loads(line.split(" ", 1)[1])
            if outcome["files"] != config.prune:
                results.error("index_prune", "glance", f"run {run + 1}: pruned {outcome['files']}")
            results.add("index_prune", "glance", outcome["seconds"])
            log(f"bench: index prune run {run + 1}: Glance {outcome['seconds']:.3f} s ({outcome['files']} evicted)")
            entries.write(server.cache_dir, config.file_size, range(config.prune))
            _glance_rows(server.work_dir / "glance.sqlite", server.url, entries, config.file_size,
                         range(config.prune))
        results.cell("index_prune", "glance").note = (
            "`glance.image_cache.ImageCache().prune()` run in Glance's venv with its config and "
            "image_cache_max_size lowered; timed inside that process (imports and config not counted)"
        )

        for run in range(config.runs):
            target.server.stop()
            target.server.start()
            assert target.server.ready_seconds is not None
            results.add("index_start", "glance", target.server.ready_seconds)
            log(f"bench: index start run {run + 1}: Glance {target.server.ready_seconds:.2f} s")
        results.cell("index_start", "glance").note = (
            "gunicorn launch → first answer of GET /versions (polled every 50 ms), 2 workers; Glance reads "
            "nothing of its cache at start"
        )
    finally:
        target.close()
    results.na("index_reconcile", "glance",
               "Glance 33 does not reconcile its cache index with the files at start-up (centralized_db: rows "
               "are written at publish and removed on eviction; a file without a row is never adopted, a row "
               "without a file stays listed); its launch time is the next row")


# -- the limit --------------------------------------------------------------------------


def index_limit(config: IndexConfig, work: Path, results: Results, log: Log) -> None:
    entries = Entries.make(config.entries)
    directory = work / "limit-files"
    entries.write(directory, config.file_size)
    for run in range(config.runs):
        seconds, n = _timed(lambda: sum(1 for e in os.scandir(directory) if e.stat().st_size >= 0))
        results.add("index_reconcile", "limit", seconds)
        log(f"bench: index reconcile run {run + 1}: limit (scandir + stat of {n:,}) {seconds:.3f} s")
    for _ in range(config.runs):
        paths = [os.path.join(directory, entries.ids[i]) for i in range(config.prune)]
        seconds, _ = _timed(lambda paths=paths: [os.unlink(p) for p in paths])
        results.add("index_prune", "limit", seconds)
        entries.write(directory, config.file_size, range(config.prune))
    results.cell("index_reconcile", "limit").note = (
        f"`os.scandir` + `stat` of the {config.entries:,} files: the filesystem floor of any reconcile")
    results.cell("index_prune", "limit").note = f"unlink of {config.prune:,} files: the floor of evicting them"
    results.na("index_list", "limit", "a raw socket has no index to list")
    results.na("index_start", "limit", "a raw socket has nothing to load or check at start")


def _unfinished(results: Results, target: str, rows: tuple[str, ...], exc: Exception) -> None:
    """Flag the rows the failure left with fewer than all their runs."""
    for row in rows:
        cell = results.cells.get((row, target))
        if cell is None or not cell.values or cell.errors:
            results.error(row, target, f"{type(exc).__name__}: {exc}"[:400])


def run_index(config: IndexConfig, work: Path, results: Results, venv: GlanceVenv | None, *,
              log: Log = _stderr, extra: dict[str, Any] | None = None) -> None:
    extra = extra if extra is not None else {}
    work.mkdir(parents=True, exist_ok=True)
    if "imagecache" in config.targets:
        try:
            index_imagecache(config, work / "imagecache", results, log, extra)
        except Exception as exc:  # noqa: BLE001 - record and go on with the others
            log(f"bench: index: imagecache: {type(exc).__name__}: {exc}")
            _unfinished(results, "imagecache", ("index_list", "index_prune", "index_reconcile", "index_start"), exc)
    if "glance" in config.targets and venv is not None:
        try:
            index_glance(config, work / "glance", venv, results, log, extra)
        except Exception as exc:  # noqa: BLE001
            log(f"bench: index: Glance: {type(exc).__name__}: {exc}")
            _unfinished(results, "glance", ("index_list", "index_prune", "index_start"), exc)
    if "limit" in config.targets:
        index_limit(config, work / "limit", results, log)
