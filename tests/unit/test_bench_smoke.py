"""The herd benchmark, tiny, end to end against a real ``imagecache serve``.

Not a unit test in the strict sense (it starts a server on loopback), but a
fast one (a couple of seconds): it keeps ``python -m bench herd`` working as
the server changes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# bench/ is a top-level package of the repo, not of the installed project:
# make the repo root importable whatever pytest's rootdir and import mode.
_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from bench.__main__ import main  # noqa: E402
from bench.herd import HEADER, HerdConfig, render, run_herd  # noqa: E402
from bench.units import MiB, parse_size  # noqa: E402


def test_herd_runs_end_to_end_and_reads_the_store_once_per_fill(tmp_path: Path) -> None:
    config = HerdConfig(size=1 * MiB, clients=(1, 2), runs=1, timeout=30, work_dir=tmp_path / "herd")
    report = run_herd(config, log=lambda message: None)

    assert [row.clients for row in report.rows] == [1, 2]
    for row in report.rows:
        assert row.errors == 0
        assert row.runs == 1
        assert row.store_reads.median == row.store_reads.max == 1.0  # one store read per herd, whatever N
        assert row.wall.median > 0
    assert report.rows[0].ratio == 1.0
    # every herd (the sha256-checked ones too) got the whole image from one fill
    assert len(report.runs) == 4
    for run in report.runs:
        assert run.ok == run.clients and run.fills_completed == 1 and run.upstream_bytes == MiB
        assert run.followers + run.hits == run.clients - 1

    text = render(report)
    lines = text.splitlines()
    assert "| " + " | ".join(HEADER) + " |" in lines
    assert any(line.startswith("| 1 | 1 |") and "| 1.00 |" in line for line in lines)
    assert any(line.startswith("| 2 | 1 |") and "| 1.00 |" in line for line in lines)
    assert "Python" in text and "CPUs" in text


def test_the_command_line_rejects_bad_sizes_and_counts(capsys) -> None:
    assert parse_size("64M") == 64 * MiB and parse_size("1G") == 1024 * MiB
    for argv in (["herd", "--size", "lots"], ["herd", "--clients", "0,2"], ["herd", "--runs", "0"]):
        try:
            main(argv)
        except SystemExit as exc:
            assert exc.code == 2
        else:  # pragma: no cover
            raise AssertionError(f"{argv} was accepted")
    assert "error" in capsys.readouterr().err


# -- the comparison (python -m bench all): every module imports, one tiny run --------------

import importlib  # noqa: E402

BENCH_MODULES = (
    "bench.central_hits", "bench.compare", "bench.edge_check", "bench.glance", "bench.glance_auth", "bench.herd",
    "bench.http", "bench.index", "bench.limit", "bench.listing", "bench.procs", "bench.profile", "bench.report",
    "bench.results",
    "bench.server", "bench.slow", "bench.stats", "bench.storm", "bench.targets", "bench.units", "bench.wrk",
)


def test_every_bench_module_imports() -> None:
    for name in BENCH_MODULES:
        assert importlib.import_module(name) is not None


def test_a_tiny_listing_runs_and_counts_every_entry(tmp_path: Path) -> None:
    from bench.listing import ListingConfig, render, run_listing

    report = run_listing(ListingConfig(entries=50, runs=1, workers=1), work_dir=tmp_path / "listing",
                         log=lambda message: None)
    assert report.listed == 50 and len(report.seconds) == 1 and report.peak_rss[0] >= report.peak_worker_rss[0] > 0
    assert "GET /v2/cache, request → last byte" in render(report, "python -m bench listing")


def test_a_tiny_comparison_runs_against_imagecache_and_the_limit(tmp_path: Path) -> None:
    from bench.compare import CompareConfig, render, run_compare
    from bench.results import ROWS

    config = CompareConfig(
        runs=1, size=1 * MiB, targets=("imagecache", "limit"), scenarios=("miss", "hit", "index"),
        index_entries=200, index_prune=10, work_dir=tmp_path / "all", output=None,
    )
    results, info = run_compare(config, log=lambda message: None)

    for row in ("hit1", "hit8", "miss"):
        for target in ("imagecache", "limit"):
            cell = results.cells[(row, target)]
            assert cell.errors == [] and len(cell.values) == 1 and cell.values[0] > 0, (row, target, cell)
    for row in ("index_list", "index_prune", "index_reconcile", "index_start"):
        cell = results.cells[(row, "imagecache")]
        assert cell.errors == [] and len(cell.values) == 1, (row, cell)
    assert results.cells[("index_list", "limit")].text == "n/a"
    # The miss's limit is the verification a fill does by default (sha512 alone); md5 ∥ sha512 is the note's.
    note = results.cells[("miss", "limit")].note
    assert note.startswith("sha512 of") and "image_cache_verify = all" in note and "md5 ∥ sha512" in note
    text = render(config, results, info)
    assert "| row | unit | better | imagecache | Glance 33.0.0 | limit |" in text
    assert any(line.startswith("| " + ROWS[0].title) for line in text.splitlines())
    assert "not run" in text  # Glance was left out of this run


def test_the_helpers_read_what_they_are_given() -> None:
    from bench.limit import _file_for
    from bench.profile import summarise_collapsed
    from bench.results import ROW_BY_KEY, Cell, Results, furthest_from_limit, render_cell
    from bench.wrk import lua_script

    assert _file_for("/r", "/v2/images/abc/file") == "/r/abc" and _file_for("/r", "/..") is None
    summary = summarise_collapsed([
        "process 1:\"x\";run (gunicorn/workers/gthread.py:1);record_hit (imagecache/cache/drivers/sqlite.py:9) 3",
        "process 1:\"x\";run (gunicorn/workers/gthread.py:1) 1",
    ])
    assert summary.samples == 4 and summary.areas["sqlite (the index)"] == 3
    assert 'wrk.headers["X-Auth-Token"] = "t"' in lua_script(["/a", "/b"], {"X-Auth-Token": "t"})
    results = Results()
    for target, value in (("imagecache", 1.0), ("limit", 4.0)):
        results.add("hit1", target, value)
    results.add("miss", "imagecache", 1.0)
    results.add("miss", "limit", 2.0)
    assert furthest_from_limit(results)[0].key == "hit1"
    assert render_cell(Cell(text="n/a"), ROW_BY_KEY["index_list"]) == "n/a"


def test_a_tiny_storm_runs_against_imagecache_and_the_limit(tmp_path: Path) -> None:
    """Every storm row, for both targets, with sane numbers (not timings): 4 slow clients, a herd of 2,
    4 slowloris connections, 4 open streams, 8 MiB images, 1 s sampling windows."""
    import json
    import math

    from bench.compare import CompareConfig, run_compare, write_outputs
    from bench.storm import StormConfig, render_report, storm_rows
    from bench.units import KiB

    storm = StormConfig(
        size=8 * MiB, slow_clients=4, slow_rate=1 * MiB, herd_ns=(2,), slowloris=4, open_streams=4, seconds=1.0,
        interval=0.5, timeout=5.0, ramp=0.3, loris_interval=0.5, loris_cap=2.0, open_rate=64 * KiB,
        open_burst=64 * KiB, recover=10.0,
    )
    config = CompareConfig(
        runs=1, herd_size=8 * MiB, targets=("imagecache", "limit"), scenarios=("storm",), storm=storm,
        work_dir=tmp_path / "storm", output=None, json_path=tmp_path / "storm.json", command="python -m bench storm",
    )
    results, info = run_compare(config, log=lambda message: None)

    rows = storm_rows(storm, 8 * MiB)
    assert [row.key for row in rows if row.key.startswith(("sherd", "shit"))] == [
        "sherd2_wall", "sherd2_gbs", "sherd2_reads", "shit2_gbs"]
    for row in rows:
        for target in ("imagecache", "limit"):
            cell = results.cells[(row.key, target)]
            assert cell.errors == [], (row.key, target, cell.errors)
            if (row.key, target) == ("sherd2_reads", "limit"):
                assert cell.text == "1.00 (floor)"
                continue
            assert cell.values, (row.key, target)
            for value in cell.values:
                assert not math.isnan(value) and value >= 0, (row.key, target, cell.values)
    for target in ("imagecache", "limit"):
        def values(key: str, target: str = target) -> list[float]:
            return results.cells[(key, target)].values

        for key in ("storm_ttfb", "storm_health", "loris_versions"):  # one sample every 0.5 s for 1 s
            assert len(values(key)) == 2 and all(v > 0 for v in values(key)), (key, target)
        assert all(0 <= v <= 4 for v in values("storm_streaming"))
        assert all(v > 0 and math.isfinite(v) for key in ("sherd2_wall", "sherd2_gbs", "shit2_gbs")
                   for v in values(key))
        assert all(math.isfinite(v) for key in ("cpu_hit", "cpu_herd", "cpu_miss", "cpu_follow") for v in values(key))
        assert len(values("cpu_follow")) == 1
        assert len(values("loris_closed")) == 1 and 0 <= values("loris_closed")[0] <= 4
        assert len(values("loris_close_s")) == 1 and values("loris_close_s")[0] > 0  # inf: not closed in 2 s
        assert values("open_rss")[0] > 1 and 0 <= values("open_streaming")[0] <= 4
    assert results.cells[("sherd2_reads", "imagecache")].values == [1.0]  # single flight, as in the herd

    text = write_outputs(config, results, info, renderer=render_report)
    for row in rows:
        assert any(line.startswith(f"| {row.title} |") for line in text.splitlines()), row.title
    assert "## Storm" in text and "| imagecache |" in text
    from bench.compare import render

    assert "## Storm" in render(config, results, info)  # the same section in `all`'s report
    data = json.loads((tmp_path / "storm.json").read_text(encoding="utf-8"))
    assert set(data["info"]["extra"]["storm"]) >= {"slow", "slowloris", "open", "miss", "herd2", "hit2"}
    assert "storm_ttfb/imagecache" in data["results"]


def test_timeouts_are_shown_as_such() -> None:
    import math

    from bench.results import Cell, Row, render_cell
    from bench.slow import parse_head, request_bytes

    row = Row("x", "x", "s", False, 2)
    assert render_cell(Cell(values=[1.0, math.inf, 2.0], cap=30), row) == "2.00 (1.00–>30), 1 of 3 timed out"
    assert render_cell(Cell(values=[math.inf, math.inf], cap=30), row) == ">30, all 2 timed out"
    assert render_cell(Cell(values=[math.inf], cap=40, cap_text="not closed within 40 s"), row) == \
        "not closed within 40 s"
    assert Cell(values=[math.inf, 1.0], cap=30).as_dict()["values"] == [">30", 1.0]
    assert render_cell(Cell(values=[1.0, math.inf]), row) == "1.00"  # no cap: inf is not a timeout, dropped
    assert parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 12") == (200, 12)
    assert request_bytes("h", 1, "/p", {"X-A": "b"}).startswith(b"GET /p HTTP/1.1\r\nHost: h:1\r\nX-A: b\r\n")


def test_the_storm_command_line_takes_its_options(capsys) -> None:
    from bench.__main__ import _storm_config, build_parser

    args = build_parser().parse_args(["storm", "--slow-rate", "4MiB/s", "--herd-ns", "8,32", "--seconds", "3",
                                      "--targets", "imagecache,limit", "--storm-size", "16M"])
    storm = _storm_config(args, args.runs, args.parts)
    assert (storm.slow_rate, storm.herd_ns, storm.seconds, storm.size) == (4 * MiB, (8, 32), 3.0, 16 * MiB)
    assert (storm.slow_clients, storm.slowloris, storm.open_streams, storm.runs) == (200, 256, 500, 1)
    assert "storm" in build_parser().parse_args(["all"]).scenarios
    for argv in (["storm", "--herd-ns", "0"], ["storm", "--slow-clients", "0"], ["storm", "--parts", "nope"]):
        try:
            build_parser().parse_args(argv)
        except SystemExit as exc:
            assert exc.code == 2
        else:  # pragma: no cover
            raise AssertionError(f"{argv} was accepted")
    assert "error" in capsys.readouterr().err


def test_committed_reports_name_no_machine_path() -> None:
    from bench.report import REPO, repo_relative

    line = f"--data-dir {REPO}/bench/.work/x --tokens-file {REPO / 'tokens.toml'} at {REPO}"
    assert repo_relative(line) == "--data-dir ./bench/.work/x --tokens-file ./tokens.toml at ."
    for report in [REPO / "bench" / "RESULTS.md", *(REPO / "bench" / "profiles").glob("*")]:
        assert str(REPO) not in report.read_text(encoding="utf-8"), report.name


@pytest.mark.postgres
def test_a_tiny_central_hits_run_counts_every_hit_in_both_modes() -> None:
    from bench.central_hits import MODES, CentralHitsConfig, render, run_central_hits
    from tests.unit.central.pg import require_postgres

    config = CentralHitsConfig(processes=2, hits=20, db_url=require_postgres())
    results = run_central_hits(config)
    assert [(r.interval, r.hits, r.counted) for r in results] == [(interval, 40, 40) for _, interval in MODES]
    assert "hits/s" in render(results, config, "python -m bench central-hits")
