"""What every scenario's report shares: the machine's facts and markdown tables."""

from __future__ import annotations

import datetime
import os
import platform
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def repo_relative(text: str) -> str:
    """``text`` with this checkout's absolute path written as ``.``.

    Committed reports (RESULTS.md, profiles) must not name the machine they
    were made on; paths inside the repository stay meaningful relative to it.
    """
    return text.replace(str(REPO) + os.sep, "./").replace(str(REPO), ".")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / (1 << 20), 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def imagecache_under_test() -> str:
    """Which imagecache the servers run: ``<commit>`` of this repo (``+ uncommitted
    changes`` when src/ differs from it), or the directory it is imported from."""
    try:
        out = subprocess.run(
            [sys.executable, "-c", "import imagecache; print(imagecache.__file__)"],
            capture_output=True, text=True, timeout=30, check=False,
        )
        package = Path(out.stdout.strip()).resolve().parent
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not out.stdout.strip():
        return "not importable"
    if package != REPO / "src" / "imagecache":
        return f"from {package}"
    commit = _git("rev-parse", "--short", "HEAD") or "unknown commit"
    dirty = _git("status", "--porcelain", "--", "src")
    return f"{commit} + uncommitted changes in src/" if dirty else commit


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages: a busy machine makes every number slower."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_facts() -> dict[str, Any]:
    """CPU count and model, memory, Python, OS, date (UTC), the imagecache under test."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "cpus_usable": usable,
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "os": f"{platform.system()} {platform.release()}",
        "imagecache": imagecache_under_test(),
        "loadavg_at_start": load_average(),
    }


def facts_line(facts: dict[str, Any]) -> str:
    cpus = f"{facts['cpus']} CPUs" + (
        f" ({facts['cpus_usable']} usable)" if facts.get("cpus_usable") not in (None, facts["cpus"]) else ""
    )
    parts = [
        facts["date"], f"{cpus}, {facts['cpu_model']}",
        f"{facts['memory_gib']} GiB RAM" if facts.get("memory_gib") else None,
        f"Python {facts['python']}", facts["os"],
        f"load {' '.join(f'{x:.2f}' for x in facts['loadavg_at_start'])} at start"
        if facts.get("loadavg_at_start") else None,
        f"imagecache {facts['imagecache']}" if facts.get("imagecache") else None,
    ]
    return " · ".join(part for part in parts if part)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None) -> str:
    """A GitHub markdown table; ``align`` is one letter per column (l, r, c)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(rule[a] for a in align) + " |",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    return "\n".join(lines)


# -- sections other scenarios own ---------------------------------------------------------
def _markers(name: str) -> tuple[str, str]:
    return f"<!-- section:{name} -->", f"<!-- /section:{name} -->"


def with_section(document: str, name: str, body: str) -> str:
    """``document`` with its section ``name`` replaced by ``body`` (appended when it has none) (pure).

    RESULTS.md is rewritten whole by ``all``; a scenario run on its own
    (``cluster``) keeps its table there between markers, and ``all`` carries
    such sections over (:func:`kept_sections`).
    """
    start, end = _markers(name)
    block = f"{start}\n{body.strip()}\n{end}"
    if start in document and end in document[document.index(start):]:
        before, rest = document.split(start, 1)
        _, after = rest.split(end, 1)
        return before + block + after
    return document.rstrip("\n") + "\n\n" + block + "\n"


def kept_sections(document: str) -> list[tuple[str, str]]:
    """Every ``(name, body)`` section of ``document``, in order (pure)."""
    found: list[tuple[str, str]] = []
    for match in re.finditer(r"<!-- section:([\w-]+) -->\n(.*?)\n<!-- /section:\1 -->", document, re.S):
        found.append((match.group(1), match.group(2)))
    return found
