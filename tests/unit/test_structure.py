"""The shape of the package, read from its source: layers, cycles, module sizes.

``docs/design.md`` draws the same picture; this test is what keeps it true.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable, Mapping

import pytest

from tests.support.source import ROOT, imports, modules

#: Longest module, in lines: past this a module holds more than one job.
MAX_MODULE_LINES = 450

#: Which parts of the package each part may import (besides itself), top of the stack first.
#: ``jobs`` and ``wsgi`` sit side by side: the prefetcher reads images through the
#: middleware's image source, and the cache API queues prefetches.
ALLOWED: Mapping[str, frozenset[str]] = {
    "cli": frozenset({"server", "serving", "jobs", "wsgi", "peers", "origin", "images", "upstream", "client", "http",
                      "cache", "db", "metrics", "config", "root"}),
    "server": frozenset({"serving", "jobs", "wsgi", "peers", "origin", "images", "upstream", "openapi", "http", "cache",
                         "db", "metrics", "config"}),
    "serving": frozenset({"http", "config"}),
    "jobs": frozenset({"wsgi", "origin", "client", "http", "cache", "metrics", "config"}),
    "wsgi": frozenset({"jobs", "peers", "http", "cache", "metrics", "config"}),
    # Peer fill: the endpoint other nodes read, and the sources a fill reads from (docs/peer-fill.md).
    "peers": frozenset({"http", "cache", "metrics", "config"}),
    "origin": frozenset({"images", "upstream", "http", "config"}),
    "images": frozenset({"http", "cache", "config"}),
    "upstream": frozenset({"http", "metrics", "config"}),
    # The API document (openapi.yaml) and the app serving it.
    "openapi": frozenset({"http"}),
    "client": frozenset({"http", "root"}),
    "http": frozenset(),
    "cache": frozenset({"db", "metrics", "config"}),
    "db": frozenset({"config"}),
    "metrics": frozenset({"config"}),
    "config": frozenset(),
    # The root package names the public API and imports it only when asked (PEP 562).
    "root": frozenset({"cache", "config", "client"}),
}

MODULES = modules()


def part(module: str) -> str:
    """The part of the package a module belongs to: ``imagecache.cache.core`` -> ``cache``."""
    name = module.split(".")[1] if "." in module else "root"
    return {"cli_db": "cli", "cli_manage": "cli"}.get(name, name)


def resolve(target: str) -> str | None:
    """The project module an import names (``imagecache.cache.ImageCache`` -> ``imagecache.cache``)."""
    parts = target.split(".")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        if name in MODULES:
            return name
    return None


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports when it runs (typing-only imports left out)."""
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for imported in imports(path):
            target = resolve(imported.target)
            if target is not None and target != name and not imported.typing_only:
                graph[name].add(target)
    return graph


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph.get(node, ()):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_finds_cycles() -> None:
    """The check itself: a cycle through a late import is a cycle; a chain is not."""
    assert cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]
    assert cycles({"a": ["b"], "b": ["c"], "c": []}) == []


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles (function-level imports count):\n" + "\n".join(" <-> ".join(c) for c in found)


def test_every_part_imports_only_the_parts_below_it() -> None:
    assert set(ALLOWED) >= {part(name) for name in MODULES}, "a new part of the package: place it in ALLOWED"
    wrong = []
    for name, path in MODULES.items():
        for imported in imports(path):
            target = resolve(imported.target)
            if target is None or imported.typing_only or part(target) == part(name):
                continue
            if part(target) not in ALLOWED[part(name)]:
                wrong.append(f"{path.relative_to(ROOT)}:{imported.line}: {part(name)} imports {target}")
    assert not wrong, "imports against the layering of docs/design.md:\n" + "\n".join(wrong)


def test_modules_stay_small() -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for path in MODULES.values()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


@pytest.mark.parametrize("module", ["imagecache.cli", "imagecache.config", "imagecache", "imagecache.cache.layout"])
def test_light_imports_stay_light(module: str) -> None:
    """The command line's ``--help`` and a cron job's start do not pay for the server's libraries."""
    code = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                           text=True).stdout))
    heavy = sorted(name for name in ("prometheus_client", "sqlalchemy", "gunicorn", "webob") if name in loaded)
    assert not heavy, f"import {module} loads {heavy}"


def test_the_design_document_shows_this_table() -> None:
    """docs/design.md's table of allowed imports is ALLOWED, so the picture cannot drift from the rule."""
    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    shown: dict[str, frozenset[str]] = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`") and ("`" in cells[1] or cells[1] == "nothing of ours"):
            shown[_part_named(cells[0])] = frozenset(_part_named(name.strip()) for name in cells[1].split(",")
                                                     if name.strip() != "nothing of ours")
    assert shown == dict(ALLOWED)


def _part_named(cell: str) -> str:
    """```cache/``` -> cache, ```server.py``` -> server, ```imagecache``` (root) -> root."""
    return "root" if cell.endswith("(root)") else cell.strip("`").removesuffix("/").removesuffix(".py")
