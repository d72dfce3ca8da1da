"""``python -m bench <scenario> [options]``: run a benchmark, print its markdown report.

The report goes to stdout (progress to stderr); ``--json PATH`` also writes
every run's numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.units import parse_counts, parse_size


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _counts(text: str) -> tuple[int, ...]:
    try:
        return tuple(parse_counts(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _rate(text: str) -> int:
    """Bytes per second: ``4M``, ``4MiB/s``, ``64K``."""
    return _size(text[:-2] if text.lower().endswith("/s") else text)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    scenarios = parser.add_subparsers(dest="scenario", required=True, metavar="SCENARIO")

    herd = scenarios.add_parser(
        "herd", help="N clients at once for one uncached image: wall time and store reads",
        description="N concurrent first downloads of one image: with single-flight fills the "
        "image store is read once per herd.",
    )
    herd.add_argument("--size", type=_size, default="256M", help="image size, e.g. 64M, 256M, 1G (default 256M)")
    herd.add_argument("--clients", type=_counts, default="1,8,32", help="herd sizes, comma-separated (default 1,8,32)")
    herd.add_argument("--runs", type=_positive_int, default=5, help="timed herds per size (default 5)")
    herd.add_argument("--timeout", type=_positive_float, default=600.0, help="seconds allowed per herd (default 600)")
    herd.add_argument("--workers", type=_positive_int, default=2, help="gunicorn workers (default 2)")
    herd.add_argument("--no-verify", dest="verify", action="store_false",
                      help="skip the untimed sha256-checking herd before each size's runs")
    herd.add_argument("--json", type=Path, metavar="PATH", help="also write every run's numbers as JSON")
    herd.add_argument("--work-dir", type=Path, help="data dir and server log here (kept) instead of bench/.work/")
    herd.add_argument("--keep", action="store_true", help="keep the work dir (data, server log) afterwards")
    herd.set_defaults(run=_run_herd)

    cluster = scenarios.add_parser(
        "cluster", help="edge nodes behind one throttled origin link, peer fill off and on: origin reads and wall",
        description="One origin behind a throttled WAN relay; one node, then NODES nodes without and with peer "
        "fill (central index on PostgreSQL, a scratch schema each), CLIENTS downloads per node released together: "
        "origin reads ÷ image size, link bytes, peer bytes, wall, every client's sha256 once per setup.",
    )
    cluster.add_argument("--size", type=_size, default="512M", help="image size (default 512M)")
    cluster.add_argument("--nodes", type=_positive_int, default=4, help="nodes in the cluster (default 4)")
    cluster.add_argument("--clients", type=_positive_int, default=16, help="downloads per node (default 16)")
    cluster.add_argument("--rate", type=_rate, default="200M", help="the origin link for all nodes (default 200M)")
    cluster.add_argument("--runs", type=_positive_int, default=3, help="timed herds per setup (default 3)")
    cluster.add_argument("--timeout", type=_positive_float, default=600.0, help="seconds allowed per herd")
    cluster.add_argument("--workers", type=_positive_int, default=2, help="gunicorn workers per node (default 2)")
    cluster.add_argument("--db-url", help="PostgreSQL for the central index (default $IMAGECACHE_BENCH_DB_URL, "
                         "else postgresql+psycopg://postgres@127.0.0.1:5432/test); a scratch schema is used")
    cluster.add_argument("--no-verify", dest="verify", action="store_false",
                         help="skip the untimed sha256-checking herd of each setup")
    cluster.add_argument("--output", type=Path, default=Path(__file__).resolve().parent / "RESULTS.md",
                         help="put the report in this file's cluster section (default bench/RESULTS.md; `all` "
                         "keeps the section when it rewrites the file); '-' for stdout only")
    cluster.add_argument("--json", type=Path, metavar="PATH", help="also write every herd's numbers as JSON")
    cluster.add_argument("--work-dir", type=Path, help="data dirs and logs here (kept)")
    cluster.add_argument("--keep", action="store_true", help="keep the work dir afterwards")
    cluster.set_defaults(run=_run_cluster)

    hits = scenarios.add_parser(
        "central-hits", help="hits/s one PostgreSQL index takes from many workers, one by one and batched",
        description="PROCESSES processes, each with its own cache on a scratch central-index schema, count HITS "
        "hits each on one image, released together; once written one by one, once batched. Counts must be exact.",
    )
    hits.add_argument("--processes", type=_positive_int, default=8, help="worker processes (default 8)")
    hits.add_argument("--hits", type=_positive_int, default=1000, help="hits per process (default 1000)")
    hits.add_argument("--db-url", help="PostgreSQL (default $IMAGECACHE_BENCH_DB_URL, else "
                      "postgresql+psycopg://postgres@127.0.0.1:5432/test); a scratch schema is used")
    hits.set_defaults(run=_run_central_hits)

    glance = scenarios.add_parser(
        "glance-up", help="real Glance 33 on a free loopback port (its own venv), until Ctrl-C",
        description="Build bench/.glance-venv once (glance==33.0.0, gunicorn, Python 3.11), write a config "
        "(sqlite, file store, the paste flavor), glance-manage db_sync, and run gunicorn "
        "glance.wsgi.api:application on 127.0.0.1 until Ctrl-C or SIGTERM.",
    )
    _glance_options(glance)
    glance.add_argument("--flavor", choices=("none", "caching", "cachemanagement"), default="none",
                        help="Glance's own image cache: none (default), caching, or cachemanagement")
    glance.add_argument("--image-cache-max-size", type=_size, help="Glance's image_cache_max_size, e.g. 10G")
    glance.add_argument("--workers", type=_positive_int, default=1, help="gunicorn workers (default 1)")
    glance.add_argument("--seconds", type=_positive_float, help="stop after this many seconds instead of at Ctrl-C")
    glance.add_argument("--work-dir", type=Path, help="config, database, images and logs here (kept)")
    glance.add_argument("--keep", action="store_true", help="keep the work dir afterwards")
    glance.set_defaults(run=_run_glance_up)

    edge = scenarios.add_parser(
        "edge-check", help="real Glance 33 + an imagecache edge node in front of it: a PASS/FAIL checklist",
        description="Start Glance (no cache flavor) and imagecache serve --upstream <glance> (2 workers) on "
        "loopback, then check uploads, misses, hits, Range, a herd, deactivate/reactivate/delete, the edge's "
        "cache API, python-glanceclient and a stopped Glance through the edge. Exit status 1 if an item fails.",
    )
    _glance_options(edge)
    edge.add_argument("--size", type=_size, default="16M", help="main and herd image size (default 16M)")
    edge.add_argument("--herd", type=_positive_int, default=8, help="concurrent first downloads (default 8)")
    edge.add_argument("--workers", type=_positive_int, default=2, help="the edge's gunicorn workers (default 2)")
    edge.add_argument("--work-dir", type=Path, help="servers' data and logs here (kept)")
    edge.add_argument("--keep", action="store_true", help="keep the work dir (logs, data) afterwards")
    edge.set_defaults(run=_run_edge_check)

    everything = scenarios.add_parser(
        "all", help="every scenario against imagecache, Glance 33 and the limit; writes bench/RESULTS.md",
        description="Start imagecache (2 workers, tokens), real Glance 33 with its cache (2 workers, tokens) and "
        "the raw-socket limit on loopback, run hit, miss, herd, small-request, memory, storm and index-at-scale "
        "scenarios against each (runs interleaved), and write the table with ratios to bench/RESULTS.md.",
    )
    everything.add_argument("--runs", type=_positive_int, default=5, help="runs per figure (default 5)")
    everything.add_argument("--size", type=_size, default="1G", help="hit/miss/memory image size (default 1G)")
    everything.add_argument("--herd-size", type=_size, default="256M", help="herd image size (default 256M)")
    everything.add_argument("--herd-clients", type=_counts, default="8,32", help="herd sizes (default 8,32)")
    everything.add_argument("--small-seconds", type=_positive_float, default=5.0,
                            help="seconds per wrk run (default 5)")
    everything.add_argument("--index-entries", type=_positive_int, default=100_000,
                            help="cached entries for the index rows (default 100000)")
    everything.add_argument("--index-prune", type=_positive_int, default=1_000,
                            help="entries prune() must evict (default 1000)")
    everything.add_argument("--targets", type=_names(("imagecache", "glance", "limit")),
                            default="imagecache,glance,limit", help="comma-separated (default all three)")
    everything.add_argument("--scenarios", type=_names(("miss", "hit", "herd", "small", "memory", "index", "storm")),
                            default="miss,hit,herd,small,memory,index,storm", help="comma-separated (default all)")
    everything.add_argument("--output", type=Path, default=Path(__file__).resolve().parent / "RESULTS.md",
                            help="the markdown report (default bench/RESULTS.md); '-' for stdout only")
    everything.add_argument("--json", type=Path, metavar="PATH",
                            default=Path(__file__).resolve().parent / ".work" / "all-results.json",
                            help="every run's numbers as JSON (default bench/.work/all-results.json)")
    _side_by_side_options(everything)
    everything.add_argument("--storm-runs", type=_positive_int, default=1,
                            help="runs of the storm scenario (default 1: it takes minutes; see bench/storm.py)")
    _storm_options(everything)
    everything.set_defaults(run=_run_all)

    storm = scenarios.add_parser(
        "storm", help="slow clients, big herds, slowloris, CPU per GiB and 500 open streams, against all three",
        description="Start imagecache, real Glance 33 with its cache and the limit (as `all` does) and run the "
        "storm: 200 slow clients (first byte and /healthcheck meanwhile), herds of 8/32/128 with hits at the "
        "same N, server CPU per GiB, 256 slowloris connections (/versions meanwhile, when they are closed), "
        "RSS with 500 open streams. Runs interleaved; the report to stdout (or --output), every number to --json.",
    )
    storm.add_argument("--runs", type=_positive_int, default=1, help="runs of every part (default 1)")
    storm.add_argument("--herd-size", type=_size, default="256M", help="herd image size (default 256M)")
    storm.add_argument("--targets", type=_names(("imagecache", "glance", "limit")),
                       default="imagecache,glance,limit", help="comma-separated (default all three)")
    storm.add_argument("--parts", type=_names(("slow", "herd", "slowloris", "open")),
                       default="slow,herd,slowloris,open", help="comma-separated (default all four)")
    storm.add_argument("--output", type=Path, default=Path("-"),
                       help="also write the markdown report here (default '-': stdout only)")
    storm.add_argument("--json", type=Path, metavar="PATH",
                       default=Path(__file__).resolve().parent / ".work" / "storm-results.json",
                       help="every number as JSON (default bench/.work/storm-results.json)")
    _side_by_side_options(storm)
    _storm_options(storm)
    storm.set_defaults(run=_run_storm)

    listing = scenarios.add_parser(
        "listing", help="GET /v2/cache of many cached entries: time to the last byte and the node's RSS",
        description="Fill an index with ENTRIES entries (files and driver rows, no downloads), start imagecache "
        "serve and time GET /v2/cache while sampling the RSS of every process of the node.",
    )
    listing.add_argument("--entries", type=_positive_int, default=100_000, help="cached entries (default 100000)")
    listing.add_argument("--runs", type=_positive_int, default=5, help="timed runs (default 5)")
    listing.add_argument("--workers", type=_positive_int, default=2, help="server workers (default 2)")
    listing.add_argument("--output", type=Path, default=Path(__file__).resolve().parent / "RESULTS.md",
                         help="put the report in this file's listing section (default bench/RESULTS.md; `all` "
                         "keeps the section when it rewrites the file); '-' for stdout only")
    listing.add_argument("--json", type=Path, help="every run's numbers here")
    listing.set_defaults(run=_run_listing)

    prof = scenarios.add_parser(
        "profile", help="py-spy (cProfile for prune, listing) of imagecache under one scenario's load; a summary",
        description="Start imagecache serve (2 workers, tokens), run one scenario's load and sample every worker "
        "with py-spy; write the share of samples per function and per area to bench/profiles/<scenario>.txt.",
    )
    prof.add_argument("scenario", choices=("small", "miss", "hit", "prune", "listing"))
    prof.add_argument("--seconds", type=_positive_float, default=20.0, help="sampling time (default 20)")
    prof.add_argument("--rate", type=_positive_int, default=100, help="samples per second (default 100)")
    prof.add_argument("--size", type=_size, default="1G", help="image size for miss/hit (default 1G)")
    prof.add_argument("--gil", action="store_true", help="sample only the GIL holder (py-spy --gil)")
    prof.add_argument("--output", type=Path, help="default bench/profiles/<scenario>[-gil].txt")
    prof.set_defaults(run=_run_profile)
    return parser


def _names(allowed: tuple[str, ...]):  # type: ignore[no-untyped-def]
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
        unknown = [name for name in names if name not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(allowed)} (got {text!r})")
        return names

    return parse


def _side_by_side_options(parser: argparse.ArgumentParser) -> None:
    """What every scenario that starts the three targets at once takes (``all``, ``storm``)."""
    parser.add_argument("--wait-load", type=float, default=180.0, metavar="SECONDS",
                        help="wait up to this long for the 1-min load average to drop below the CPU count "
                        "before starting (default 180; 0: don't wait)")
    parser.add_argument("--work-dir", type=Path, help="servers' data and logs here (kept)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir afterwards")
    parser.add_argument("--python", help="Python 3.11 for Glance's venv (default: $GLANCE_PYTHON or python3.11)")


def _storm_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("storm (bench/storm.py)")
    group.add_argument("--storm-size", type=_size, default="64M",
                       help="the cached image the slow clients and open streams read (default 64M)")
    group.add_argument("--slow-clients", type=_positive_int, default=200, help="slow clients (default 200)")
    group.add_argument("--slow-rate", type=_rate, default="4M", help="each slow client's rate (default 4M = 4 MiB/s)")
    group.add_argument("--herd-ns", type=_counts, default="8,32,128", help="herd sizes (default 8,32,128)")
    group.add_argument("--slowloris", type=_positive_int, default=256, help="slow-header connections (default 256)")
    group.add_argument("--open-streams", type=_positive_int, default=500, help="open streams (default 500)")
    group.add_argument("--open-rate", type=_rate, default="64K", help="an open stream's rate (default 64K)")
    group.add_argument("--seconds", type=_positive_float, default=10.0,
                       help="sampling window of the slow clients, slowloris and open streams (default 10)")
    group.add_argument("--probe-timeout", type=_positive_float, default=30.0,
                       help="a probe's timeout: first byte, /healthcheck, /versions (default 30)")
    group.add_argument("--loris-cap", type=_positive_float, default=40.0,
                       help="how long to wait for the server to close the slowloris connections (default 40)")


def _storm_config(args: argparse.Namespace, runs: int, parts: tuple[str, ...] | None = None):  # type: ignore[no-untyped-def]
    from bench.storm import PARTS, StormConfig

    return StormConfig(
        size=args.storm_size, slow_clients=args.slow_clients, slow_rate=args.slow_rate, herd_ns=args.herd_ns,
        slowloris=args.slowloris, open_streams=args.open_streams, open_rate=args.open_rate, seconds=args.seconds,
        timeout=args.probe_timeout, loris_cap=args.loris_cap, runs=runs, parts=parts or PARTS,
    )


def _glance_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--glance-auth", dest="glance_auth", choices=("noauth", "tokens"), default="tokens",
                        help="tokens (default): Glance's keystone pipeline with a static-token stand-in for "
                        "authtoken, so admins and members are real; noauth: everyone is admin")
    parser.add_argument("--python", help="Python 3.11 for Glance's venv (default: $GLANCE_PYTHON or python3.11)")


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def _run_herd(args: argparse.Namespace) -> int:
    from bench.herd import HerdConfig, render, run_herd

    config = HerdConfig(
        size=args.size, clients=args.clients, runs=args.runs, timeout=args.timeout,
        workers=args.workers, verify=args.verify, work_dir=args.work_dir, keep=args.keep,
    )
    report = run_herd(config)
    print(render(report), flush=True)
    if args.json is not None:
        data = report.as_dict()
        data["command"] = ["python", "-m", "bench", *sys.argv[1:]]
        args.json.write_text(json.dumps(_json_safe(data), indent=2) + "\n", encoding="utf-8")
    return 1 if any(row.errors for row in report.rows) else 0


def _run_cluster(args: argparse.Namespace) -> int:
    from bench.cluster import ClusterConfig, render, run_cluster
    from bench.compare import command_line

    config = ClusterConfig(
        size=args.size, nodes=args.nodes, clients=args.clients, rate=args.rate, runs=args.runs,
        timeout=args.timeout, workers=args.workers, verify=args.verify, db_url=args.db_url,
        work_dir=args.work_dir, keep=args.keep,
    )
    report = run_cluster(config)
    _publish(args, "cluster", render(report, command_line(sys.argv[1:])), report.as_dict())
    return 1 if any(row.errors for row in report.rows) else 0


def _publish(args: argparse.Namespace, section: str, report_text: str, data: dict[str, Any]) -> None:
    """A scenario's report on stdout, as its own section of ``--output`` (unless ``-``), its runs in ``--json``."""
    from bench.report import repo_relative, with_section

    text = repo_relative(report_text)
    print(text, flush=True)
    if str(args.output) != "-":
        existing = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        args.output.write_text(with_section(existing, section, text), encoding="utf-8")
    if args.json is not None:
        data["command"] = ["python", "-m", "bench", *sys.argv[1:]]
        args.json.write_text(json.dumps(_json_safe(data), indent=2) + "\n", encoding="utf-8")


