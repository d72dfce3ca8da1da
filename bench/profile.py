"""``python -m bench profile SCENARIO``: where an imagecache server's time goes under one scenario's load.

Starts ``imagecache serve`` (2 workers, tokens) as the comparison does, sets
up the scenario, and runs ``py-spy record --subprocesses --format raw``
against the gunicorn master (so every worker is sampled) while the load
runs; then summarises the collapsed stacks into a text file: the share of
samples per function as the leaf (self) and anywhere on the stack
(inclusive), and per area (imagecache's modules, webob, gunicorn, sqlite,
prometheus_client, logging, hashlib, I/O).

Scenarios: ``small`` (wrk over cached 4 KiB images, 32 connections),
``miss`` (evict + download a 1 GiB image, again and again), ``hit`` (one
client downloading the cached image again and again), ``prune`` (the index
scenario's prune, in this process, with cProfile: it is library code).

py-spy is installed into this environment with pip when it is missing.
"""

from __future__ import annotations

import collections
import cProfile
import io
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bench.http import write_random_file
from bench.report import repo_relative
from bench.targets import ImagecacheTarget
from bench.units import GiB, KiB, format_size

_T = TypeVar("_T")

BENCH_DIR = Path(__file__).resolve().parent
PROFILES = BENCH_DIR / "profiles"
WORK_ROOT = BENCH_DIR / ".work"

Log = Callable[[str], None]



def cprofiled(call: Callable[[], _T], top: int) -> tuple[_T, float, str]:
    """``call()`` under cProfile: its value, its seconds, and its ``top`` functions by own and by cumulative time."""
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    try:
        value = call()
    finally:
        profiler.disable()
    seconds = time.perf_counter() - started
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return value, seconds, buffer.getvalue()

def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensure_py_spy(log: Log = _stderr) -> str:
    script = Path(sys.executable).with_name("py-spy")
    if script.exists():
        return str(script)
    found = shutil.which("py-spy")
    if found:
        return found
    log("bench: installing py-spy into this environment (pip install py-spy)")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "py-spy"], check=True, timeout=600)
    return str(script)


