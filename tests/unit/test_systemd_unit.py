"""deploy/systemd: the unit a reviewer expects, checked by systemd's own tools where they exist.

The rules that tie the unit to the code (its stop timeout to gunicorn's
graceful timeout, its open-file limit to the storm limits, its command line
to ``imagecache serve``'s options) are read from the file and checked always.
``systemd-analyze verify`` and ``security``, and ``systemd-sysusers``, run
where systemd is installed (Debian's ``systemd`` package); elsewhere those
checks skip and say so, and fail under ``CI=true``.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from imagecache.cli._common import UsageProblem
from imagecache.cli.serve import serve
from imagecache.config import Settings
from imagecache.serving.options import FD_MARGIN, GRACEFUL_TIMEOUT
from imagecache.serving.worker import REFUSAL_HEADROOM
from tests.support.ci import skip_unless_ci

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd" / "imagecache.service"
SYSUSERS = ROOT / "deploy" / "systemd" / "imagecache.sysusers.conf"
IMAGECACHE = Path(sys.executable).with_name("imagecache")


def directives(path: Path = UNIT) -> dict[str, list[str]]:
    """``Key`` -> its values in order (systemd allows a key more than once), sections merged."""
    found: dict[str, list[str]] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        found.setdefault(key.strip(), []).append(value.strip())
    return found


def one(key: str) -> str:
    (value,) = directives()[key]
    return value


def systemd_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        skip_unless_ci(f"{name} is not installed (Debian's systemd package has it)", "the systemd unit checks")
    return path


def runnable_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this installation's imagecache (verify wants an executable)."""
    text = UNIT.read_text(encoding="utf-8").replace("/opt/imagecache/bin/imagecache", str(IMAGECACHE), 1)
    copy = tmp_path / "imagecache.service"
    copy.write_text(text, encoding="utf-8")
    return copy


# -- what the unit says, checked against the code ------------------------------------


def test_a_dedicated_user_confined_to_its_data_dir() -> None:
    assert one("User") == "imagecache" and one("Group") == "imagecache"
    assert one("ProtectSystem") == "strict"
    assert one("NoNewPrivileges") == "yes"
    assert one("PrivateTmp") == "yes"
    assert one("CapabilityBoundingSet") == ""
    command = shlex.split(one("ExecStart"))
    data_dir = command[command.index("--data-dir") + 1]
    assert data_dir in one("ReadWritePaths").split()
    assert one("WorkingDirectory") == data_dir


def test_the_command_line_is_one_serve_accepts() -> None:
    program, subcommand, *args = shlex.split(one("ExecStart"))
    assert (Path(program).name, subcommand) == ("imagecache", "serve")
    context = serve.make_context("serve", list(args))  # parses, runs nothing
    assert context.params["config_file"] == "/etc/imagecache/imagecache.toml"


def test_stopping_is_gunicorns_graceful_sigterm_with_time_to_finish() -> None:
    assert one("KillSignal") == "SIGTERM"
    assert one("KillMode") == "mixed"
    assert int(one("TimeoutStopSec")) > GRACEFUL_TIMEOUT


def test_it_restarts_on_failure_but_not_on_a_bad_setting() -> None:
    assert one("Restart") == "on-failure"
    assert str(UsageProblem.exit_code) in one("RestartPreventExitStatus").split()


def test_open_files_cover_the_storm_limits_arithmetic() -> None:
    """The comment's arithmetic is the code's: 2 descriptors a stream, plus the margins."""
    defaults = Settings()
    for workers in (defaults.workers, 1):
        per_process = 2 * -(-defaults.max_connections // workers) + FD_MARGIN + REFUSAL_HEADROOM
        assert int(one("LimitNOFILE")) >= per_process
    text = UNIT.read_text(encoding="utf-8")
    assert f"+ {FD_MARGIN} (files" in text and f"+ {REFUSAL_HEADROOM} (connections" in text
    shown = 2 * -(-defaults.max_connections // defaults.workers) + FD_MARGIN + REFUSAL_HEADROOM
    assert f"{shown} with the defaults" in text


# -- systemd's own tools ---------------------------------------------------------------


def test_systemd_analyze_verify_finds_nothing(tmp_path: Path) -> None:
    analyze = systemd_tool("systemd-analyze")
    done = subprocess.run([analyze, "verify", "--man=no", str(runnable_copy(tmp_path))],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (done.stdout + done.stderr).strip() == "", "warnings (an unknown or misspelt directive?)"


def test_systemd_analyze_security_rates_it_ok(tmp_path: Path) -> None:
    analyze = systemd_tool("systemd-analyze")
    done = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", str(runnable_copy(tmp_path))],
                          capture_output=True, text=True, timeout=60, check=False)
    if "--offline" in done.stderr and "unrecognized" in done.stderr:
        pytest.skip("this systemd-analyze cannot rate a unit file offline (systemd < 250)")
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", done.stdout)
    assert match is not None, done.stdout + done.stderr
    assert float(match[1]) <= 2.0, f"exposure {match[1]} {match[2]}"


def test_the_sysusers_file_creates_the_user(tmp_path: Path) -> None:
    sysusers = systemd_tool("systemd-sysusers")
    (tmp_path / "etc").mkdir()
    done = subprocess.run([sysusers, f"--root={tmp_path}", "--dry-run", str(SYSUSERS)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "Creating user 'imagecache'" in done.stdout + done.stderr
    assert not (tmp_path / "etc" / "passwd").exists()  # a dry run writes nothing
