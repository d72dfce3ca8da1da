"""The Grafana dashboard's shape: importable, every panel a query, every query on a metric a node exports.

Whether each query parses and returns data is the functional test's job
(tests/functional/test_dashboard.py, on a real Prometheus); this one needs
no server and names the panel at fault.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from imagecache.metrics import DiskFacts, Metrics, PinFacts
from imagecache.wsgi.request_metrics import RequestCounters
from tests.support.dashboard import (
    BUILTINS,
    OPTIONAL_METRICS,
    SCRAPE_SERIES,
    concrete,
    load,
    metric_names,
    panels,
    queries,
    variables,
)

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return load()


def exported() -> set[str]:
    """The sample names a node's /metrics carries (counters as ``*_total``), gauges included."""
    metrics = Metrics()
    RequestCounters(metrics.registry).observe("GET", "200 OK", 0.001)  # a node that answered a request
    _, body = metrics.render(0, 1, PinFacts(cached=0, uncached=0, bytes=0, over_limit=False),
                               DiskFacts(free=1, min_free=1, fills=0))
    return {sample.name for family in text_string_to_metric_families(body.decode()) for sample in family.samples}


def test_it_imports_into_grafana_10_and_11_with_a_prometheus_input(dashboard: dict[str, Any]) -> None:
    assert dashboard["schemaVersion"] >= 39  # Grafana 10.4 and 11
    assert dashboard["uid"] and dashboard["title"]
    assert dashboard["id"] is None  # an export: Grafana assigns the id
    inputs = {entry["name"]: entry for entry in dashboard["__inputs"]}
    assert inputs["DS_PROMETHEUS"]["type"] == "datasource"
    assert inputs["DS_PROMETHEUS"]["pluginId"] == "prometheus"
    templating = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    source = templating["datasource"]
    assert source["type"] == "datasource" and source["query"] == "prometheus"
    assert source["current"]["value"] == "${DS_PROMETHEUS}"  # the import's choice becomes the default
    node = templating["node"]
    assert node["type"] == "query" and node["includeAll"] and node["multi"]
    assert node["query"]["query"].endswith(", instance)")
    assert "$job" in node["query"]["query"]


def test_every_panel_has_queries_on_the_templated_datasource(dashboard: dict[str, Any]) -> None:
    shown = list(panels(dashboard))
    assert len(shown) >= 15
    ids = [panel["id"] for panel in dashboard["panels"]] + [panel["id"] for panel in shown
                                                            if panel not in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in shown:
        title = panel["title"]
        assert panel["datasource"] == DATASOURCE, title
        assert panel.get("description"), f"{title}: says what it answers"
        targets = panel.get("targets", [])
        assert targets, f"{title}: no query"
        ref_ids = [target["refId"] for target in targets]
        assert len(ref_ids) == len(set(ref_ids)), title
        for target in targets:
            assert target["expr"].strip(), title
            assert target["datasource"] == DATASOURCE, title


def test_every_panel_has_a_unit_and_stats_have_thresholds(dashboard: dict[str, Any]) -> None:
    for panel in panels(dashboard):
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults.get("unit"), panel["title"]
        steps = defaults["thresholds"]["steps"]
        assert steps[0]["value"] is None, panel["title"]  # the base step
        values = [step["value"] for step in steps[1:]]
        assert values == sorted(values), panel["title"]
        if panel["type"] == "stat":
            assert defaults["color"]["mode"] == "thresholds", panel["title"]


def test_panels_fit_the_grid_without_overlapping(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_queries_use_only_declared_variables_and_every_panel_follows_the_node_choice(
    dashboard: dict[str, Any],
) -> None:
    declared = {variable["name"] for variable in dashboard["templating"]["list"]}
    for query in queries(dashboard):
        assert variables(query.expr) <= declared | BUILTINS, query
        assert 'instance=~"$node"' in query.expr, query
        assert 'job=~"$job"' in query.expr, query


def test_every_metric_a_query_names_is_one_a_node_exports(dashboard: dict[str, Any]) -> None:
    known = exported() | SCRAPE_SERIES | OPTIONAL_METRICS
    named: set[str] = set()
    for query in queries(dashboard):
        names = metric_names(query.expr)
        assert names, f"no metric found in {query}"
        assert names <= known, f"{sorted(names - known)} in {query}"
        named |= names
    # Every reason-labelled family is on the dashboard: they answer "why the origin?".
    for family in ("imagecache_origin_bytes_total", "imagecache_origin_requests_total", "imagecache_not_stored_total",
                   "imagecache_fills_in_progress", "imagecache_cache_min_free_bytes", "imagecache_pinned_bytes"):
        assert family in named, family


_names = st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True)


@given(st.dictionaries(_names, st.from_regex(r"[a-z0-9.:]{1,10}", fullmatch=True), min_size=1))
def test_concrete_replaces_every_spelling_of_a_variable(values: dict[str, str]) -> None:
    for name, value in values.items():
        for spelling in (f"${name}", f"${{{name}}}", f"[[{name}]]", f"${{{name}:regex}}"):
            expr = f'up{{instance=~"{spelling}"}}[{spelling}]'
            assert variables(expr) == {name}
            assert concrete(expr, values) == f'up{{instance=~"{value}"}}[{value}]'
