"""Byte sizes as people write them: ``64M``, ``1G``, ``512K``, ``1048576`` (pure)."""

from __future__ import annotations

import re

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30

_UNITS = {"": 1, "B": 1, "K": KiB, "M": MiB, "G": GiB, "T": 1 << 40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*\Z", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``"256M"`` -> 268435456 (binary units; ``256MiB`` and ``256MB`` mean the same)."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"not a size: {text!r} (try 64M, 1G or a number of bytes)")
    number, unit = match.groups()
    value = float(number) * _UNITS[unit.upper()]
    if value != int(value) or value <= 0:
        raise ValueError(f"not a positive whole number of bytes: {text!r}")
    return int(value)


def format_size(n: int) -> str:
    """268435456 -> ``"256 MiB"``; exact binary units when they fit, else bytes."""
    for unit, factor in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} B"


def parse_counts(text: str) -> list[int]:
    """``"1,8,32"`` -> [1, 8, 32]: positive integers, order kept, duplicates dropped."""
    counts: list[int] = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        value = int(part)
        if value < 1:
            raise ValueError(f"client counts must be at least 1, not {value}")
        if value not in counts:
            counts.append(value)
    if not counts:
        raise ValueError(f"no client counts in {text!r}")
    return counts
