"""The Grafana dashboard as tests read it: its panels, their queries, the metrics they name.

``deploy/grafana/imagecache.json`` is what operators import; the unit test
checks its shape and the metric names against what a node exports, the
functional test runs every query on a real Prometheus.  Both read it here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tests.support.source import ROOT

DASHBOARD = ROOT / "deploy" / "grafana" / "imagecache.json"

#: Variables Grafana itself fills in (not declared by the dashboard).
BUILTINS = frozenset({"__rate_interval", "__range", "__interval", "__interval_ms", "__range_s", "__range_ms"})

#: Metrics a panel may name that a node need not export (none: every panel's series must exist).
OPTIONAL_METRICS: frozenset[str] = frozenset()

#: Series Prometheus makes itself for every scrape target.
SCRAPE_SERIES = frozenset({"up"})

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")
_METRIC = re.compile(r"\b(imagecache_[a-z0-9_]+|up)\s*\{")


@dataclass(frozen=True)
class Query:
    """One target of one panel."""

    panel: str
    ref_id: str
    expr: str
    instant: bool

    def __str__(self) -> str:
        return f"{self.panel!r} {self.ref_id}: {self.expr}"


def load() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return document


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that shows data (rows left out, a collapsed row's panels included)."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def queries(dashboard: Mapping[str, Any]) -> list[Query]:
    return [
        Query(panel["title"], target["refId"], target["expr"], bool(target.get("instant")))
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]


def variables(expr: str) -> set[str]:
    """The dashboard variables ``expr`` uses (``$node``, ``${node}``, ``[[node]]``)."""
    return {next(name for name in match.groups() if name) for match in _VARIABLE.finditer(expr)}


def concrete(expr: str, values: Mapping[str, str]) -> str:
    """``expr`` with every variable replaced by its value in ``values`` (KeyError for one not there)."""
    return _VARIABLE.sub(lambda match: values[next(name for name in match.groups() if name)], expr)


def metric_names(expr: str) -> set[str]:
    """The series ``expr`` selects (every selector here carries a label matcher)."""
    return set(_METRIC.findall(expr))
