"""The cluster: several edge nodes behind one WAN link, every client at once, peer fill off and on.

One embedded origin (``imagecache serve``, the image store) sits behind a
:class:`bench.wan.WanLink`: every byte the nodes read from it shares one
rate, as an edge site's uplink does.  Each node is ``imagecache serve
--upstream <link>`` with the central index on PostgreSQL (a scratch schema
per setup, dropped afterwards).  Three setups, in one run:

* **one node**: one node and its ``clients``: the herd a single node serves;
* **peer fill off**: ``nodes`` nodes, no ``peer_token``: each node reads the
  image over the link itself;
* **peer fill on**: the same with one ``peer_token``: one node claims the
  cluster's fill, the others read from it while it fills.

Per setup, one untimed herd where every client hashes what it receives
(sha256 must be the upload's), then ``runs`` timed herds.  A herd: evict the
image on every node, release ``nodes × clients`` downloads together (one
barrier, one client process per node), wait until every node lists the image.
Measured per herd: the wall (first start to last finish), the origin reads
(``imagecache_upstream_bytes_total`` summed over the nodes ÷ image size),
the bytes the link carried ÷ image size (the relay's own count: an
independent check), the peer bytes (``imagecache_peer_bytes_total``) and the
nodes' CPU seconds.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.clients import download_across
from bench.herd import WORK_ROOT, Log, _stderr, settled_fill_counts
from bench.http import Client, Metrics, judge_batch, write_random_file
from bench.procs import cpu_seconds, group_pids
from bench.report import facts_line, load_average, machine_facts, markdown_table
from bench.server import ImagecacheServer, imagecache_command
from bench.stats import Summary, ratio
from bench.units import GiB, MiB, format_size
from bench.wan import WanLink

DEFAULT_DB_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PEER_TOKEN = "bench-cluster-secret"
#: Client processes per herd: as bench.clients does, a few, never one per node when there is one node.
CLIENT_PROCESSES = 4

@dataclass(frozen=True)
class ClusterConfig:
    size: int = 512 * MiB
    nodes: int = 4
    clients: int = 16  # per node
    rate: int = 200 * MiB  # the link, bytes per second for all nodes together
    runs: int = 3
    timeout: float = 600.0
    workers: int = 2  # per node
    verify: bool = True
    db_url: str | None = None  # default: IMAGECACHE_BENCH_DB_URL, else the local PostgreSQL
    work_dir: Path | None = None
    keep: bool = False


@dataclass(frozen=True)
class Setup:
    name: str
    nodes: int
    clients: int  # per node
    peer_fill: bool


@dataclass
class HerdResult:
    setup: str
    index: int  # -1: the verification herd
    wall_s: float
    errors: list[str]
    origin_reads: float  # upstream bytes over all nodes ÷ size
    link_reads: float  # bytes the link carried ÷ size
    peer_reads: float  # peer bytes over all nodes ÷ size
    fills_completed: float
    peer_fills: float
    served_gib: float
    cpu_s: float  # the nodes' CPU seconds during the herd


@dataclass
class SetupRow:
    setup: Setup
    clients: int
    wall: Summary
    origin_reads: Summary
    link_reads: Summary
    peer_reads: Summary
    cpu_per_gib: float
    errors: int
    ratio_to_one_node: float = float("nan")  # ÷ one node's herd of the same clients per node
    ratio_to_same_clients: float = float("nan")  # ÷ one node serving as many clients in all


@dataclass
class ClusterReport:
    config: ClusterConfig
    facts: dict[str, Any]
    rows: list[SetupRow]
    herds: list[HerdResult]
    log_excerpts: dict[str, list[str]]
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        config = asdict(self.config)
        config["work_dir"] = str(config["work_dir"]) if config["work_dir"] else None
        config["db_url"] = None  # may name a password
        return {
            "scenario": "cluster",
            "config": config,
            "facts": self.facts,
            "rows": [{**asdict(row), "wall": row.wall.as_dict(), "origin_reads": row.origin_reads.as_dict(),
                      "link_reads": row.link_reads.as_dict(), "peer_reads": row.peer_reads.as_dict()}
                     for row in self.rows],
            "herds": [asdict(herd) for herd in self.herds],
            "log_excerpts": self.log_excerpts,
            "seconds": self.seconds,
        }


def setups(config: ClusterConfig) -> list[Setup]:
    every = config.nodes * config.clients
    found = [Setup("one node", 1, config.clients, peer_fill=False)]
    if config.nodes > 1:
        found.append(Setup("one node, every client", 1, every, peer_fill=False))
    return [
        *found,
        Setup("peer fill off", config.nodes, config.clients, peer_fill=False),
        Setup("peer fill on", config.nodes, config.clients, peer_fill=True),
    ]


# -- the central index's scratch schema -------------------------------------------------
@contextlib.contextmanager
def scratch_schema(base_url: str) -> Iterator[str]:
    """A URL whose connections use a fresh schema (migrated with ``imagecache db upgrade``); dropped after."""
    from sqlalchemy import create_engine, text

    from imagecache.db.engine import database_url

    schema = f"icbench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(database_url(base_url))
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = database_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
        rendered = url.render_as_string(hide_password=False)
        done = subprocess.run([*imagecache_command(), "db", "upgrade", "--db-url", rendered],
                              check=False, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"imagecache db upgrade failed: {done.stderr.strip()}")
        yield rendered
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


# -- one herd ---------------------------------------------------------------------------
def herd(setup: Setup, nodes: list[ImagecacheServer], link: WanLink, image_id: str, config: ClusterConfig, *,
         index: int, sha256: str | None) -> HerdResult:
    clients = [Client(node.host, node.port, timeout=config.timeout) for node in nodes]
    for client in clients:
        client.evict(image_id)
    before = [client.metrics() for client in clients]
    link_before = link.bytes_down()
    cpu_before = sum(cpu_seconds(group_pids(node.pid or 0)) for node in nodes)
    per_process = max(1, CLIENT_PROCESSES // len(clients))
    targets = []
    for client in clients:
        share = [setup.clients // per_process + (1 if i < setup.clients % per_process else 0)
                 for i in range(per_process)]
        targets += [(client, count) for count in share]
    results = download_across(targets, image_id, verify=sha256 is not None, timeout=config.timeout)
    batch = judge_batch(results, config.size, sha256)
    errors = list(batch.errors)
    deltas: list[Metrics] = []
    for client, earlier in zip(clients, before, strict=True):
        try:
            client.wait_cached(image_id, timeout=60)
        except Exception as exc:  # noqa: BLE001 - reported, the herd goes on
            errors.append(f"{client.host}:{client.port}: {exc}")
        deltas.append(settled_fill_counts(client, earlier, timeout=30.0))
    cpu = sum(cpu_seconds(group_pids(node.pid or 0)) for node in nodes) - cpu_before
    size = config.size
    return HerdResult(
        setup=setup.name,
        index=index,
        wall_s=batch.wall,
        errors=errors,
        origin_reads=sum(d.get("imagecache_upstream_bytes_total") for d in deltas) / size,
        link_reads=(link.bytes_down() - link_before) / size,
        peer_reads=sum(d.get("imagecache_peer_bytes_total") for d in deltas) / size,
        fills_completed=sum(d.get("imagecache_fills_total", result="completed") for d in deltas),
        peer_fills=sum(d.get("imagecache_peer_fills_total", result="completed") for d in deltas),
        served_gib=batch.nbytes / GiB,
        cpu_s=round(cpu, 2),
    )


# -- the scenario -----------------------------------------------------------------------
def run_cluster(config: ClusterConfig, log: Log = _stderr) -> ClusterReport:
    """Start the origin and its link, then each setup's nodes in turn; every herd; stop everything."""
    began = time.monotonic()
    facts = machine_facts()
    own_dir = config.work_dir is None
    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="cluster-", dir=WORK_ROOT)) if own_dir else Path(config.work_dir or ".")
    work.mkdir(parents=True, exist_ok=True)
    keep = config.keep or not own_dir
    herds: list[HerdResult] = []
    excerpts: dict[str, list[str]] = {}
    try:
        image_path = work / "image.raw"
        log(f"cluster: writing {format_size(config.size)} of random data")
        sha256 = write_random_file(image_path, config.size)
        with ImagecacheServer(work / "origin", workers=2) as origin, \
                WanLink(origin.host, origin.port, rate=config.rate, work_dir=work) as link:
            client = Client(origin.host, origin.port, timeout=config.timeout)
            image_id = client.create_image("cluster")
            client.upload_file(image_id, image_path, timeout=config.timeout)
            image_path.unlink()
            log(f"cluster: origin {origin.url}, link {link.url} at {format_size(config.rate)}/s, image {image_id}")
            for setup in setups(config):
                herds += run_setup(setup, origin, link, image_id, config, work, sha256, excerpts, log)
            excerpts["origin"] = origin.log_excerpt()
        facts["loadavg_at_end"] = load_average()
        return ClusterReport(config, facts, summarise(herds, setups(config), config), herds,
                             {name: lines for name, lines in excerpts.items() if lines},
                             round(time.monotonic() - began, 1))
    except BaseException:
        keep = True
        raise
    finally:
        if keep:
            log(f"cluster: work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run_setup(setup: Setup, origin: ImagecacheServer, link: WanLink, image_id: str, config: ClusterConfig,
              work: Path, sha256: str, excerpts: dict[str, list[str]], log: Log) -> list[HerdResult]:
    base_url = config.db_url or os.environ.get("IMAGECACHE_BENCH_DB_URL") or DEFAULT_DB_URL
    results: list[HerdResult] = []
    slug = setup.name.replace(" ", "-")
    with scratch_schema(base_url) as db_url, contextlib.ExitStack() as stack:
        nodes = []
        for i in range(setup.nodes):
            args = ["--upstream", link.url, "--image-cache-driver", "central", "--db-url", db_url]
            if setup.peer_fill:
                args += ["--peer-token", PEER_TOKEN]
            node = ImagecacheServer(work / f"{slug}-{i}", workers=config.workers, extra_args=args)
            nodes.append(stack.enter_context(node))
        log(f"cluster: {setup.name}: {setup.nodes} node(s) × {setup.clients} clients")
        runs = ([-1] if config.verify else []) + list(range(config.runs))
        for index in runs:
            result = herd(setup, nodes, link, image_id, config, index=index,
                          sha256=sha256 if index < 0 else None)
            results.append(result)
            log(_progress(result))
        for i, node in enumerate(nodes):
            excerpts[f"{setup.name} node {i}"] = node.log_excerpt()
    return results


