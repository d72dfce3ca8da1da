"""Every third-party module the package imports is a declared dependency.

An undeclared import works in the development venv (the test extras bring it
in) and breaks only after ``pip install imagecache``: jsonschema did exactly
that.  This reads the source, not the venv, so it also sees imports that run
late (inside functions).  Imports inside functions may come from an optional
extra instead (keystoneauth1 for ``keystone``), never from ``test``.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

from tests.support.source import PACKAGE, ROOT, imports


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    assert match is not None, requirement
    return canonical(match.group())


def declared() -> tuple[set[str], set[str]]:
    """(runtime dependencies, optional extras other than test), as distribution names."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = {requirement_name(r) for r in project["dependencies"]}
    optional = {
        requirement_name(r)
        for extra, requirements in project.get("optional-dependencies", {}).items()
        if extra != "test"
        for r in requirements
    }
    return runtime, optional


def third_party_imports(path: Path) -> Iterator[tuple[str, int, bool]]:
    """(top-level module, line, inside a function?) for each import of ``path`` from outside the project."""
    for imported in imports(path):
        top = imported.target.partition(".")[0]
        if top != "imagecache" and top not in sys.stdlib_module_names and not imported.typing_only:
            yield top, imported.line, imported.late


def test_every_imported_distribution_is_declared() -> None:
    runtime, optional = declared()
    providers = importlib.metadata.packages_distributions()
    undeclared = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for module, line, late in third_party_imports(path):
            allowed = runtime | optional if late else runtime
            distributions = {canonical(d) for d in providers.get(module, [])}
            if not distributions & allowed:
                provider = ", ".join(sorted(distributions)) or "no installed distribution"
                undeclared.append(f"{path.relative_to(ROOT)}:{line} imports {module} (from {provider})")
    assert not undeclared, "not in [project] dependencies of pyproject.toml:\n" + "\n".join(undeclared)


def test_the_check_sees_late_imports() -> None:
    """The audit itself: an import in a function body is found, and marked late."""
    found = {(m, late) for path in (PACKAGE / "client").glob("*.py") for m, _, late in third_party_imports(path)}
    assert ("keystoneauth1", True) in found
    assert ("urllib3", False) in found