def _run_central_hits(args: argparse.Namespace) -> int:
    from bench.central_hits import CentralHitsConfig, render, run_central_hits
    from bench.compare import command_line

    config = CentralHitsConfig(processes=args.processes, hits=args.hits, db_url=args.db_url)
    results = run_central_hits(config)
    print(render(results, config, command_line(sys.argv[1:])), flush=True)
    return 1 if any(r.counted != r.hits for r in results) else 0


def _run_all(args: argparse.Namespace) -> int:
    from bench.compare import CompareConfig, command_line, run_compare, write_outputs

    output = None if str(args.output) == "-" else args.output
    config = CompareConfig(
        runs=args.runs, size=args.size, herd_size=args.herd_size, herd_clients=args.herd_clients,
        small_seconds=args.small_seconds, index_entries=args.index_entries, index_prune=args.index_prune,
        targets=args.targets, scenarios=args.scenarios, work_dir=args.work_dir, keep=args.keep,
        python=args.python, output=output, json_path=args.json, wait_load=args.wait_load,
        command=command_line(sys.argv[1:]), storm=_storm_config(args, args.storm_runs),
    )
    results, info = run_compare(config)
    print(write_outputs(config, results, info), flush=True)
    return 1 if any(cell.errors for cell in results.cells.values()) else 0


