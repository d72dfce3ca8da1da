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
