"""``wrk``, the HTTP load tool: found, installed from Debian if missing (as root), run, read.

Each request of a run is ``GET`` of one of ``paths`` in turn (every wrk
thread goes round the list), with ``headers`` (e.g. ``X-Auth-Token``).  A
Lua ``done`` hook prints the figures as one line of JSON, so nothing is
parsed from wrk's human-readable report.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

INSTALL_TIMEOUT = 600.0
MARK = "BENCH-WRK "


class WrkMissing(RuntimeError):
    """wrk is not installed and cannot be installed here."""


def ensure_wrk(log=print) -> str:  # type: ignore[no-untyped-def]
    """The path of ``wrk``: on PATH, or ``apt-get install -y wrk`` when running as root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise WrkMissing(
            "wrk is not installed and this is not root with apt-get: install it "
            "(Debian/Ubuntu: sudo apt-get install -y wrk) and run the benchmark again"
        )
    log("bench: wrk is missing; apt-get update && apt-get install -y wrk")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update"], ["apt-get", "install", "-y", "wrk"]):
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=INSTALL_TIMEOUT, check=False)
        if done.returncode != 0:
            raise WrkMissing(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    found = shutil.which("wrk")
    if not found:
        raise WrkMissing("apt-get installed wrk but it is not on PATH")
    return found


def lua_script(paths: Sequence[str], headers: dict[str, str]) -> str:
    quoted = ", ".join(json.dumps(p) for p in paths)
    header_lines = "\n".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items())
    return f"""-- written by bench/wrk.py
wrk.method = "GET"
{header_lines}
local paths = {{{quoted}}}
local i = 0
request = function()
  i = i + 1
  return wrk.format(nil, paths[(i % #paths) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{MARK}{{"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
    .. '"max_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # socket errors + non-2xx/3xx answers
    bytes: int

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


def run_wrk(
    url: str, paths: Sequence[str], *, headers: dict[str, str], connections: int, seconds: float,
    threads: int, script_dir: Path, wrk: str = "wrk", timeout_s: float = 5.0,
) -> WrkResult:
    """One wrk run against ``url`` (``http://host:port``) with its figures."""
    script_dir.mkdir(parents=True, exist_ok=True)
    script = script_dir / "bench-wrk.lua"
    script.write_text(lua_script(paths, headers), encoding="utf-8")
    argv = [
        wrk, "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s", "--timeout", f"{timeout_s:g}s",
        "-s", str(script), url,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith(MARK)), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stdout[-800:]} {done.stderr[-800:]}")
    data = json.loads(line[len(MARK):])
    duration = data["duration_us"] / 1e6
    return WrkResult(
        requests=data["requests"], seconds=duration, rps=data["requests"] / duration if duration else 0.0,
        p50_ms=data["p50_us"] / 1000, p90_ms=data["p90_us"] / 1000, p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        errors=sum(data[k] for k in ("connect", "read", "write", "status", "timeout")), bytes=data["bytes"],
    )
