"""The live node keeps its OpenAPI contract: ``/openapi.json``, and schemathesis run against every operation.

schemathesis' own command line fuzzes ``imagecache serve --auth tokens``
nodes on loopback, each with the peer endpoint mounted: an embedded node with
the admin's token, another with a member's, and an edge node (``--upstream``,
in front of a node of its own) with the admin's.  Each run has a node to
itself, because an admin's stateful run changes and deletes the images it
lists.  The checks: no 5xx, no undocumented status code, every body and
header as documented, authentication enforced where it is documented
(``--checks all`` except ``positive_data_acceptance``: the service refuses
some schema-valid requests for reasons a schema cannot say, such as a marker
naming no image, an image in the wrong status, or two sorting syntaxes at
once).  Afterwards every node is still healthy and logged no traceback.

Bounded and replayable: at most ``IMAGECACHE_FUZZ_EXAMPLES`` (25) examples
per operation in each phase, with the seed ``IMAGECACHE_FUZZ_SEED`` (18 unless
set); the seed is in the test's name (``[seed=18]``), printed, and named in
every failure with the command that replays it.  Only the embedded admin's
run has schemathesis' coverage phase (boundary and malformed values of every
parameter): those do not depend on the caller, and the edge answers them
with the same code.  The runs go side by side.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from imagecache.openapi import load_document
from tests.functional.conftest import RunningServer, clean_environment, start_edge

ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("IMAGECACHE_FUZZ_SEED", "18"))
EXAMPLES = int(os.environ.get("IMAGECACHE_FUZZ_EXAMPLES", "25"))
PEER_TOKEN = "fuzz-peer-secret"
#: Seconds the runs (side by side) may take: about 20 here, 45 beside a benchmark on the same 2 cores.
RUN_TIMEOUT = 150.0
#: The checks that judge the node (see the module docstring for the one left out).
EXCLUDED_CHECKS = "positive_data_acceptance"
#: (node, user) -> the phases of that run.
RUNS = {
    ("embedded", "admin"): "coverage,fuzzing,stateful",
    ("member", "alice"): "fuzzing,stateful",
    ("edge", "admin"): "fuzzing,stateful",
}

pytestmark = pytest.mark.timeout(RUN_TIMEOUT + 60)


def start_node(start: Any) -> RunningServer:
    server: RunningServer = start(auth="tokens", settings={"peer_token": PEER_TOKEN})
    return server


@pytest.fixture(scope="module")
def node(start_module_server: Any) -> RunningServer:
    return start_node(start_module_server)


@pytest.fixture
def fuzzed_nodes(start_server: Any, node: RunningServer) -> dict[str, RunningServer]:
    """A node per run: an admin's run changes and deletes what it lists, a member's images too."""
    return {
        "embedded": node,
        "member": start_node(start_server),
        "edge": start_edge(start_server, start_node(start_server), settings={"peer_token": PEER_TOKEN}),
    }


def schemathesis_command(node: RunningServer, user: str, phases: str, seed: int) -> list[str]:
    assert node.tokens is not None
    return [
        sys.executable, "-m", "schemathesis.cli", "run", f"{node.url}/openapi.json",
        "--header", f"X-Auth-Token: {node.tokens.token(user)}",
        "--header", f"X-Imagecache-Peer-Token: {PEER_TOKEN}",
        "--phases", phases,
        "--max-examples", str(EXAMPLES),
        "--seed", str(seed),
        "--checks", "all", "--exclude-checks", EXCLUDED_CHECKS,
        "--workers", "1",
        "--generation-database", "none",
        "--request-timeout", "30",
        "--no-color",
    ]


def replay_line(command: Sequence[str]) -> str:
    return "SCHEMATHESIS_HOOKS=tests.functional.openapi_hooks " + shlex.join(command)


def test_openapi_json_serves_the_document_to_anyone(node: RunningServer) -> None:
    answer = node.request("GET", "/openapi.json")  # no token
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == load_document()
    head = node.request("HEAD", "/openapi.json")
    assert head.status == 200 and head.body == b""
    assert head.headers["content-length"] == answer.headers["content-length"]
    refused = node.request("POST", "/openapi.json", user="admin")
    assert refused.status == 405 and refused.headers["allow"] == "GET, HEAD"
    assert refused.json()["error"]["code"] == 405


@pytest.mark.parametrize("seed", [SEED], ids=lambda seed: f"seed={seed}")  # the seed in the test's name
def test_schemathesis_finds_nothing(fuzzed_nodes: dict[str, RunningServer], tmp_path: Path, seed: int) -> None:
    """Every run at once, all bounded; a failure shows schemathesis' report (with curl lines) and the seed."""
    env = clean_environment({"SCHEMATHESIS_HOOKS": "tests.functional.openapi_hooks", "PYTHONPATH": str(ROOT)})
    print(f"schemathesis seed {seed} ({EXAMPLES} examples per operation); "
          f"replay with IMAGECACHE_FUZZ_SEED={seed}")
    nodes = fuzzed_nodes
    runs = {}
    for (name, user), phases in RUNS.items():
        command = schemathesis_command(nodes[name], user, phases, seed)
        out = (tmp_path / f"schemathesis-{name}-{user}.txt").open("w+", encoding="utf-8")
        runs[f"{user} on the {name} node"] = (command, out, subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL))
    failures = []
    deadline = time.monotonic() + RUN_TIMEOUT
    try:
        for who, (command, out, process) in runs.items():
            try:
                status = process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                status = None
            out.seek(0)
            report = out.read()
            if status != 0:
                verdict = "did not finish in time" if status is None else f"exited {status}"
                failures.append(f"schemathesis as {who} {verdict} (seed {seed}); replay from the checkout with\n"
                                f"  {replay_line(command)}\n{report[-12000:]}")
    finally:
        for _, out, process in runs.values():
            if process.poll() is None:
                process.kill()
                process.wait()
            out.close()
    assert not failures, "\n\n".join(failures)
    for name, fuzzed in nodes.items():
        assert fuzzed.process.returncode is None, f"the {name} node exited during the fuzzing:\n{fuzzed.logs()[-4000:]}"
        health = fuzzed.request("GET", "/healthcheck")
        assert (health.status, health.body) == (200, b"OK"), name
        assert "Traceback" not in fuzzed.logs(), f"the {name} node logged a traceback:\n{fuzzed.logs()[-8000:]}"
