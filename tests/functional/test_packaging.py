"""The wheel, installed without extras into a fresh venv, serves and caches images.

The development venv holds the test extras, and they bring in modules the
package imports (jsonschema came with python-glanceclient), so only a clean
install shows what ``pip install imagecache`` really gets.

Nothing here touches the network: the wheel is built and installed offline
from the wheelhouse ``make venv`` fills with the runtime and build
dependencies (``$(VENV)/wheelhouse``, i.e. next to this interpreter, or
``IMAGECACHE_TEST_WHEELHOUSE``).  pip's own configuration is ignored, so no
index or find-links of the machine can stand in for a missing wheel.  Without
a wheelhouse the tests skip and say why; under ``CI=true`` they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.functional.conftest import RunningServer, clean_environment
from tests.functional.test_fills import metric, metrics
from tests.support.ci import skip_unless_ci
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
#: What a build of the project reads; copied, so building leaves no build/ or egg-info in the checkout.
BUILD_INPUTS = ("pyproject.toml", "README.md", "src")
#: Seconds each build or install step may take (they take a few on a busy 2-core machine).
STEP_TIMEOUT = 90.0
#: The environment of the installed server: nothing from the checkout or the user's site-packages.
ISOLATED = {"PYTHONPATH": "", "PYTHONNOUSERSITE": "1"}

pytestmark = pytest.mark.timeout(180)

#: Imports every module of the installed package; prints where it came from and what else is there.
IMPORT_EVERYTHING = """
import importlib, importlib.util, json, pkgutil, imagecache
# Alembic's scripts run only inside Alembic (env.py configures its context when imported).
names = [m.name for m in pkgutil.walk_packages(imagecache.__path__, "imagecache.")
         if not m.name.startswith("imagecache.db.migrations.")]
for name in names:
    importlib.import_module(name)
extras = [n for n in ("pytest", "glanceclient", "keystoneauth1", "paste") if importlib.util.find_spec(n)]
print(json.dumps({"file": imagecache.__file__, "modules": len(names), "extras": extras}))
"""


def wheelhouse() -> Path:
    configured = os.environ.get("IMAGECACHE_TEST_WHEELHOUSE")
    path = Path(configured) if configured else Path(sys.prefix) / "wheelhouse"
    if not any(path.glob("*.whl")):
        skip_unless_ci(
            f"no wheelhouse at {path}: run `make venv` to fill it, or set IMAGECACHE_TEST_WHEELHOUSE",
            "the packaging test",
        )
    return path


def pip_environment() -> dict[str, str]:
    """This environment without pip's settings (config files, PIP_*): only the wheelhouse counts."""
    env = {key: value for key, value in clean_environment(ISOLATED).items() if not key.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


def run(command: Sequence[str | Path], cwd: Path) -> str:
    """Run one step to completion; its stdout, or a failure with everything it said."""
    argv = [str(part) for part in command]
    try:
        done = subprocess.run(argv, cwd=cwd, env=pip_environment(), capture_output=True, text=True,
                              timeout=STEP_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(argv)} took more than {STEP_TIMEOUT:g} s", pytrace=False)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(argv)} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}", pytrace=False)
    return done.stdout


def copy_build_inputs(destination: Path) -> Path:
    destination.mkdir()
    for name in BUILD_INPUTS:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        else:
            shutil.copy2(source, destination / name)
    return destination


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin directory of a fresh venv holding the project's wheel, without extras.

    The venv is made without pip (ensurepip costs seconds) and filled by this
    interpreter's pip through ``--python``: an ordinary install into it all the same.
    """
    wheels = wheelhouse()
    work = tmp_path_factory.mktemp("packaging")
    offline = ["--no-index", "--find-links", wheels]
    pip = [sys.executable, "-m", "pip"]
    run([*pip, "wheel", "--no-deps", *offline, "--wheel-dir", work / "dist", copy_build_inputs(work / "source")],
        cwd=work)
    (wheel,) = (work / "dist").glob("imagecache-*.whl")
    venv = work / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=work)
    target = ["--python", venv / "bin" / "python"]
    run([*pip, *target, "install", "--quiet", *offline, wheel], cwd=work)
    run([*pip, *target, "check"], cwd=work)
    return venv / "bin"


def test_every_module_of_the_wheel_imports_without_extras(installed: Path) -> None:
    found = json.loads(run([installed / "python", "-c", IMPORT_EVERYTHING], cwd=installed))
    assert Path(found["file"]).is_relative_to(installed.parent), f"imported from the checkout: {found}"
    assert found["modules"] > 40
    assert found["extras"] == [], "the fresh venv has test or optional extras: it is not clean"
    assert (installed / "imagecache").is_file()


def cached_images(server: RunningServer) -> dict[str, dict[str, Any]]:
    answer = server.request("GET", "/v2/cache")
    assert answer.status == 200, answer.text
    return {entry["image_id"]: entry for entry in answer.json()["cached_images"]}


def test_the_installed_server_uploads_caches_and_serves_an_image(installed: Path, start_server: Any) -> None:
    server = start_server(program=[str(installed / "imagecache")], auth="none", env=ISOLATED)
    data = os.urandom(1 << 20) + b"tail"
    made = server.request("POST", "/v2/images", json_body={
        "name": "packaged", "disk_format": "raw", "container_format": "bare",
    })
    assert made.status == 201, made.text
    image_id = made.json()["id"]
    put = server.request("PUT", f"/v2/images/{image_id}/file", body=data,
                         headers={"Content-Type": "application/octet-stream"})
    assert put.status == 204, put.text

    miss = server.request("GET", f"/v2/images/{image_id}/file")
    assert miss.status == 200 and miss.body == data
    # The publish follows the miss's last byte by a moment.
    wait_until(lambda: image_id in cached_images(server), f"image {image_id} to be cached",
               describe=lambda: server.logs()[-2000:])
    hit = server.request("GET", f"/v2/images/{image_id}/file")
    assert hit.status == 200 and hit.body == data

    assert cached_images(server)[image_id]["hits"] == 1
    values = metrics(server)
    assert metric(values, "imagecache_cache_misses_total") == 1
    assert metric(values, "imagecache_cache_hits_total") == 1
    # The API document is package data, read with a declared dependency.
    document = server.request("GET", "/openapi.json")
    assert document.status == 200, server.logs()[-2000:]
    assert document.json()["paths"]["/v2/images/{image_id}/file"]["get"]["operationId"] == "downloadImage"
    assert server.stop() == 0, server.logs()
