"""``python -m bench all``: every scenario against imagecache, Glance 33 and the limit, in one run.

The three servers run side by side on loopback (:mod:`bench.targets`), and
each scenario's runs are interleaved: run 1 on imagecache, Glance, the
limit; then run 2; ... so a change in the machine's load touches all three
alike.  Scenarios (rows of the table, :mod:`bench.results`):

1. ``hit``: one client downloads a cached 1 GiB image; then 8 at once
   (aggregate: 8 × size ÷ first start to last finish);
2. ``miss``: evict, then one download of the 1 GiB image, timed from request
   to last byte (imagecache's response ends only after the fill is verified
   and published); the limit is sha512 of 1 GiB in memory, the one digest a
   fill verifies under the default ``image_cache_verify = strongest`` (md5 ∥
   sha512 on two threads, the ceiling under ``all``, is given beside it);
3. ``herd``: N = 1, 8, 32 concurrent first downloads of one image (evicted
   before each run); the wall (first start to last finish) ÷ the median N=1
   wall, and the bytes read from the image store ÷ image size;
4. ``small``: ``wrk`` (2 threads, 32 connections) over 16 cached 4 KiB
   images, each request an authorized ``GET /v2/images/{id}/file``;
5. ``index``: see :mod:`bench.index`;
6. ``memory``: RSS of the server's processes (master + workers, from /proc,
   every 50 ms) while 10 clients download the cached 1 GiB image; the peak;
7. ``storm`` (rows 7–11): slow clients, herds up to 128 with hits at the same
   N, slowloris, server CPU per GiB, RSS with 500 open streams; see
   :mod:`bench.storm` (its runs: ``storm.runs``, 1 by default).

Every figure is the median of ``--runs`` runs with min–max; the table goes
to ``--output`` (bench/RESULTS.md by default) and every run's numbers to
``--json``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from bench.clients import DEFAULT_PROCESSES as CLIENT_PROCESSES
from bench.herd import settled_fill_counts
from bench.http import Batch, release_together, write_random_file
from bench.limit import durable_write_seconds, hash_rates, test_data
from bench.procs import RssSampler, rss_bytes
from bench.report import facts_line, kept_sections, load_average, machine_facts, repo_relative, with_section
from bench.results import ROW_BY_KEY, TARGET_TITLES, Results, footnotes, furthest_from_limit, runs_listing, table
from bench.storm import StormConfig, render_section, scenario_storm
from bench.targets import GlanceTarget, ImagecacheTarget, LimitTarget, Target, describe
from bench.units import GiB, KiB, MiB, format_size

BENCH_DIR = Path(__file__).resolve().parent
WORK_ROOT = BENCH_DIR / ".work"
RESULTS = BENCH_DIR / "RESULTS.md"
GB = 1e9
SCENARIOS = ("miss", "hit", "herd", "small", "memory", "index", "storm")
TARGET_NAMES = ("imagecache", "glance", "limit")

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class CompareConfig:
    runs: int = 5
    size: int = 1 * GiB  # hit, miss, memory
    herd_size: int = 256 * MiB
    herd_clients: tuple[int, ...] = (8, 32)
    hit_clients: int = 8
    memory_clients: int = 10
    small_size: int = 4 * KiB
    small_images: int = 16
    small_connections: int = 32
    small_seconds: float = 5.0
    index_entries: int = 100_000
    index_prune: int = 1_000
    index_file_size: int = 8
    workers: int = 2
    targets: tuple[str, ...] = TARGET_NAMES
    scenarios: tuple[str, ...] = SCENARIOS
    timeout: float = 300.0  # per download batch
    work_dir: Path | None = None
    keep: bool = False
    python: str | None = None  # Python 3.11 for Glance's venv
    output: Path | None = RESULTS
    json_path: Path | None = None
    wait_load: float = 0.0  # seconds to wait (at most) for the 1-min load to drop below the CPU count
    command: str = "python -m bench all"
    storm: StormConfig = field(default_factory=StormConfig)  # the storm scenario's settings (bench/storm.py)


@dataclass
class Context:
    config: CompareConfig
    work: Path
    results: Results
    targets: dict[str, Target]
    log: Log
    images: dict[tuple[str, str], str] = field(default_factory=dict)  # (target, role) -> image id
    extra: dict[str, Any] = field(default_factory=dict)  # secondary figures, by name

    def each(self) -> Iterator[tuple[str, Target]]:
        for name in TARGET_NAMES:
            if name in self.targets:
                yield name, self.targets[name]

    def caching(self) -> Iterator[tuple[str, Target]]:
        for name, target in self.each():
            if target.has_cache:
                yield name, target


# -- downloads -------------------------------------------------------------------------


def download_batch(target: Target, image_id: str, n: int, size: int, timeout: float,
                   verify: str | None = None) -> Batch:
    """``n`` concurrent downloads from ``target`` (see :func:`bench.http.release_together`), from
    several client processes once N is more than a handful (:mod:`bench.clients`)."""
    processes = CLIENT_PROCESSES if n > CLIENT_PROCESSES else 1
    return release_together(target.client, image_id, n, size, timeout, expected_sha256=verify, processes=processes)


#: Seconds a hit count must stay put to be settled: longer than a worker's flush interval
#: (imagecache's image_cache_hit_flush_interval, 1 s by default), within which its hits reach the index.
SETTLE = 1.5


def settled_hits(target: Target, image_id: str, expected: float | None = None, timeout: float = 5.0) -> float:
    """The image's hit count once it stops moving (Glance counts a hit after the body is sent;
    imagecache's workers write theirs once per flush interval)."""
    deadline = time.monotonic() + timeout
    last, since = target.hits(image_id), time.monotonic()
    while time.monotonic() < deadline:
        if expected is not None and last >= expected:
            return last
        time.sleep(0.1)
        now = target.hits(image_id)
        if now != last:
            last, since = now, time.monotonic()
        elif expected is None and time.monotonic() - since >= SETTLE:
            return now
    return last


