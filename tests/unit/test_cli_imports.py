"""The command line starts light, and its packages import without cycles.

``imagecache --help`` and a cron line must not pay for the cache, the
metrics or the database (prometheus_client, SQLAlchemy): each probe runs in
a fresh interpreter and reads ``sys.modules`` afterwards.  The structure
checks read the source, so they also see imports made inside functions.
"""

from __future__ import annotations

import ast
import graphlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "src"
#: Packages whose modules must form an acyclic import graph and never import their own package.
PACKAGES = ("imagecache.cli", "imagecache.client")
#: The most lines a module may have.
MODULE_LIMIT = 450

#: Modules a command line that only parses its arguments must not load.
HEAVY = frozenset({
    "prometheus_client", "sqlalchemy", "alembic", "psycopg", "gunicorn", "webob", "rich", "urllib3", "jsonschema",
    "imagecache.cache", "imagecache.client", "imagecache.db", "imagecache.images", "imagecache.jobs",
    "imagecache.metrics", "imagecache.server", "imagecache.upstream", "imagecache.wsgi",
})

#: Runs the command line with the arguments given, then prints the loaded modules (JSON) on stderr.
RUN_CLI = """
import json, sys
from imagecache.cli import main
try:
    main(sys.argv[1:], prog_name="imagecache")
except SystemExit as stop:
    status = stop.code
print(json.dumps({"status": status, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def loaded_after(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after ``statement``."""
    probe = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout))


def heavy(modules: set[str]) -> set[str]:
    return {name for name in modules if name in HEAVY or name.partition(".")[0] in HEAVY
            or any(name.startswith(f"{package}.") for package in HEAVY)}


@pytest.mark.parametrize("statement", ["import imagecache.cli", "import imagecache.config", "import imagecache"])
def test_importing_loads_nothing_heavy(statement: str) -> None:
    assert heavy(loaded_after(statement)) == set()


def test_the_package_root_loads_nothing_of_its_own() -> None:
    assert {name for name in loaded_after("import imagecache") if name.startswith("imagecache")} == {"imagecache"}


@pytest.mark.parametrize("args", [
    ["--help"], ["--version"], ["serve", "--help"], ["clean", "--help"], ["prune", "--help"], ["prefetch", "--help"],
    ["manage", "--help"], ["manage", "list-cached", "--help"], ["db", "--help"], ["db", "nodes", "--help"],
])
def test_help_loads_nothing_heavy(args: list[str]) -> None:
    done = subprocess.run([sys.executable, "-c", RUN_CLI, *args], capture_output=True, text=True, check=True)
    report = json.loads(done.stderr.splitlines()[-1])
    assert report["status"] == 0, done.stderr
    assert done.stdout.startswith(("Usage: imagecache", "imagecache, version "))
    assert heavy(set(report["modules"])) == set()


def test_python_dash_m_runs_the_command_line() -> None:
    done = subprocess.run([sys.executable, "-m", "imagecache.cli", "--help"], capture_output=True, text=True,
                          check=True)
    assert done.stdout.startswith("Usage: imagecache [OPTIONS] COMMAND [ARGS]...")


# -- structure, from the source ---------------------------------------------------------


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules(package: str) -> dict[str, Path]:
    folder = SOURCE.joinpath(*package.split("."))
    return {module_name(path): path for path in sorted(folder.rglob("*.py"))}


def imported(path: Path, known: set[str]) -> Iterator[str]:
    """Every imagecache module ``path`` imports, anywhere in it (functions too); a name
    imported from a package counts as its submodule when there is one."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.startswith("imagecache"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("imagecache"):
            assert node.level == 0, f"{path}: relative import"
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                yield submodule if submodule in known else node.module


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_imports_its_own_package_or_joins_a_cycle(package: str) -> None:
    modules = package_modules(package)
    graph = {name: {target for target in imported(path, set(modules)) if target in modules}
             for name, path in modules.items()}
    upward = sorted(f"{name} imports {package}" for name, targets in graph.items()
                    if name != package and package in targets)
    assert upward == []
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError on a cycle


@pytest.mark.parametrize("package", PACKAGES)
def test_modules_stay_small(package: str) -> None:
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines())
             for name, path in package_modules(package).items()}
    assert {name: size for name, size in sizes.items() if size > MODULE_LIMIT} == {}