# -- reading py-spy's raw (collapsed) output ------------------------------------------------

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    """``func (path/to/module.py:12)`` -> ``func (module.py)``; other frames as they are."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match.group("file")
    parts = path.replace("\\", "/").split("/")
    for anchor in ("imagecache", "gunicorn", "webob", "prometheus_client", "sqlite3", "urllib3"):
        if anchor in parts:
            path = "/".join(parts[parts.index(anchor):])
            break
    else:
        path = parts[-1]
    return f"{match.group('func')} ({path})"


AREAS = (
    ("hashing (hashlib)", ("hashlib", "hexdigest", "update (hashing.py)")),
    ("sqlite (the index)", ("sqlite3", "drivers/sqlite.py", "execute (", "commit (")),
    ("prometheus_client (metrics)", ("prometheus_client",)),
    ("logging", ("logging/", "glogging.py", "(__init__.py)", "NodeLogger")),
    ("webob", ("webob/",)),
    ("gunicorn (HTTP, sockets)", ("gunicorn/",)),
    ("imagecache", ("imagecache/",)),
)


def area_of(stack: list[str]) -> str:
    """The area a sample belongs to: its innermost frame that names one."""
    for frame in reversed(stack):
        for area, needles in AREAS:
            if any(needle in frame for needle in needles):
                return area
    return "other (interpreter, stdlib)"


@dataclass
class Summary:
    samples: int
    self_counts: collections.Counter[str]
    inclusive: collections.Counter[str]
    areas: collections.Counter[str]
    leaf_areas: collections.Counter[str]
    stacks: collections.Counter[str]


#: Innermost frames kept per stack in the "heaviest stacks" list.
STACK_DEPTH = 6


def summarise_collapsed(lines: list[str]) -> Summary:
    self_counts: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    areas: collections.Counter[str] = collections.Counter()
    leaf_areas: collections.Counter[str] = collections.Counter()
    stacks: collections.Counter[str] = collections.Counter()
    total = 0
    for text in lines:
        line = text.rstrip()
        if not line or " " not in line:
            continue
        stack_text, _, count_text = line.rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        frames = [f for f in stack_text.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        raw = [f.strip() for f in frames]
        stack = [_short(f) for f in raw]
        total += count
        self_counts[stack[-1]] += count
        for name in set(stack):
            inclusive[name] += count
        areas[area_of(raw)] += count
        leaf_areas[area_of(raw[-1:])] += count
        stacks[" ← ".join(reversed(stack[-STACK_DEPTH:]))] += count
    return Summary(total, self_counts, inclusive, areas, leaf_areas, stacks)


def render_summary(summary: Summary, title: str, context: list[str], top: int = 25) -> str:
    def pct(n: int) -> str:
        return f"{100 * n / summary.samples:5.1f} %" if summary.samples else "  –"

    out = [title, "=" * len(title), "", *context, "", f"{summary.samples} samples.", ""]
    out += ["By area (the innermost frame that names one):", ""]
    out += [f"  {pct(n)}  {area}" for area, n in summary.areas.most_common()]
    out += ["", f"Top {top} functions by self time (the sampled frame itself):", ""]
    out += [f"  {pct(n)}  {name}" for name, n in summary.self_counts.most_common(top)]
    out += ["", f"Top {top} functions by inclusive time (anywhere on the stack):", ""]
    out += [f"  {pct(n)}  {name}" for name, n in summary.inclusive.most_common(top)]
    out += ["", f"Heaviest {top // 2} stacks (innermost {STACK_DEPTH} frames, innermost first):", ""]
    out += [f"  {pct(n)}  {name}" for name, n in summary.stacks.most_common(top // 2)]
    return "\n".join(out) + "\n"


# -- load generators -------------------------------------------------------------------------


def _load_small(target: ImagecacheTarget, work: Path, seconds: float, log: Log) -> list[str]:
    from bench.compare import download_batch
    from bench.wrk import ensure_wrk, run_wrk

    wrk = ensure_wrk(log)
    paths = []
    for i in range(16):
        path = work / f"small-{i}.raw"
        write_random_file(path, 4 * KiB)
        iid = target.upload(path, f"small-{i}")
        download_batch(target, iid, 1, 4 * KiB, 60)
        target.wait_cached(iid)
        paths.append(f"/v2/images/{iid}/file")
    result = run_wrk(target.url, paths, headers=target.headers, connections=32, seconds=seconds, threads=2,
                     script_dir=work, wrk=wrk)
    return [f"load: wrk -t 2 -c 32 -d {seconds:g}s over 16 cached 4 KiB images: {result.rps:,.0f} req/s, "
            f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, {result.errors} errors"]


def _load_big(target: ImagecacheTarget, work: Path, seconds: float, log: Log, *, miss: bool, size: int) -> list[str]:
    from bench.compare import download_batch

    path = work / "big.raw"
    write_random_file(path, size)
    iid = target.upload(path, "big")
    path.unlink()
    download_batch(target, iid, 1, size, 600)
    target.wait_cached(iid)
    rates = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if miss:
            target.evict(iid)
        batch = download_batch(target, iid, 1, size, 600)
        rates.append(size / batch.wall / 1e9)
        target.wait_cached(iid)
    kind = "evict + first download" if miss else "cached download"
    return [f"load: {kind} of a {format_size(size)} image, one client, {len(rates)} times: "
            + ", ".join(f"{r:.2f}" for r in rates) + " GB/s"]


def profile_server(
    scenario: str, seconds: float, rate: int, output: Path, size: int, log: Log = _stderr, *, gil: bool = False
) -> Path:
    py_spy = ensure_py_spy(log)
    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"profile-{scenario}-", dir=WORK_ROOT))
    raw = work / "py-spy.txt"
    target = ImagecacheTarget(work / "server")
    try:
        setup_and_load: Callable[[float], list[str]]
        if scenario == "small":
            setup_and_load = lambda s: _load_small(target, work, s, log)  # noqa: E731
        else:
            setup_and_load = lambda s: _load_big(target, work, s, log, miss=scenario == "miss", size=size)  # noqa: E731
        # The setup runs inside the load function: start py-spy only once it is under way.
        argv = [py_spy, "record", "--pid", str(target.pgid), "--subprocesses", "--rate", str(rate),
                "--format", "raw", "--nonblocking", "--output", str(raw), "--duration", str(int(seconds)),
                *(["--gil"] if gil else [])]
        holder: dict[str, list[str]] = {}

        def load() -> None:
            holder["context"] = setup_and_load(seconds + 4)

        if scenario == "small":
            # wrk's setup (uploads) is quick: start the load, give it a second, then sample.
            thread = threading.Thread(target=load, daemon=True)
            thread.start()
            time.sleep(3)
            spy = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120, check=False)
            thread.join(seconds + 120)
        else:
            thread = threading.Thread(target=load, daemon=True)
            thread.start()
            time.sleep(15 if size >= GiB else 3)  # upload + the first (verified) download
            spy = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120, check=False)
            thread.join(seconds + 900)
        if spy.returncode != 0 or not raw.exists():
            raise RuntimeError(f"py-spy failed ({spy.returncode}): {spy.stderr[-1000:]}")
        summary = summarise_collapsed(raw.read_text(encoding="utf-8", errors="replace").splitlines())
        context = [
            f"imagecache serve, 2 workers × 8 threads, --auth tokens; scenario {scenario!r}.",
            ("samples: only the thread holding the GIL in each worker (--gil): where the interpreter's time goes"
             if gil else "samples: every thread py-spy does not see as idle (on a CPU, or waiting in a call it "
             "does not count as idle, e.g. a lock)"),
            *holder.get("context", ["load: (did not finish)"]),
            f"profiler: {' '.join(['py-spy', *argv[1:]])}",
            f"load average during the profile: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        ]
        text = repo_relative(render_summary(summary, f"Profile of imagecache serve under '{scenario}'", context))
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        return output
    finally:
        target.close()
        shutil.rmtree(work, ignore_errors=True)


def profile_prune(entries: int, prune: int, output: Path, log: Log = _stderr) -> Path:
    """cProfile of ``ImageCache.prune()`` evicting ``prune`` of ``entries`` (library code, this process)."""
    from bench.index import Entries
    from imagecache import ImageCache, Settings

    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="profile-prune-", dir=WORK_ROOT))
    try:
        cache_dir = work / "image-cache"
        spec = Entries.make(entries)
        spec.write(cache_dir, 8)
        settings = Settings(data_dir=str(work), image_cache_dir=str(cache_dir))
        cache = ImageCache(settings)
        cache.reconcile()
        cache.close()
        cache = ImageCache(settings.replace(image_cache_max_size=(entries - prune) * 8))
        (files, _), seconds, stats = cprofiled(cache.prune, 20)
        cache.close()
        text = (f"cProfile of ImageCache.prune() evicting {files} of {entries:,} entries: {seconds:.3f} s "
                f"(under the profiler)\n\n" + repo_relative(stats.replace(str(work), "<work>")))
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        return output
    finally:
        shutil.rmtree(work, ignore_errors=True)
