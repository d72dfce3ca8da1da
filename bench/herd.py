"""The herd: N clients ask at once for one image that is not cached.

With single-flight fills the image should be read from the store once per
herd, whatever N, and every client should stream from the growing cache
file.  For each N in ``clients``:

1. one verification herd (not timed): every client hashes what it receives
   and the sha256 must be the uploaded data's;
2. ``runs`` timed herds: evict the image (``DELETE /v2/cache/{id}``, then
   ``GET /v2/cache`` must not list it), scrape /metrics, release N download
   threads at once (a barrier), wait for all, check every client got the
   whole image, scrape /metrics again, and wait until the fill is listed in
   the cache (it publishes just after the last byte) before the next
   eviction.

Per run: the wall time (first client's start to last client's finish) and
the store reads (``imagecache_upstream_bytes_total`` delta ÷ image size).
"""

from __future__ import annotations

import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.http import Client, Metrics, release_together, write_random_file
from bench.report import facts_line, load_average, machine_facts, markdown_table
from bench.server import ImagecacheServer
from bench.stats import Summary, ratio
from bench.units import MiB, format_size

WORK_ROOT = Path(__file__).resolve().parent / ".work"

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class HerdConfig:
    size: int = 256 * MiB
    clients: tuple[int, ...] = (1, 8, 32)
    runs: int = 5
    timeout: float = 600.0  # per herd, seconds
    workers: int = 2
    verify: bool = True  # one hashed, untimed herd per N first
    work_dir: Path | None = None  # default: a fresh dir under bench/.work/, removed at the end
    keep: bool = False  # keep the work dir (data dir, server log)


@dataclass
class RunResult:
    """One herd of ``clients`` downloads."""

    clients: int
    index: int  # 0, 1, ... for timed runs; -1 for the verification herd
    wall_s: float
    ok: int  # clients that received the whole image (and the right bytes, when verified)
    errors: list[str]
    store_reads: float  # upstream bytes ÷ image size
    upstream_bytes: float
    fills_completed: float
    fills_failed: float
    followers: float
    hits: float
    misses: float
    served_cache_bytes: float
    served_upstream_bytes: float
    client_seconds: list[float] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return self.index < 0


@dataclass
class HerdRow:
    """The timed runs of one N, summarised."""

    clients: int
    runs: int
    wall: Summary
    ratio: float  # median wall(N) ÷ median wall(1)
    throughput_mib_s: float  # N × size ÷ median wall
    store_reads: Summary
    followers: float  # medians per run
    hits: float
    errors: int  # over all runs of this N, the verification herd included


@dataclass
class HerdReport:
    config: HerdConfig
    facts: dict[str, Any]
    image_sha256: str
    rows: list[HerdRow]
    runs: list[RunResult]
    server_argv: list[str]
    server_log_excerpt: list[str]
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        config = asdict(self.config)
        config["work_dir"] = str(config["work_dir"]) if config["work_dir"] else None
        return {
            "scenario": "herd",
            "config": config,
            "facts": self.facts,
            "image_sha256": self.image_sha256,
            "rows": [
                {**asdict(row), "wall": row.wall.as_dict(), "store_reads": row.store_reads.as_dict()}
                for row in self.rows
            ],
            "runs": [asdict(run) for run in self.runs],
            "server_argv": self.server_argv,
            "server_log_excerpt": self.server_log_excerpt,
            "seconds": self.seconds,
        }


# -- one herd -------------------------------------------------------------------------
def settled_fill_counts(client: Client, before: Metrics, timeout: float = 10.0) -> Metrics:
    """The metrics' change since ``before`` once the herd's fill has counted its result.

    The fill's thread counts it just after it publishes the image, so a
    client can hold every byte (and see the image listed) a moment before.
    """
    deadline = time.monotonic() + timeout
    while True:
        delta = client.metrics() - before
        counted = sum(delta.get("imagecache_fills_total", result=r) for r in ("completed", "failed", "abandoned"))
        if counted >= 1 or time.monotonic() >= deadline:
            return delta
        time.sleep(0.02)