def _run_storm(args: argparse.Namespace) -> int:
    from bench.compare import CompareConfig, command_line, run_compare, write_outputs
    from bench.storm import render_report

    output = None if str(args.output) == "-" else args.output
    config = CompareConfig(
        runs=args.runs, herd_size=args.herd_size, targets=args.targets, scenarios=("storm",),
        work_dir=args.work_dir, keep=args.keep, python=args.python, output=output, json_path=args.json,
        wait_load=args.wait_load, command=command_line(sys.argv[1:]), storm=_storm_config(args, args.runs, args.parts),
    )
    results, info = run_compare(config)
    print(write_outputs(config, results, info, renderer=render_report), flush=True)
    return 1 if any(cell.errors for cell in results.cells.values()) else 0


def _run_listing(args: argparse.Namespace) -> int:
    from bench.compare import command_line
    from bench.listing import ListingConfig, render, run_listing

    report = run_listing(ListingConfig(entries=args.entries, runs=args.runs, workers=args.workers))
    _publish(args, "listing", render(report, command_line(sys.argv[1:])), report.as_dict())
    return 0


def _run_profile(args: argparse.Namespace) -> int:
    from bench.profile import PROFILES, profile_prune, profile_server

    output = args.output or PROFILES / f"{args.scenario}{'-gil' if args.gil else ''}.txt"
    if args.scenario == "prune":
        path = profile_prune(100_000, 1_000, output)
    elif args.scenario == "listing":
        from bench.listing import profile_listing

        path = profile_listing(100_000, output)
    else:
        path = profile_server(args.scenario, args.seconds, args.rate, output, args.size, gil=args.gil)
    print(path.read_text(encoding="utf-8"), flush=True)
    return 0


def _run_glance_up(args: argparse.Namespace) -> int:
    from bench.glance import glance_up

    return glance_up(
        flavor=args.flavor, auth=args.glance_auth, workers=args.workers,
        image_cache_max_size=args.image_cache_max_size, seconds=args.seconds,
        work_dir=args.work_dir, keep=args.keep, python=args.python,
    )


def _run_edge_check(args: argparse.Namespace) -> int:
    from bench.edge_check import EdgeCheckConfig, run_edge_check

    try:
        return run_edge_check(EdgeCheckConfig(
            size=args.size, herd=args.herd, glance_auth=args.glance_auth, edge_workers=args.workers,
            work_dir=args.work_dir, keep=args.keep, python=args.python,
        ))
    except KeyboardInterrupt:
        print("edge-check: interrupted; both servers stopped", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
