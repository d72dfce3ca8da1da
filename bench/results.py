"""The comparison's table: rows, cells (per-run values or a stated reason), ratios, markdown (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from bench.report import markdown_table
from bench.stats import Summary

TARGETS = ("imagecache", "glance", "limit")
TARGET_TITLES = {"imagecache": "imagecache", "glance": "Glance 33.0.0", "limit": "limit"}


@dataclass(frozen=True)
class Row:
    key: str
    title: str
    unit: str
    higher_is_better: bool
    digits: int = 2


ROWS: tuple[Row, ...] = (
    Row("hit1", "1. hit, 1 client (cached 1 GiB image)", "GB/s", True),
    Row("hit8", "1. hit, 8 concurrent clients, aggregate", "GB/s", True),
    Row("miss", "2. miss: first download of 1 GiB, store → cache → client, verified", "GB/s", True),
    Row("herd8_wall", "3. herd N=8: wall ÷ one first download's wall", "×", False),
    Row("herd8_reads", "3. herd N=8: bytes read from the store ÷ image size", "×", False),
    Row("herd32_wall", "3. herd N=32: wall ÷ one first download's wall", "×", False),
    Row("herd32_reads", "3. herd N=32: bytes read from the store ÷ image size", "×", False),
    Row("small_rps", "4. small: cached 4 KiB images, 32 connections (wrk)", "req/s", True, 0),
    Row("small_p50", "4. small: p50 latency", "ms", False),
    Row("small_p99", "4. small: p99 latency", "ms", False),
    Row("index_list", "5. index, 100,000 entries: GET /v2/cache", "s", False, 3),
    Row("index_prune", "5. index: prune() evicting 1,000", "s", False, 3),
    Row("index_reconcile", "5. index: start-up reconcile (adopt 100,000 files)", "s", False, 3),
    Row("index_start", "5. index: server launch to first answer, 100,000 entries", "s", False, 2),
    Row("memory", "6. memory: peak RSS, 10 clients downloading a cached 1 GiB image", "MiB", False, 0),
)
ROW_BY_KEY = {row.key: row for row in ROWS}


@dataclass
class Cell:
    """One target's figure for one row: per-run values, or a text with the reason there is none.

    With ``cap`` set, a value of ``inf`` is a timeout (a request not answered
    within ``cap`` seconds): it counts in the median, min and max, shown as
    ``>cap``; ``cap_text`` replaces the figure when every value timed out.
    """

    values: list[float] = field(default_factory=list)
    text: str | None = None  # shown instead of the summary ("n/a", "1 (floor)")
    reason: str | None = None  # why there is no measured figure (a footnote)
    note: str | None = None  # how it was measured, when it differs from the row's method
    errors: list[str] = field(default_factory=list)
    cap: float | None = None  # the timeout of the values (inf = timed out); None: no timeouts here
    cap_text: str | None = None  # shown when every value timed out (default ">cap, all n timed out")

    @property
    def summary(self) -> Summary | None:
        if self.cap is not None:
            kept = [v for v in self.values if not math.isnan(v)]
        else:
            kept = [v for v in self.values if math.isfinite(v)]
        return Summary.of(kept) if kept else None

    @property
    def timeouts(self) -> int:
        return sum(1 for v in self.values if v == math.inf) if self.cap is not None else 0

    @property
    def median(self) -> float:
        summary = self.summary
        return summary.median if summary else math.nan

    def as_dict(self) -> dict[str, Any]:
        summary = self.summary

        def safe(value: float) -> float | str | None:
            if value == math.inf and self.cap is not None:
                return f">{self.cap:g}"
            return value if math.isfinite(value) else None

        return {
            "values": [safe(v) for v in self.values], "text": self.text, "reason": self.reason, "note": self.note,
            "errors": self.errors, "cap": self.cap, "timeouts": self.timeouts,
            "summary": {k: safe(v) if k != "n" else v for k, v in summary.as_dict().items()} if summary else None,
        }


class Results:
    """Cells by (row, target), filled as scenarios run; the rows are :data:`ROWS` plus any a scenario adds
    (:meth:`add_rows`: the storm's, whose titles name its settings)."""

    def __init__(self, rows: tuple[Row, ...] = ROWS) -> None:
        self.cells: dict[tuple[str, str], Cell] = {}
        self.rows: list[Row] = list(rows)
        self.row_by_key: dict[str, Row] = {row.key: row for row in self.rows}

    def add_rows(self, rows: tuple[Row, ...] | list[Row]) -> None:
        """Rows after the others, in this order (a key already known keeps its first row)."""
        for row in rows:
            if row.key not in self.row_by_key:
                self.rows.append(row)
                self.row_by_key[row.key] = row

    def cell(self, row: str, target: str) -> Cell:
        if row not in self.row_by_key:
            raise KeyError(f"unknown row {row!r}")
        return self.cells.setdefault((row, target), Cell())

    def add(self, row: str, target: str, value: float) -> None:
        self.cell(row, target).values.append(float(value))

    def na(self, row: str, target: str, reason: str, text: str = "n/a") -> None:
        cell = self.cell(row, target)
        cell.text, cell.reason = text, reason

    def error(self, row: str, target: str, message: str) -> None:
        self.cell(row, target).errors.append(message)

    def as_dict(self) -> dict[str, Any]:
        return {f"{row}/{target}": cell.as_dict() for (row, target), cell in self.cells.items()}


def fmt(value: float, digits: int, cap: float | None = None) -> str:
    if value == math.inf and cap is not None:
        return f">{cap:g}"
    if not math.isfinite(value):
        return "–"
    return f"{value:,.{digits}f}"


def render_cell(cell: Cell | None, row: Row) -> str:
    if cell is None:
        return "not run"
    summary = cell.summary
    if cell.text is not None and summary is None:
        return cell.text
    if summary is None:
        return "error" if cell.errors else "not run"
    timeouts = cell.timeouts
    if timeouts and timeouts == summary.n:
        text = cell.cap_text or f">{cell.cap:g}, all {summary.n} timed out"
    else:
        text = fmt(summary.median, row.digits, cell.cap)
        if summary.n > 1:
            text += f" ({fmt(summary.min, row.digits, cell.cap)}–{fmt(summary.max, row.digits, cell.cap)})"
        if timeouts:
            text += f", {timeouts} of {summary.n} timed out"
    if cell.text is not None:
        text = cell.text
    if cell.errors:
        text += f" ⚠{len(cell.errors)}"
    return text


def ratio_text(mine: Cell | None, other: Cell | None) -> str:
    if mine is None or other is None:
        return "–"
    a, b = mine.median, other.median
    if not (math.isfinite(a) and math.isfinite(b)) or b == 0:
        return "–"
    return f"{a / b:.2f}"


def share_of_limit(row: Row, mine: Cell | None, limit: Cell | None) -> float:
    """How close imagecache is to the limit on this row, 1.0 = at it (higher is closer); NaN if unknown."""
    if mine is None or limit is None or (limit.text is not None and limit.summary is None):
        return math.nan
    a, b = mine.median, limit.median
    if not (math.isfinite(a) and math.isfinite(b)) or a <= 0 or b <= 0:
        return math.nan
    return a / b if row.higher_is_better else b / a


#: Rows whose limit is a filesystem floor rather than the raw socket or the hash functions.
FLOOR_ROWS = frozenset({"index_list", "index_prune", "index_reconcile", "index_start"})
#: Rows whose limit is a scaling figure (the raw socket's own N ÷ 1), not a bound for a cache.
SCALING_ROWS = frozenset({"herd8_wall", "herd32_wall"})
#: Rows that measure a footprint, not speed.
FOOTPRINT_ROWS = frozenset({"memory"})


def furthest_from_limit(
    results: Results, skip: frozenset[str] = FLOOR_ROWS | SCALING_ROWS | FOOTPRINT_ROWS
) -> tuple[Row, float] | None:
    """The row where imagecache is slowest relative to its limit (smallest share of it), among the
    time and throughput rows whose limit is the raw socket or the hash functions."""
    best: tuple[Row, float] | None = None
    for row in ROWS:
        if row.key in skip:
            continue
        share = share_of_limit(row, results.cells.get((row.key, "imagecache")), results.cells.get((row.key, "limit")))
        if math.isfinite(share) and (best is None or share < best[1]):
            best = (row, share)
    return best


def table(results: Results, rows: tuple[Row, ...] | list[Row] | None = None) -> str:
    header = ("row", "unit", "better", *(TARGET_TITLES[t] for t in TARGETS),
              "imagecache ÷ Glance", "imagecache ÷ limit")
    lines = []
    for row in results.rows if rows is None else rows:
        cells = {t: results.cells.get((row.key, t)) for t in TARGETS}
        if not any(cells.values()):
            continue
        lines.append((
            row.title, row.unit, "higher" if row.higher_is_better else "lower",
            *(render_cell(cells[t], row) for t in TARGETS),
            ratio_text(cells["imagecache"], cells["glance"]),
            ratio_text(cells["imagecache"], cells["limit"]),
        ))
    return markdown_table(header, lines, align="llc" + "r" * (len(header) - 3))


def footnotes(results: Results) -> list[str]:
    """Each cell's reason and note, as ``row / target: text`` lines."""
    out: list[str] = []
    for row in results.rows:
        for target in TARGETS:
            cell = results.cells.get((row.key, target))
            if cell is None:
                continue
            for text in (cell.reason, cell.note):
                if text:
                    out.append(f"- **{row.title} / {TARGET_TITLES[target]}**: {text}")
            for error in cell.errors[:3]:
                out.append(f"- **{row.title} / {TARGET_TITLES[target]}**: ERROR {error}")
    return out


def runs_listing(results: Results) -> list[str]:
    """Every run's value, one line per cell (for the record)."""
    out: list[str] = []
    for row in results.rows:
        for target in TARGETS:
            cell = results.cells.get((row.key, target))
            if cell is None or not cell.values:
                continue
            values = ", ".join(fmt(v, max(row.digits, 2) if row.digits else 0, cell.cap) for v in cell.values)
            out.append(f"- {row.key} / {target}: {values}")
    return out