def _progress(result: HerdResult) -> str:
    kind = "verify" if result.index < 0 else f"run {result.index + 1}"
    status = "ok" if not result.errors else f"{len(result.errors)} ERRORS: {result.errors[:3]}"
    return (f"cluster: {result.setup:<13} {kind:<7} wall {result.wall_s:7.2f} s  origin reads "
            f"{result.origin_reads:.2f}  link {result.link_reads:.2f}  peer {result.peer_reads:.2f}  "
            f"cpu {result.cpu_s:.1f} s  {status}")


def summarise(herds: list[HerdResult], order: list[Setup], config: ClusterConfig) -> list[SetupRow]:
    """One row per setup over its timed herds (pure); the wall also as a ratio to one node's."""
    rows: list[SetupRow] = []
    for setup in order:
        mine = [h for h in herds if h.setup == setup.name]
        if not mine:
            continue
        timed = [h for h in mine if h.index >= 0 and not h.errors] or mine
        served = sum(h.served_gib for h in timed)
        rows.append(SetupRow(
            setup=setup,
            clients=setup.nodes * setup.clients,
            wall=Summary.of(h.wall_s for h in timed),
            origin_reads=Summary.of(h.origin_reads for h in timed),
            link_reads=Summary.of(h.link_reads for h in timed),
            peer_reads=Summary.of(h.peer_reads for h in timed),
            cpu_per_gib=sum(h.cpu_s for h in timed) / served if served else float("nan"),
            errors=sum(len(h.errors) for h in mine),
        ))
    for row in rows:
        alone = [other for other in rows if other.setup.nodes == 1]
        per_node = next((o.wall.median for o in alone if o.setup.clients == row.setup.clients), 0.0)
        in_all = next((o.wall.median for o in alone if o.clients == row.clients), 0.0)
        row.ratio_to_one_node = ratio(row.wall.median, per_node)
        row.ratio_to_same_clients = ratio(row.wall.median, in_all)
    return rows


