"""Summaries of repeated measurements (pure: no I/O, no clocks)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    """Median, min and max of some runs' values."""

    median: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Summary:
        data = sorted(float(v) for v in values)
        if not data:
            raise ValueError("no values to summarise")
        return cls(median=statistics.median(data), min=data[0], max=data[-1], n=len(data))

    def as_dict(self) -> dict[str, float]:
        return {"median": self.median, "min": self.min, "max": self.max, "n": self.n}


def median(values: Iterable[float]) -> float:
    return Summary.of(values).median


def ratio(value: float, base: float) -> float:
    """``value / base``; NaN when there is no base to compare with."""
    return value / base if base else float("nan")
