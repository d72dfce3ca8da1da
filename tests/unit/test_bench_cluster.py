"""``python -m bench cluster``, tiny, end to end: real nodes, a real relay, the test PostgreSQL.

Like test_bench_smoke, it starts servers on loopback; it keeps the cluster
benchmark working as peer fill changes, and checks the figures it reports
are the ones a cluster really produced (one origin read with peer fill,
one per node without).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from bench.cluster import HEADER, ClusterConfig, render, run_cluster  # noqa: E402
from bench.report import kept_sections, with_section  # noqa: E402
from bench.units import MiB  # noqa: E402
from tests.unit.central.pg import require_postgres  # noqa: E402


@pytest.mark.postgres
def test_a_tiny_cluster_reads_the_origin_once_with_peer_fill_and_once_per_node_without(tmp_path: Path) -> None:
    config = ClusterConfig(size=4 * MiB, nodes=2, clients=2, rate=64 * MiB, runs=1, timeout=60,
                           workers=1, db_url=require_postgres(), work_dir=tmp_path / "cluster")
    report = run_cluster(config, log=lambda message: None)

    rows = {row.setup.name: row for row in report.rows}
    assert list(rows) == ["one node", "one node, every client", "peer fill off", "peer fill on"]
    assert all(row.errors == 0 for row in rows.values()), report.herds
    assert rows["one node"].origin_reads.max == 1.0 and rows["one node"].peer_reads.max == 0.0
    assert rows["peer fill off"].origin_reads.median == 2.0 and rows["peer fill off"].peer_reads.max == 0.0
    assert rows["peer fill on"].origin_reads.max == 1.0 and rows["peer fill on"].peer_reads.min == 1.0
    # the relay's own count agrees with the nodes' metrics (headers and metadata are a few KiB)
    for row in rows.values():
        assert row.origin_reads.median <= row.link_reads.median < row.origin_reads.median + 0.05
    assert rows["one node"].ratio_to_one_node == 1.0
    assert rows["one node, every client"].ratio_to_same_clients == 1.0
    # the verification herd of every setup hashed every client's bytes
    assert sum(1 for herd in report.herds if herd.index < 0) == 4

    text = render(report, "python -m bench cluster --size 4M")
    assert "| " + " | ".join(HEADER) + " |" in text.splitlines()
    assert "Produced by `python -m bench cluster --size 4M`." in text


def test_a_section_is_replaced_in_place_and_carried_over() -> None:
    document = "# results\n\ntable\n"
    once = with_section(document, "cluster", "first")
    assert once.startswith("# results\n\ntable\n\n<!-- section:cluster -->\nfirst\n")
    twice = with_section(once + "\ntrailer\n", "cluster", "second\nlines")
    assert "first" not in twice and twice.endswith("<!-- /section:cluster -->\n\ntrailer\n")
    assert kept_sections(twice) == [("cluster", "second\nlines")]
    regenerated = "# new results\n"
    for name, body in kept_sections(twice):
        regenerated = with_section(regenerated, name, body)
    assert kept_sections(regenerated) == [("cluster", "second\nlines")]
    assert kept_sections("no sections") == []
