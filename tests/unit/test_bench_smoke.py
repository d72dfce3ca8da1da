"""The herd benchmark, tiny, end to end against a real ``imagecache serve``.

Not a unit test in the strict sense (it starts a server on loopback), but a
fast one (a couple of seconds): it keeps ``python -m bench herd`` working as
the server changes.
"""

from __future__ import annotations

import sys
from pathlib import Path

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
    "bench.compare", "bench.edge_check", "bench.glance", "bench.glance_auth", "bench.herd", "bench.http",
    "bench.index", "bench.limit", "bench.procs", "bench.profile", "bench.report", "bench.results",
    "bench.server", "bench.stats", "bench.targets", "bench.units", "bench.wrk",
)


def test_every_bench_module_imports() -> None:
    for name in BENCH_MODULES:
        assert importlib.import_module(name) is not None


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
    text = render(config, results, info)
    assert "| row | unit | better | imagecache | Glance 33.0.0 | limit |" in text
    assert any(line.startswith("| " + ROWS[0].title) for line in text.splitlines())
    assert "not run" in text  # Glance was left out of this run


def test_the_helpers_read_what_they_are_given() -> None:
    from bench.limit import _file_for
    from bench.profile import summarise_collapsed
    from bench.results import Cell, Results, furthest_from_limit, render_cell, ROW_BY_KEY
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


def test_committed_reports_name_no_machine_path() -> None:
    from bench.report import REPO, repo_relative

    line = f"--data-dir {REPO}/bench/.work/x --tokens-file {REPO / 'tokens.toml'} at {REPO}"
    assert repo_relative(line) == "--data-dir ./bench/.work/x --tokens-file ./tokens.toml at ."
    for report in [REPO / "bench" / "RESULTS.md", *(REPO / "bench" / "profiles").glob("*")]:
        assert str(REPO) not in report.read_text(encoding="utf-8"), report.name