def herd_once(
    client: Client, image_id: str, size: int, n: int, *, index: int, timeout: float,
    expected_sha256: str | None = None,
) -> RunResult:
    """Evict, release ``n`` downloads together, wait, measure (see the module doc)."""
    client.evict(image_id)
    before = client.metrics()
    batch = release_together(client, image_id, n, size, timeout, expected_sha256=expected_sha256)
    errors, wall = batch.errors, batch.wall
    if not errors:
        client.wait_cached(image_id)
    delta = settled_fill_counts(client, before)
    upstream = delta.get("imagecache_upstream_bytes_total")
    return RunResult(
        clients=n,
        index=index,
        wall_s=wall,
        ok=n - len(errors),
        errors=errors,
        store_reads=upstream / size,
        upstream_bytes=upstream,
        fills_completed=delta.get("imagecache_fills_total", result="completed"),
        fills_failed=delta.get("imagecache_fills_total", result="failed")
        + delta.get("imagecache_fills_total", result="abandoned"),
        followers=delta.get("imagecache_fill_followers_total"),
        hits=delta.get("imagecache_cache_hits_total"),
        misses=delta.get("imagecache_cache_misses_total"),
        served_cache_bytes=delta.get("imagecache_served_bytes_total", source="cache"),
        served_upstream_bytes=delta.get("imagecache_served_bytes_total", source="upstream"),
        client_seconds=[round(d.seconds, 4) for d in batch.downloads if d.seconds is not None],
    )