HEADER = ("setup", "nodes × clients", "wall s, median (min–max)", "÷ one node's herd",
          "÷ one node, as many clients",
          "origin reads ÷ size", "link bytes ÷ size", "peer bytes ÷ size", "nodes' CPU-s per GiB served", "errors")


def table(rows: list[SetupRow]) -> str:
    def spread(s: Summary, digits: int = 2) -> str:
        text = f"{s.median:.{digits}f}"
        return text if s.min == s.max else f"{text} ({s.min:.{digits}f}–{s.max:.{digits}f})"

    return markdown_table(HEADER, [
        (
            row.setup.name,
            f"{row.setup.nodes} × {row.setup.clients}",
            spread(row.wall),
            _ratio(row.ratio_to_one_node),
            _ratio(row.ratio_to_same_clients),
            spread(row.origin_reads),
            spread(row.link_reads),
            spread(row.peer_reads),
            f"{row.cpu_per_gib:.2f}" if math.isfinite(row.cpu_per_gib) else "–",
            str(row.errors),
        )
        for row in rows
    ])


def _ratio(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else "–"


def render(report: ClusterReport, command: str | None = None) -> str:
    config = report.config
    link_floor = config.size / config.rate
    lines = [
        "## cluster: peer fill across edge nodes behind one origin link",
        "",
        *([f"Produced by `{command}`.", ""] if command else []),
        f"### cluster: {format_size(config.size)} image, {config.nodes} nodes × {config.clients} clients, "
        f"origin link {format_size(config.rate)}/s, {config.workers} workers per node, "
        f"{config.runs} timed run{'' if config.runs == 1 else 's'} per setup",
        "",
        facts_line(report.facts),
        "",
        table(report.rows),
        "",
        f"wall: first client's start to last client's finish (median of the timed herds); the link alone needs "
        f"{link_floor:.2f} s per image read. ÷ one node's herd: the wall ÷ one node's with the same clients per "
        "node (the issue's yardstick); ÷ one node, as many clients: ÷ one node serving every client of the "
        "cluster (the same bytes to serve on the same cores). origin reads: imagecache_upstream_bytes_total "
        "summed over the nodes ÷ image size; link bytes: what the WAN relay carried towards the nodes ÷ image size "
        "(headers and "
        "metadata included, an independent count); peer bytes: imagecache_peer_bytes_total summed ÷ size. "
        "CPU: the nodes' user+system seconds during the timed herds ÷ GiB the clients received. "
        + ("Before each setup's timed herds, one untimed herd checked every client's sha256. " if config.verify
           else "")
        + "Every node and the load generator share this machine's cores: a cluster of N nodes here serves N "
        "times the bytes on the same CPUs, where real nodes would each have their own."
        + f" Total {report.seconds:.0f} s"
        + (f"; load {' '.join(f'{x:.2f}' for x in report.facts['loadavg_at_end'])} at the end."
           if report.facts.get("loadavg_at_end") else "."),
    ]
    if report.log_excerpts:
        lines += ["", "Server logs, warnings and errors:", "", "```"]
        for name, excerpt in report.log_excerpts.items():
            lines += [f"-- {name}", *excerpt]
        lines += ["```"]
    else:
        lines += ["", "Server logs: no warnings or errors."]
    return "\n".join(lines)