@contextlib.contextmanager
def guarded(ctx: Context, rows: tuple[str, ...], target: str, what: str) -> Iterator[None]:
    """Record an exception as an error of ``rows`` for ``target`` and go on."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - one failed measurement must not end the whole run
        message = f"{what}: {type(exc).__name__}: {exc}"
        ctx.log(f"bench: {TARGET_TITLES[target]}: {message}")
        for row in rows:
            ctx.results.error(row, target, message[:400])


# -- setup -------------------------------------------------------------------------------


def upload_everywhere(ctx: Context, role: str, path: Path) -> None:
    for name, target in ctx.each():
        with guarded(ctx, (), name, f"upload {role}"):
            started = time.monotonic()
            ctx.images[(name, role)] = target.upload(path, f"bench-{role}")
            ctx.log(f"bench: {name}: uploaded {role} ({format_size(path.stat().st_size)}) "
                    f"in {time.monotonic() - started:.1f} s")


def image(ctx: Context, name: str, role: str) -> str:
    try:
        return ctx.images[(name, role)]
    except KeyError:
        raise RuntimeError(f"no {role} image on {name} (its upload failed)") from None


# -- 2. miss ---------------------------------------------------------------------------


def scenario_miss(ctx: Context, sha256: str) -> None:
    config, results = ctx.config, ctx.results
    size = config.size
    # One untimed first download per cache, every byte checked.
    for name, target in ctx.caching():
        with guarded(ctx, ("miss",), name, "verified first download"):
            iid = image(ctx, name, "big")
            batch = download_batch(target, iid, 1, size, config.timeout, verify=sha256)
            if batch.errors:
                raise RuntimeError("; ".join(batch.errors))
            target.wait_cached(iid)
            ctx.log(f"bench: miss: {name}: first download verified (sha256), {size / batch.wall / GB:.2f} GB/s")
    for run in range(config.runs):
        for name, target in ctx.caching():
            with guarded(ctx, ("miss",), name, f"miss run {run + 1}"):
                iid = image(ctx, name, "big")
                target.evict(iid)
                before = target.store_bytes()
                batch = download_batch(target, iid, 1, size, config.timeout)
                if batch.errors:
                    raise RuntimeError("; ".join(batch.errors))
                results.add("miss", name, size / batch.wall / GB)
                target.wait_cached(iid)
                if isinstance(target, ImagecacheTarget):
                    read = target.store_bytes() - before
                    if read != size:
                        results.error("miss", name, f"run {run + 1}: read {read:.0f} bytes from the store, not {size}")
                ctx.log(f"bench: miss run {run + 1}: {name} {size / batch.wall / GB:.3f} GB/s")
    if "limit" in ctx.targets:
        with guarded(ctx, ("miss",), "limit", "hashing"):
            data = test_data(size)
            both: list[float] = []
            sequential: list[float] = []
            durable: list[float] = []
            for run in range(config.runs):
                durable.append(size / durable_write_seconds(data, ctx.work) / GB)
                rates = hash_rates(data)
                results.add("miss", "limit", size / rates["sha512"] / GB)
                both.append(size / rates["two_threads"] / GB)
                sequential.append(size / rates["sequential"] / GB)
                ctx.log(f"bench: miss run {run + 1}: limit sha512 {size / rates['sha512'] / GB:.3f} GB/s; "
                        f"md5+sha512 two threads {both[-1]:.3f} GB/s, one thread {sequential[-1]:.3f} GB/s; "
                        f"write + fsync {durable[-1]:.3f} GB/s")
            del data
            ctx.extra["hash_all_two_threads_gbs"] = both
            ctx.extra["hash_sequential_gbs"] = sequential
            ctx.extra["durable_write_gbs"] = durable
            cell = results.cell("miss", "limit")
            cell.note = (
                f"sha512 of {format_size(size)} in memory, 1 MiB chunks, on one thread (the ceiling of a fill "
                f"under the default image_cache_verify = strongest: the multihash is the one digest it checks); "
                f"under image_cache_verify = all (md5 too): md5 ∥ sha512 on two threads "
                f"{_median_range(both)} GB/s, one after the other on one thread {_median_range(sequential)} GB/s; "
                f"the disk: writing the image to a new file in 1 MiB chunks and fsyncing it (what a durable "
                f"miss must also do) {_median_range(durable)} GB/s; the socket alone is row 1's limit (1 client)"
            )


# -- 1. hit --------------------------------------------------------------------------------


def scenario_hit(ctx: Context) -> None:
    config, results = ctx.config, ctx.results
    size = config.size
    hits_before: dict[str, float] = {}
    for name, target in ctx.caching():
        with guarded(ctx, ("hit1", "hit8"), name, "hits before"):
            iid = image(ctx, name, "big")
            # Untimed: a hit after the miss scenario, or the fill when hits run alone (--scenarios hit),
            # so the timed runs are all hits either way.
            warm = download_batch(target, iid, 1, size, config.timeout)
            if warm.errors:
                raise RuntimeError("; ".join(warm.errors))
            target.wait_cached(iid)
            hits_before[name] = settled_hits(target, iid)
    for row, n in (("hit1", 1), ("hit8", config.hit_clients)):
        for run in range(config.runs):
            for name, target in ctx.each():
                with guarded(ctx, (row,), name, f"{row} run {run + 1}"):
                    batch = download_batch(target, image(ctx, name, "big"), n, size, config.timeout)
                    if batch.errors:
                        raise RuntimeError("; ".join(batch.errors[:3]))
                    results.add(row, name, batch.nbytes / batch.wall / GB)
                    ctx.log(f"bench: {row} run {run + 1}: {name} {batch.nbytes / batch.wall / GB:.3f} GB/s")
    expected = config.runs * (1 + config.hit_clients)
    for name, target in ctx.caching():
        if name not in hits_before:
            continue
        with guarded(ctx, ("hit1",), name, "hit count"):
            iid = image(ctx, name, "big")
            got = settled_hits(target, iid, hits_before[name] + expected) - hits_before[name]
            ctx.extra[f"hit_count_{name}"] = got
            if got != expected:
                results.error("hit1", name, f"the cache counted {got:.0f} hits for {expected} downloads")


# -- 6. memory -------------------------------------------------------------------------------


def scenario_memory(ctx: Context) -> None:
    config, results = ctx.config, ctx.results
    n = config.memory_clients
    for run in range(config.runs):
        for name, target in ctx.each():
            with guarded(ctx, ("memory",), name, f"memory run {run + 1}"):
                idle = rss_bytes(target.pids())
                ctx.extra.setdefault(f"idle_rss_mib_{name}", []).append(idle / MiB)
                with RssSampler(target.pgid, interval=0.05) as sampler:
                    batch = download_batch(target, image(ctx, name, "big"), n, config.size, config.timeout)
                if batch.errors:
                    raise RuntimeError("; ".join(batch.errors[:3]))
                results.add("memory", name, sampler.peak / MiB)
                ctx.extra.setdefault(f"memory_growth_mib_{name}", []).append((sampler.peak - idle) / MiB)
                ctx.extra.setdefault(f"memory_samples_{name}", []).append(len(sampler.samples))
                ctx.log(f"bench: memory run {run + 1}: {name} peak {sampler.peak / MiB:.0f} MiB "
                        f"(idle {idle / MiB:.0f} MiB, {len(sampler.samples)} samples, "
                        f"{batch.nbytes / batch.wall / GB:.2f} GB/s)")


# -- 3. herd ----------------------------------------------------------------------------------


class HerdRun(NamedTuple):
    wall: float
    reads: float  # store reads ÷ size; NaN where not measured
    cpu: float  # measure() after the downloads less before (NaN without measure)
    batch: Batch
    counts: dict[str, float]  # imagecache's own account of the herd (empty for the others)


#: What imagecache says happened to a herd: the fills, who followed, who hit, what went to the app.
HERD_COUNTS = {
    "fills_completed": ("imagecache_fills_total", {"result": "completed"}),
    "fills_failed": ("imagecache_fills_total", {"result": "failed"}),
    "fills_abandoned": ("imagecache_fills_total", {"result": "abandoned"}),
    "followers": ("imagecache_fill_followers_total", {}),
    "hits": ("imagecache_cache_hits_total", {}),
    "misses": ("imagecache_cache_misses_total", {}),
    "served_upstream_bytes": ("imagecache_served_bytes_total", {"source": "upstream"}),
}


def herd_run_measured(ctx: Context, name: str, target: Target, n: int,
                      measure: Callable[[], float] | None = None) -> HerdRun:
    """One herd of the "herd" image; ``measure`` (e.g. the server's CPU seconds) is read just before the
    downloads start and just after the last one ends."""
    size = ctx.config.herd_size
    iid = image(ctx, name, "herd")
    target.evict(iid)
    hits0 = settled_hits(target, iid) if isinstance(target, GlanceTarget) else 0.0
    store0 = target.store_bytes()
    metrics0 = target.client.metrics() if isinstance(target, ImagecacheTarget) else None
    before = measure() if measure is not None else float("nan")
    batch = download_batch(target, iid, n, size, ctx.config.timeout)
    used = measure() - before if measure is not None else float("nan")
    if batch.errors:
        raise RuntimeError("; ".join(batch.errors[:3]))
    target.wait_cached(iid)
    if isinstance(target, GlanceTarget):
        hits = settled_hits(target, iid) - hits0
        reads = (target.store_bytes() - store0 - hits * size) / size
        ctx.extra.setdefault(f"herd{n}_glance_hits", []).append(hits)
    else:
        reads = (target.store_bytes() - store0) / size
    counts: dict[str, float] = {}
    if metrics0 is not None:
        delta = settled_fill_counts(target.client, metrics0)
        counts = {key: delta.get(metric, **labels) for key, (metric, labels) in HERD_COUNTS.items()}
    return HerdRun(batch.wall, reads, used, batch, counts)


def herd_run(ctx: Context, name: str, target: Target, n: int) -> tuple[float, float]:
    """One herd: (wall, store reads ÷ size); reads NaN where not measured."""
    run = herd_run_measured(ctx, name, target, n)
    return run.wall, run.reads


def scenario_herd(ctx: Context) -> None:
    config, results = ctx.config, ctx.results
    base: dict[str, list[float]] = {}
    for run in range(config.runs):
        for name, target in ctx.each():
            with guarded(ctx, tuple(f"herd{n}_wall" for n in config.herd_clients), name, f"herd N=1 run {run + 1}"):
                wall, _ = herd_run(ctx, name, target, 1)
                base.setdefault(name, []).append(wall)
                ctx.log(f"bench: herd N=1 run {run + 1}: {name} {wall:.3f} s")
    ctx.extra["herd1_wall_s"] = base
    for n in config.herd_clients:
        wall_row, reads_row = f"herd{n}_wall", f"herd{n}_reads"
        if wall_row not in ROW_BY_KEY:
            raise ValueError(f"no table row for a herd of {n} (rows exist for 8 and 32)")
        for run in range(config.runs):
            for name, target in ctx.each():
                with guarded(ctx, (wall_row, reads_row), name, f"herd N={n} run {run + 1}"):
                    if name not in base:
                        raise RuntimeError("no N=1 wall to compare with")
                    wall, reads = herd_run(ctx, name, target, n)
                    one = _median(base[name])
                    results.add(wall_row, name, wall / one)
                    ctx.extra.setdefault(f"herd{n}_wall_s_{name}", []).append(wall)
                    if name == "limit":
                        results.cell(reads_row, name).values.append(1.0)
                    else:
                        results.add(reads_row, name, reads)
                    ctx.log(f"bench: herd N={n} run {run + 1}: {name} wall {wall:.3f} s "
                            f"(× {wall / one:.2f}), store reads {reads:.2f}")
        limit_wall = results.cells.get((wall_row, "limit"))
        if limit_wall is not None:
            limit_wall.note = (
                "the raw socket's own wall for N concurrent downloads ÷ its wall for one: how N streams share "
                "this machine with nothing but sendall. Not a floor for a cache, whose one first download is a "
                "hash-bound miss (a slower base makes a smaller ratio); the absolute walls are under Secondary "
                "figures"
            )
        limit_reads = results.cells.get((reads_row, "limit"))
        if limit_reads is not None:
            limit_reads.text = "1.00 (floor)"
            limit_reads.reason = ("the floor: one read of the image per herd, whatever N (the limit server "
                                  "itself has no cache and reads the file once per client)")


# -- 4. small requests --------------------------------------------------------------------------


def scenario_small(ctx: Context) -> None:
    from bench.wrk import ensure_wrk, run_wrk

    config, results = ctx.config, ctx.results
    rows = ("small_rps", "small_p50", "small_p99")
    wrk = ensure_wrk(ctx.log)
    paths: dict[str, list[str]] = {}
    source = ctx.work / "small"
    source.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(config.small_images):
        path = source / f"small-{i}.raw"
        write_random_file(path, config.small_size)
        files.append(path)
    for name, target in ctx.each():
        with guarded(ctx, rows, name, "small setup"):
            ids = [target.upload(path, f"bench-small-{i}") for i, path in enumerate(files)]
            for iid in ids:
                batch = download_batch(target, iid, 1, config.small_size, 60)
                if batch.errors:
                    raise RuntimeError("; ".join(batch.errors))
                target.wait_cached(iid)
            paths[name] = [f"/v2/images/{iid}/file" for iid in ids]
            # warm-up (not counted): connections, caches, the JIT-less interpreter's first calls
            run_wrk(target.url, paths[name], headers=target.headers, connections=config.small_connections,
                    seconds=1, threads=2, script_dir=ctx.work / f"wrk-{name}", wrk=wrk)
    for run in range(config.runs):
        for name, target in ctx.each():
            if name not in paths:
                continue
            with guarded(ctx, rows, name, f"small run {run + 1}"):
                result = run_wrk(target.url, paths[name], headers=target.headers,
                                 connections=config.small_connections, seconds=config.small_seconds, threads=2,
                                 script_dir=ctx.work / f"wrk-{name}", wrk=wrk)
                ctx.extra.setdefault(f"wrk_{name}", []).append(result.as_dict())
                if result.errors:
                    results.error("small_rps", name, f"run {run + 1}: {result.errors} wrk errors "
                                  f"(sockets or non-2xx) in {result.requests} requests")
                results.add("small_rps", name, result.rps)
                results.add("small_p50", name, result.p50_ms)
                results.add("small_p99", name, result.p99_ms)
                ctx.log(f"bench: small run {run + 1}: {name} {result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms, "
                        f"p99 {result.p99_ms:.2f} ms, {result.errors} errors")


# -- the run ---------------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    from bench.stats import median

    return median(values)


def _median_range(values: list[float], digits: int = 2) -> str:
    from bench.stats import Summary

    s = Summary.of(values)
    return f"{s.median:.{digits}f} ({s.min:.{digits}f}–{s.max:.{digits}f})"


def wait_for_quiet(limit_s: float, log: Log) -> None:
    """Wait (at most ``limit_s``) until the 1-minute load average is below the CPU count."""
    import os

    cpus = len(os.sched_getaffinity(0))
    deadline = time.monotonic() + limit_s
    while True:
        load = os.getloadavg()[0]
        if load < cpus or time.monotonic() >= deadline:
            log(f"bench: load average {load:.2f} on {cpus} CPUs; starting")
            return
        log(f"bench: load average {load:.2f} on {cpus} CPUs; waiting for it to drop")
        time.sleep(15)


def run_compare(config: CompareConfig, log: Log = _stderr) -> tuple[Results, dict[str, Any]]:
    """Start the targets, run the scenarios, stop everything; (results, report facts)."""
    began = time.monotonic()
    if config.wait_load > 0:
        wait_for_quiet(config.wait_load, log)
    facts = machine_facts()
    results = Results()
    own = config.work_dir is None
    if own:
        WORK_ROOT.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="all-", dir=WORK_ROOT))
    else:
        work = Path(config.work_dir).resolve()  # type: ignore[arg-type]
        work.mkdir(parents=True, exist_ok=True)
    keep = config.keep or not own
    targets: dict[str, Target] = {}
    info: dict[str, Any] = {"facts": facts, "work": str(work), "targets": {}}
    ctx = Context(config, work, results, targets, log)
    server_scenarios = [s for s in config.scenarios if s != "index"]
    venv = None
    try:
        if "glance" in config.targets:
            from bench.glance import ensure_venv

            venv = ensure_venv(python=config.python, log=log)
            info["glance_version"] = venv.version()
        if server_scenarios:
            for name in config.targets:
                log(f"bench: starting {name}")
                if name == "imagecache":
                    targets[name] = ImagecacheTarget(work / "imagecache", workers=config.workers)
                elif name == "glance":
                    assert venv is not None
                    targets[name] = GlanceTarget(work / "glance", venv, workers=config.workers,
                                                 threads=8)
                elif name == "limit":
                    targets[name] = LimitTarget(work / "limit")
                else:
                    raise ValueError(f"unknown target {name!r}")
                info["targets"][name] = describe(targets[name])
            sha256 = ""
            if {"miss", "hit", "memory"} & set(server_scenarios):
                big = work / "big.raw"
                log(f"bench: writing {format_size(config.size)} of random data")
                sha256 = write_random_file(big, config.size)
                upload_everywhere(ctx, "big", big)
            if {"herd", "storm"} & set(server_scenarios):
                herd = work / "herd.raw"
                write_random_file(herd, config.herd_size)
                upload_everywhere(ctx, "herd", herd)
            if "storm" in server_scenarios:
                storm = work / "storm.raw"
                write_random_file(storm, config.storm.size)
                upload_everywhere(ctx, "storm", storm)
            steps: list[tuple[str, Callable[[], None]]] = [
                ("miss", lambda: scenario_miss(ctx, sha256)),
                ("hit", lambda: scenario_hit(ctx)),
                ("memory", lambda: scenario_memory(ctx)),
                ("herd", lambda: scenario_herd(ctx)),
                ("small", lambda: scenario_small(ctx)),
                ("storm", lambda: scenario_storm(ctx)),
            ]
            for scenario, step in steps:
                if scenario in server_scenarios:
                    started = time.monotonic()
                    log(f"bench: == {scenario} ==")
                    step()
                    info.setdefault("scenario_seconds", {})[scenario] = round(time.monotonic() - started, 1)
            for name, target in targets.items():
                info.setdefault("log_excerpts", {})[name] = _log_excerpt(target)
            for target in targets.values():
                target.close()
            targets.clear()
        if "index" in config.scenarios:
            from bench.index import IndexConfig, run_index

            started = time.monotonic()
            log("bench: == index ==")
            run_index(IndexConfig(entries=config.index_entries, prune=config.index_prune,
                                  file_size=config.index_file_size, runs=config.runs, workers=config.workers,
                                  targets=config.targets),
                      work / "index", results, venv, log=log, extra=ctx.extra)
            info.setdefault("scenario_seconds", {})["index"] = round(time.monotonic() - started, 1)
    except BaseException:
        keep = True
        raise
    finally:
        for target in targets.values():
            with contextlib.suppress(Exception):
                target.close()
        if keep:
            log(f"bench: work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    facts["loadavg_at_end"] = load_average()
    info["seconds"] = round(time.monotonic() - began, 1)
    info["extra"] = ctx.extra
    return results, info


def _log_excerpt(target: Target) -> list[str]:
    if isinstance(target, ImagecacheTarget):
        return target.server.log_excerpt(20)
    if isinstance(target, GlanceTarget):
        return target.server.errors(20)
    return []


# -- the report ----------------------------------------------------------------------------------


def render(config: CompareConfig, results: Results, info: dict[str, Any]) -> str:
    facts = info["facts"]
    load_end = facts.get("loadavg_at_end")
    lines = [
        "# bench: imagecache beside Glance 33 and the limit",
        "",
        f"Produced by `{config.command}` (one run, {info['seconds']:.0f} s in all) on "
        f"{facts['date']}.",
        "",
        f"- Machine: {facts['cpus']} CPUs ({facts['cpu_model']}), {facts['memory_gib']} GiB RAM, "
        f"{facts['os']}, Python {facts['python']}.",
        f"- Load averages (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in facts['loadavg_at_start'] or [])} at the "
        f"start, {' '.join(f'{x:.2f}' for x in load_end or [])} at the end (a shared machine: other processes "
        "may run beside the benchmark).",
        f"- imagecache: {facts['imagecache']}; Glance: {info.get('glance_version', 'not run')} from PyPI in "
        "bench/.glance-venv (Python 3.11).",
        f"- Facts line: {facts_line(facts)}",
        "",
        "Every figure is the median of "
        f"{config.runs} runs with (min–max). Ratios are of medians; \"better\" says which way is better, so "
        "for a higher-is-better row a ratio below 1 means imagecache is slower, and for a lower-is-better "
        "row a ratio above 1 does. GB = 10⁹ bytes; the images are 1 GiB (2³⁰ bytes) unless said.",
        "",
        table(results),
        "",
    ]
    furthest = furthest_from_limit(results)
    if furthest is not None:
        row, share = furthest
        lines += [f"Slowest relative to its limit, among the time and throughput rows whose limit is the raw socket "
                  f"or the hash functions: **{row.title}**: imagecache reaches {share:.1%} of the limit (profile: "
                  "`bench/profiles/`). Left out of that pick: the index rows, whose limits are filesystem floors "
                  "(no index at all); the herd walls, whose limit is a scaling figure; memory, a footprint "
                  "(see its growth over idle under Secondary figures).", ""]
    lines += [
        "## How each row was measured",
        "",
        "The three servers ran side by side on 127.0.0.1; each scenario's runs were interleaved (run 1 on "
        "each target, then run 2, ...). Clients are Python threads in the benchmark's process (http.client, "
        "1 MiB `readinto`, bytes counted and dropped); one fresh connection per download.",
        "",
        *(f"- {name}: `{text}`" for name, text in info.get("targets", {}).items()),
        "",
        f"1. **hit**: the {format_size(config.size)} image, already cached (imagecache and Glance count every "
        "one of these downloads as a cache hit; checked). 8 clients: 8 × size ÷ (first start → last finish).",
        "2. **miss**: `DELETE /v2/cache/{id}` (and the listing no longer shows it), then one download, "
        "request → last byte. imagecache verifies sha512 (the multihash; md5 is not hashed under the default "
        "image_cache_verify = strongest) before its response ends and fsyncs the published file; Glance 33's "
        "cache verifies md5 only, and only after the client has the bytes. Before the timed runs, one untimed "
        "download per server checked the image's sha256.",
        f"3. **herd**: a {format_size(config.herd_size)} image evicted before every run; N threads released by "
        "a barrier; wall = first start → last finish, divided by the median wall of N=1 (5 runs) on the same "
        "server. Store reads: imagecache's `imagecache_upstream_bytes_total` delta (from `/metrics`); Glance's "
        "`rchar` from `/proc/<pid>/io` summed over its gunicorn master and workers, less one image size per "
        "cache hit that Glance counted in `/v2/cache` during the herd (a hit reads the cache file, not the "
        "store), ÷ image size. `rchar` (bytes passed to read(2)/pread(2)), not `read_bytes` (bytes the block "
        "layer fetched): the image store is in the page cache here, so `read_bytes` would say 0 for every "
        "read; `rchar` also counts request headers and sqlite reads (≈0.01 image per request here). "
        "Both servers run 2 gunicorn workers × 8 threads, so from N = 17 on requests queue.",
        f"4. **small**: `wrk -t 2 -c {config.small_connections} -d {config.small_seconds:g}s` with a Lua script "
        f"cycling over {config.small_images} cached {format_size(config.small_size)} images, each request "
        "`GET /v2/images/{id}/file` with `X-Auth-Token` (an admin's token on imagecache and Glance: a full "
        "authorized download; the limit ignores it). One untimed 1 s warm-up. Any socket error or non-2xx "
        "answer would be flagged ⚠.",
        f"5. **index**: {config.index_entries:,} cached images of {config.index_file_size} bytes, built in an "
        "untimed setup (see `bench/index.py`), then timed: `GET /v2/cache` (the whole listing, admin token); "
        f"`prune()` after lowering the maximum size so that exactly {config.index_prune:,} are evicted (the "
        "evicted files and rows are put back between runs, untimed); the start-up reconcile (imagecache's "
        "`ImageCache.reconcile()` adopting every file into an empty index); the server's launch → first "
        "answer with the entries in place.",
        f"6. **memory**: {config.memory_clients} concurrent downloads of the cached image; the RSS of every "
        "process of the server's process group (gunicorn master + workers; the limit's one process) summed, "
        "sampled every 50 ms from /proc; the peak. Shared pages count once per process.",
        *(["7–11. **storm**: see the Storm section below."] if "storm" in config.scenarios else []),
        "",
        *(render_section(config, info) if "storm" in config.scenarios else []),
        "### Notes per figure",
        "",
        *footnotes(results),
        "",
    ]
    extra = info.get("extra", {})
    secondary = []
    for name in TARGET_NAMES:
        idle = extra.get(f"idle_rss_mib_{name}")
        if idle:
            secondary.append(f"- idle RSS before the memory runs, {TARGET_TITLES[name]}: {_median_range(idle, 0)} MiB")
        growth = extra.get(f"memory_growth_mib_{name}")
        if growth:
            secondary.append(f"- RSS growth under the {config.memory_clients} downloads (peak − idle), "
                             f"{TARGET_TITLES[name]}: {_median_range(growth, 1)} MiB")
    for name, walls in (extra.get("herd1_wall_s") or {}).items():
        secondary.append(f"- herd N=1 wall (the base), {TARGET_TITLES[name]}: {_median_range(walls, 3)} s")
    for key, values in sorted(extra.items()):
        if key.startswith(("herd8_wall_s_", "herd32_wall_s_")):
            secondary.append(f"- {key.replace('_wall_s_', ' wall, ')}: {_median_range(values, 3)} s")
        if key.startswith("herd") and key.endswith("_glance_hits"):
            secondary.append(f"- {key.replace('_glance_hits', '')}: cache hits Glance counted per herd "
                             f"(subtracted from rchar): {', '.join(f'{v:g}' for v in values)}")
    for name in TARGET_NAMES:
        runs = extra.get(f"wrk_{name}")
        if runs:
            p90 = [r["p90_ms"] for r in runs]
            secondary.append(f"- wrk p90 latency, {TARGET_TITLES[name]}: {_median_range(p90)} ms; requests per "
                             f"run: {', '.join(str(r['requests']) for r in runs)}")
    if secondary:
        lines += ["### Secondary figures", "", *secondary, ""]
    excerpts = info.get("log_excerpts") or {}
    if any(excerpts.values()):
        lines += ["### Server logs (warnings and errors)", ""]
        for name, excerpt in excerpts.items():
            if excerpt:
                lines += [f"{TARGET_TITLES[name]}:", "", "```", *excerpt, "```", ""]
    lines += ["### Every run", "", *runs_listing(results), ""]
    if info.get("scenario_seconds"):
        lines += ["Seconds per scenario: " + ", ".join(f"{k} {v:.0f}" for k, v in info["scenario_seconds"].items())
                  + ".", ""]
    return "\n".join(lines)


def write_outputs(config: CompareConfig, results: Results, info: dict[str, Any],
                  renderer: Callable[[CompareConfig, Results, dict[str, Any]], str] | None = None) -> str:
    """The markdown (``renderer``, default :func:`render`: the ``all`` report) to ``config.output``, the
    numbers to ``config.json_path``; the markdown."""
    text = repo_relative((renderer or render)(config, results, info))
    if config.output is not None:
        written = text
        if config.output.exists():  # sections other scenarios keep there (the cluster's table) stay
            for name, body in kept_sections(config.output.read_text(encoding="utf-8")):
                written = with_section(written, name, body)
        config.output.write_text(written, encoding="utf-8")
    if config.json_path is not None:
        config.json_path.parent.mkdir(parents=True, exist_ok=True)
        data = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
                "results": results.as_dict(), "info": info}
        config.json_path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    return text


def command_line(argv: list[str]) -> str:
    return "python -m bench " + " ".join(shlex.quote(a) for a in argv)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