# -- the scenario ---------------------------------------------------------------------
def run_herd(config: HerdConfig, log: Log = _stderr) -> HerdReport:
    """Start a server, upload one image, run every herd, stop the server."""
    began = time.monotonic()
    facts = machine_facts()
    own_dir = config.work_dir is None
    if own_dir:
        WORK_ROOT.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="herd-", dir=WORK_ROOT))
    else:
        work = Path(config.work_dir)  # type: ignore[arg-type]
        work.mkdir(parents=True, exist_ok=True)
    keep = config.keep or not own_dir
    runs: list[RunResult] = []
    server = ImagecacheServer(work / "server", workers=config.workers)
    try:
        image_path = work / "image.raw"
        log(f"herd: writing {format_size(config.size)} of random data to {image_path}")
        sha256 = write_random_file(image_path, config.size)
        with server:
            log(f"herd: {' '.join(server.argv)}")
            client = Client(server.host, server.port, timeout=config.timeout)
            image_id = client.create_image("herd")
            t0 = time.monotonic()
            client.upload_file(image_id, image_path, timeout=config.timeout)
            log(f"herd: uploaded image {image_id} in {time.monotonic() - t0:.2f} s")
            image_path.unlink()  # the store has it now
            for n in config.clients:
                if config.verify:
                    result = herd_once(client, image_id, config.size, n, index=-1,
                                       timeout=config.timeout, expected_sha256=sha256)
                    runs.append(result)
                    log(_progress(result))
                for i in range(config.runs):
                    result = herd_once(client, image_id, config.size, n, index=i, timeout=config.timeout)
                    runs.append(result)
                    log(_progress(result))
        excerpt = server.log_excerpt()
        facts["loadavg_at_end"] = load_average()
        return HerdReport(
            config=config,
            facts=facts,
            image_sha256=sha256,
            rows=summarise(runs, config.size),
            runs=runs,
            server_argv=server.argv,
            server_log_excerpt=excerpt,
            seconds=round(time.monotonic() - began, 1),
        )
    except BaseException:
        server.stop()
        excerpt = server.log_excerpt()
        if excerpt:
            log("herd: the server logged:\n  " + "\n  ".join(excerpt))
        log(f"herd: server log kept in {server.log_path}")
        keep = True  # everything stays for a post-mortem
        raise
    finally:
        server.stop()
        if keep:
            log(f"herd: work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _progress(run: RunResult) -> str:
    kind = "verify" if run.verified else f"run {run.index + 1}"
    status = "ok" if not run.errors else f"{len(run.errors)} ERRORS: {run.errors[:3]}"
    return (
        f"herd: N={run.clients:<3} {kind:<7} wall {run.wall_s:7.3f} s  store reads {run.store_reads:.2f}  "
        f"fills {run.fills_completed:.0f}  followers {run.followers:.0f}  hits {run.hits:.0f}  {status}"
    )


def summarise(runs: list[RunResult], size: int) -> list[HerdRow]:
    """One row per N, over its timed runs (pure)."""
    order: list[int] = []
    for run in runs:
        if run.clients not in order:
            order.append(run.clients)
    rows: list[HerdRow] = []
    base: float | None = None
    for n in order:
        mine = [run for run in runs if run.clients == n]
        timed = [run for run in mine if not run.verified and not run.errors] or [r for r in mine if not r.errors]
        if not timed:
            timed = mine
        wall = Summary.of(run.wall_s for run in timed)
        if n == 1:
            base = wall.median
        rows.append(HerdRow(
            clients=n,
            runs=len([run for run in mine if not run.verified]),
            wall=wall,
            ratio=float("nan"),
            throughput_mib_s=n * size / wall.median / MiB if wall.median else float("nan"),
            store_reads=Summary.of(run.store_reads for run in timed),
            followers=Summary.of(run.followers for run in timed).median,
            hits=Summary.of(run.hits for run in timed).median,
            errors=sum(len(run.errors) for run in mine),
        ))
    for row in rows:
        row.ratio = ratio(row.wall.median, base or 0.0)  # NaN (shown "–") without an N=1 row
    return rows


HEADER = (
    "N", "runs", "wall s, median (min–max)", "ratio to N=1", "aggregate MiB/s",
    "store reads per fill", "followers · hits", "errors",
)


def table(rows: list[HerdRow]) -> str:
    def reads(s: Summary) -> str:
        text = f"{s.median:.2f}"
        return text if s.min == s.max else f"{text} ({s.min:.2f}–{s.max:.2f})"

    return markdown_table(HEADER, [
        (
            str(row.clients),
            str(row.runs),
            f"{row.wall.median:.3f} ({row.wall.min:.3f}–{row.wall.max:.3f})",
            f"{row.ratio:.2f}" if math.isfinite(row.ratio) else "–",
            f"{row.throughput_mib_s:,.0f}",
            reads(row.store_reads),
            f"{row.followers:g} · {row.hits:g}",
            str(row.errors),
        )
        for row in rows
    ])


def render(report: HerdReport) -> str:
    """The report as markdown: heading, facts, table, notes."""
    config = report.config
    lines = [
        f"### herd: {format_size(config.size)} image, {config.workers} workers, "
        f"clients {','.join(map(str, config.clients))}, {config.runs} timed run{'' if config.runs == 1 else 's'} each",
        "",
        facts_line(report.facts),
        "",
        table(report.rows),
        "",
        "wall: first client's start to last client's finish (median of the timed runs); "
        "ratio: median wall(N) ÷ median wall(1); aggregate: N × size ÷ median wall; "
        "store reads: imagecache_upstream_bytes_total delta ÷ image size; followers · hits: "
        "imagecache_fill_followers_total and imagecache_cache_hits_total deltas (medians). "
        + ("Before the timed runs of each N, one untimed herd checked every client's sha256. "
           if config.verify else "")
        + f"Total {report.seconds:.0f} s"
        + (f"; load {' '.join(f'{x:.2f}' for x in report.facts['loadavg_at_end'])} at the end."
           if report.facts.get("loadavg_at_end") else "."),
    ]
    if report.server_log_excerpt:
        lines += ["", "Server log, warnings and errors:", "", "```", *report.server_log_excerpt, "```"]
    else:
        lines += ["", "Server log: no warnings or errors."]
    return "\n".join(lines)
