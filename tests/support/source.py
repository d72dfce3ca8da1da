"""The package's own source, read with ``ast``: its modules and what each imports.

Read from the files rather than from ``sys.modules``, so imports that run
late (inside functions) or only for the type checker are seen as well, and
marked as such.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PACKAGE = SRC / "imagecache"


@dataclass(frozen=True)
class Import:
    """One imported name, absolute: ``module`` for ``import module``, ``module.name`` for ``from module import x``."""

    target: str
    line: int
    late: bool  # inside a function body: runs when called, not when imported
    typing_only: bool  # under ``if TYPE_CHECKING:``: never runs


def module_name(path: Path) -> str:
    """``src/imagecache/cache/core.py`` -> ``imagecache.cache.core`` (a package's ``__init__`` is the package)."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    """Every module of the package by name."""
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _ids_under(nodes: list[ast.stmt] | ast.AST) -> set[int]:
    roots = nodes if isinstance(nodes, list) else [nodes]
    return {id(node) for root in roots for node in ast.walk(root)}


def imports(path: Path) -> Iterator[Import]:
    """Every import of the module at ``path``, relative ones made absolute."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    late: set[int] = set()
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            late |= _ids_under(node)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            typing_only |= _ids_under(node.body)
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            targets = [f"{origin}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            yield Import(target, node.lineno, id(node) in late, id(node) in typing_only)
