"""The storm: what happens to a node when many clients are slow, or many at once, or never finish.

``python -m bench storm`` (and part of ``python -m bench all``) against the
same three targets as the rest of the bench (:mod:`bench.targets`), all
running at once, each part's runs interleaved (part P on imagecache, then
Glance, then the limit; then the next part).  The parts, rows 7–11 of the
table (:func:`storm_rows`):

7. **slow clients**: ``slow_clients`` (200) clients download the cached
   ``size`` (64 MiB) image at ``slow_rate`` (4 MiB/s) each, through a 64 KiB
   ``SO_RCVBUF``, on one selector thread (:class:`bench.slow.SlowReaders`;
   one that gets the whole image starts again, so the pressure lasts).
   After ``ramp`` s, every ``interval`` s for ``seconds`` s: a new client's
   time to the first byte of the same image, and a ``GET /healthcheck``
   (Glance: its paste pipeline's ``/healthcheck``, oslo.middleware; the
   limit: its own ``/healthcheck``), each on a fresh connection with a
   ``timeout`` (30 s): a timeout is recorded as such (``>30``).  Also the
   number of slow clients that received data in each second.
8. **herd and hits**: N (8, 32, 128) first downloads at once of the herd
   image (256 MiB, evicted before each; :func:`bench.compare.herd_run_measured`,
   the ``all`` herd's code): wall, aggregate throughput, store reads per
   fill; then, in the same run, N downloads at once of the now cached
   image: the hits' aggregate throughput at the same N.
9. **server CPU per GiB delivered**: ``utime`` + ``stime`` of every process
   of the server's process group (:func:`bench.procs.cpu_seconds`) just
   before and after each batch of part 8, ÷ GiB delivered: hits (the hit
   batches), herd (the herd batches: one fill and its followers), miss (one
   first download, N=1, before the herds).  The load generator is not in
   the group.
10. **slowloris**: ``slowloris`` (256) connections send ``GET /versions
    HTTP/1.1`` and then one header line every ``loris_interval`` (2) s,
    never the blank line (:class:`bench.slow.Slowloris`); meanwhile a
    normal ``GET /versions`` is sampled like the probes of part 7; and how
    long until the server closes the slow connections (capped at
    ``loris_cap``, 40 s: "not closed within 40 s").
11. **open streams**: ``open_streams`` (500) clients each read
    ``open_burst`` (256 KiB) of the cached image and then go on at
    ``open_rate`` (64 KiB/s) for ``seconds`` s, while the RSS of the whole
    node (sum over its process group, /proc every 100 ms) is sampled: the
    peak, and how many of the streams received any data.

After parts 7, 10 and 11 each target gets up to ``recover`` s to answer
``/healthcheck`` again (recorded) before the next one starts.  Every loop is
bounded in count and time and stops by itself; all traffic is to 127.0.0.1.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.procs import RssSampler, cpu_seconds, rss_bytes
from bench.results import TARGET_TITLES, Results, Row
from bench.slow import RCVBUF, Probe, Slowloris, SlowReaders, probe, sample_probes
from bench.stats import Summary
from bench.units import GiB, KiB, MiB, format_size

if TYPE_CHECKING:
    from bench.compare import CompareConfig, Context
    from bench.targets import Target

GB = 1e9
PARTS = ("slow", "herd", "slowloris", "open")


@dataclass(frozen=True)
class StormConfig:
    size: int = 64 * MiB  # the cached image the slow clients and open streams read
    slow_clients: int = 200
    slow_rate: int = 4 * MiB  # bytes/s per slow client
    herd_ns: tuple[int, ...] = (8, 32, 128)  # the herd image is CompareConfig.herd_size (256 MiB)
    slowloris: int = 256
    open_streams: int = 500
    seconds: float = 10.0  # sampling window of parts 7, 10 and 11
    interval: float = 1.0  # between samples
    timeout: float = 30.0  # one probe's timeout
    ramp: float = 2.0  # the slow clients' head start before the first sample
    loris_interval: float = 2.0  # seconds between a slow connection's header lines
    loris_cap: float = 40.0  # the longest we wait for the server to close the slow connections
    open_rate: int = 64 * KiB
    open_burst: int = 256 * KiB
    rcvbuf: int = RCVBUF
    recover: float = 60.0  # at most this long for /healthcheck to answer again after a part
    runs: int = 1
    parts: tuple[str, ...] = PARTS


def _rate(n: int) -> str:
    return f"{format_size(n)}/s"


def storm_rows(config: StormConfig, herd_size: int) -> tuple[Row, ...]:
    """The table rows of the storm (titles carry its settings)."""
    c = config
    rows = [
        Row("storm_ttfb", f"7. storm: a new client's first byte of the cached {format_size(c.size)} image while "
            f"{c.slow_clients} clients read it at {_rate(c.slow_rate)} each", "s", False, 3),
        Row("storm_health", "7. storm: GET /healthcheck latency meanwhile", "s", False, 3),
        Row("storm_streaming", f"7. storm: slow clients receiving data, at each sample (of {c.slow_clients})",
            "clients", True, 0),
    ]
    for n in c.herd_ns:
        rows += [
            Row(f"sherd{n}_wall", f"8. herd N={n}: first downloads of one {format_size(herd_size)} image, wall",
                "s", False, 2),
            Row(f"sherd{n}_gbs", f"8. herd N={n}: aggregate throughput", "GB/s", True, 2),
            Row(f"sherd{n}_reads", f"8. herd N={n}: store reads per fill", "×", False, 2),
            Row(f"shit{n}_gbs", f"8. hits N={n}: the same image cached, aggregate throughput", "GB/s", True, 2),
        ]
    rows += [
        Row("cpu_hit", "9. server CPU per GiB delivered: hits", "CPU-s/GiB", False, 2),
        Row("cpu_herd", "9. server CPU per GiB delivered: herds (one fill + followers)", "CPU-s/GiB", False, 2),
        Row("cpu_miss", "9. server CPU per GiB delivered: miss (one first download)", "CPU-s/GiB", False, 2),
        Row("cpu_follow", "9. server CPU per GiB delivered: followers (a herd less one first download)",
            "CPU-s/GiB", False, 2),
        Row("loris_versions", f"10. slowloris: GET /versions latency while {c.slowloris} connections send a "
            f"header line every {c.loris_interval:g} s", "s", False, 3),
        Row("loris_closed", f"10. slowloris: slow connections the server closed within {c.loris_cap:g} s "
            f"(of {c.slowloris})", "conns", True, 0),
        Row("loris_close_s", "10. slowloris: time until the server closes a slow connection, median", "s",
            False, 1),
        Row("open_rss", f"11. memory: peak RSS of the node, {c.open_streams} open streams reading at "
            f"{_rate(c.open_rate)}", "MiB", False, 0),
        Row("open_streaming", f"11. open streams that received data (of {c.open_streams})", "streams", True, 0),
    ]
    return tuple(rows)


# -- helpers -------------------------------------------------------------------------------------


def server_cpu(target: Target) -> float:
    return cpu_seconds(target.pids())


def wait_healthy(target: Target, limit: float, probe_timeout: float = 2.0) -> float | None:
    """Seconds until ``/healthcheck`` answers 200 (within ``probe_timeout``), at most ``limit``; None if not."""
    began = time.monotonic()
    while True:
        answer = probe(target.client.host, target.client.port, "/healthcheck", timeout=probe_timeout)
        if answer.status == 200 and answer.seconds is not None:
            return time.monotonic() - began
        if time.monotonic() - began >= limit:
            return None
        time.sleep(0.2)


def _record_probes(results: Results, row: str, name: str, probes: list[Probe], cap: float,
                   want: tuple[int, ...] | None = None) -> dict[str, Any]:
    """Probes into a cell (inf = timed out, errors as errors); a summary for the details."""
    cell = results.cell(row, name)
    cell.cap = cap
    statuses: dict[str, int] = {}
    failed: list[str] = []
    for p in probes:
        statuses[str(p.status)] = statuses.get(str(p.status), 0) + 1
        if p.timed_out:
            cell.values.append(math.inf)
        elif p.error is not None or (want is not None and p.status not in want):
            failed.append(p.error or f"status {p.status}")
        else:
            cell.values.append(float(p.seconds))  # type: ignore[arg-type]
    if failed:
        results.error(row, name, f"{len(failed)} of {len(probes)} probes failed: {'; '.join(sorted(set(failed))[:3])}")
    return {
        "seconds": [p.seconds for p in probes], "timed_out": sum(1 for p in probes if p.timed_out),
        "statuses": statuses, "failed": failed[:10], "stages": [p.stage for p in probes],
    }


def _recover(ctx: Context, name: str, target: Target, part: str, details: dict[str, Any]) -> None:
    seconds = wait_healthy(target, ctx.config.storm.recover)
    details["recovered_s"] = None if seconds is None else round(seconds, 2)
    if seconds is None:
        ctx.log(f"bench: storm: {name} did not answer /healthcheck within {ctx.config.storm.recover:.0f} s "
                f"after {part}")
    elif seconds > 1:
        ctx.log(f"bench: storm: {name} answered /healthcheck again {seconds:.1f} s after {part}")


def _detail(ctx: Context, part: str, name: str, run: int) -> dict[str, Any]:
    runs = ctx.extra.setdefault("storm", {}).setdefault(part, {}).setdefault(name, [])
    entry: dict[str, Any] = {"run": run + 1}
    runs.append(entry)
    return entry


# -- 7. slow clients ------------------------------------------------------------------------------


def part_slow(ctx: Context, name: str, target: Target, run: int) -> None:
    from bench.compare import image

    sc, results = ctx.config.storm, ctx.results
    iid = image(ctx, name, "storm")
    host, port, headers = target.client.host, target.client.port, target.headers
    path = f"/v2/images/{iid}/file"
    details = _detail(ctx, "slow", name, run)
    streaming: list[int] = []
    bound = sc.ramp + sc.seconds + sc.timeout + 15
    own_cpu = time.process_time()  # the benchmark process: load generator, probes, everything
    with SlowReaders(host, port, path, sc.slow_clients, sc.slow_rate, headers=headers, rcvbuf=sc.rcvbuf,
                     repeat=True, max_seconds=bound) as readers:
        time.sleep(sc.ramp)
        first = readers.snapshot()
        t0 = time.monotonic()
        probes = sample_probes(
            {
                "ttfb": lambda: probe(host, port, path, headers=headers, timeout=sc.timeout, first_byte=True,
                                      expect=(200,)),
                "health": lambda: probe(host, port, "/healthcheck", timeout=sc.timeout),
            },
            seconds=sc.seconds, interval=sc.interval, timeout=sc.timeout,
            on_tick=lambda i: streaming.append(readers.snapshot(within=sc.interval)["streaming"]),
        )
        last = readers.snapshot()
        elapsed = time.monotonic() - t0
    details["ttfb"] = _record_probes(results, "storm_ttfb", name, probes["ttfb"], sc.timeout, (200,))
    details["health"] = _record_probes(results, "storm_health", name, probes["health"], sc.timeout)
    for count in streaming:
        results.add("storm_streaming", name, count)
    errors = readers.errors()
    details.update({
        "streaming": streaming, "with_data": last["with_data"], "downloads": last["downloads"],
        "slow_mib_s": round((last["bytes"] - first["bytes"]) / elapsed / MiB, 1) if elapsed > 0 else None,
        "reader_errors": len(errors), "reader_error_examples": sorted({e.split(": ", 1)[1] for e in errors})[:5],
        "connects": sum(r.connects for r in readers.readers), "loop_error": readers.loop_error,
        "load_generator_cpu_s": round(time.process_time() - own_cpu, 2),
        "first_byte_s": _summary([r.first_byte_s for r in readers.readers if r.first_byte_s is not None]),
    })
    if readers.loop_error:
        results.error("storm_streaming", name, f"the slow readers' loop failed: {readers.loop_error}")
    ctx.log(f"bench: storm run {run + 1}: {name}: first byte {_probe_text(probes['ttfb'])}, healthcheck "
            f"{_probe_text(probes['health'])}, streaming {streaming}, slow clients {details['slow_mib_s']} MiB/s, "
            f"{len(errors)} reader errors")
    _recover(ctx, name, target, "the slow clients", details)


def _probe_text(probes: list[Probe]) -> str:
    values = sorted(p.value for p in probes if not math.isnan(p.value))
    timeouts = sum(1 for p in probes if p.timed_out)
    if not values:
        return "no answer"
    median = values[len(values) // 2]
    text = ">timeout" if median == math.inf else f"{median:.3f} s"
    return f"{text} (median of {len(values)}, {timeouts} timed out)"


def _summary(values: list[float]) -> dict[str, float] | None:
    return Summary.of(values).as_dict() if values else None


# -- 8 and 9. herds, hits, CPU per GiB -----------------------------------------------------------


def part_herd(ctx: Context, run: int) -> None:
    from bench.compare import GlanceTarget, download_batch, guarded, herd_run_measured, image, settled_hits
    from bench.targets import ImagecacheTarget

    sc, config, results = ctx.config.storm, ctx.config, ctx.results
    size = config.herd_size
    cpu = {name: {"hit": [0.0, 0], "herd": [0.0, 0], "follow": [0.0, 0]} for name, _ in ctx.each()}
    one_download_cpu: dict[str, float] = {}
    for name, target in ctx.each():
        with guarded(ctx, ("cpu_miss",), name, f"storm miss run {run + 1}"):
            one = herd_run_measured(ctx, name, target, 1, measure=lambda t=target: server_cpu(t))
            one_download_cpu[name] = one.cpu
            results.add("cpu_miss", name, one.cpu / (size / GiB))
            _detail(ctx, "miss", name, run).update({"wall_s": one.wall, "cpu_s": one.cpu, "reads": one.reads})
            ctx.log(f"bench: storm miss run {run + 1}: {name} {one.wall:.2f} s, {one.cpu:.2f} CPU-s "
                    f"({one.cpu / (size / GiB):.2f} per GiB)")
    for n in sc.herd_ns:
        wall, gbs, reads, hit = f"sherd{n}_wall", f"sherd{n}_gbs", f"sherd{n}_reads", f"shit{n}_gbs"
        for name, target in ctx.each():
            with guarded(ctx, (wall, gbs, reads, "cpu_herd", "cpu_follow"), name, f"storm herd N={n} run {run + 1}"):
                herd = herd_run_measured(ctx, name, target, n, measure=lambda t=target: server_cpu(t))
                results.add(wall, name, herd.wall)
                results.add(gbs, name, herd.batch.nbytes / herd.wall / GB)
                if name == "limit":
                    cell = results.cell(reads, name)
                    cell.text = "1.00 (floor)"
                    cell.reason = ("the floor: one read of the image per herd, whatever N (the limit server itself "
                                   "has no cache and reads the file once per client)")
                else:
                    results.add(reads, name, herd.reads)
                cpu[name]["herd"][0] += herd.cpu
                cpu[name]["herd"][1] += herd.batch.nbytes
                if n > 1 and name in one_download_cpu:
                    # What the N-1 clients beyond the first cost: the fill and its first reader
                    # are what a lone first download costs, measured just before.
                    # Clock ticks are 10 ms: a small herd can cost what one download did, or a tick less.
                    cpu[name]["follow"][0] += max(0.0, herd.cpu - one_download_cpu[name])
                    cpu[name]["follow"][1] += herd.batch.nbytes * (n - 1) // n
                _detail(ctx, f"herd{n}", name, run).update({"wall_s": herd.wall, "cpu_s": herd.cpu,
                                                            "reads": herd.reads, **herd.counts})
                if herd.reads > 1.01 and herd.counts:
                    ctx.log(f"bench: storm herd N={n} run {run + 1}: {name} read the store more than once: "
                            + ", ".join(f"{key} {value:g}" for key, value in herd.counts.items()))
                ctx.log(f"bench: storm herd N={n} run {run + 1}: {name} wall {herd.wall:.2f} s, "
                        f"{herd.batch.nbytes / herd.wall / GB:.2f} GB/s, store reads {herd.reads:.2f}, "
                        f"{herd.cpu:.2f} CPU-s")
        for name, target in ctx.each():
            with guarded(ctx, (hit, "cpu_hit"), name, f"storm hits N={n} run {run + 1}"):
                iid = image(ctx, name, "herd")
                target.wait_cached(iid)
                before_hits = (target.metrics_hits() if isinstance(target, ImagecacheTarget)
                               else settled_hits(target, iid) if isinstance(target, GlanceTarget) else 0.0)
                cpu0 = server_cpu(target)
                batch = download_batch(target, iid, n, size, config.timeout)
                used = server_cpu(target) - cpu0
                if batch.errors:
                    raise RuntimeError("; ".join(batch.errors[:3]))
                results.add(hit, name, batch.nbytes / batch.wall / GB)
                cpu[name]["hit"][0] += used
                cpu[name]["hit"][1] += batch.nbytes
                counted = None
                if isinstance(target, ImagecacheTarget):
                    counted = target.metrics_hits() - before_hits
                elif isinstance(target, GlanceTarget):
                    counted = settled_hits(target, iid, before_hits + n) - before_hits
                if counted is not None and counted != n:
                    results.error(hit, name, f"run {run + 1}: the cache counted {counted:.0f} hits for {n} downloads")
                _detail(ctx, f"hit{n}", name, run).update({"wall_s": batch.wall, "cpu_s": used, "hits": counted})
                ctx.log(f"bench: storm hits N={n} run {run + 1}: {name} {batch.nbytes / batch.wall / GB:.2f} GB/s, "
                        f"{used:.2f} CPU-s")
    for name, kinds in cpu.items():
        for kind, (seconds, nbytes) in kinds.items():
            if nbytes:
                results.add(f"cpu_{kind}", name, seconds / (nbytes / GiB))


# -- 10. slowloris ---------------------------------------------------------------------------------


def part_slowloris(ctx: Context, name: str, target: Target, run: int) -> None:
    sc, results = ctx.config.storm, ctx.results
    host, port = target.client.host, target.client.port
    details = _detail(ctx, "slowloris", name, run)
    with Slowloris(host, port, sc.slowloris, path="/versions", interval=sc.loris_interval,
                   cap=sc.loris_cap) as loris:
        time.sleep(min(1.0, sc.loris_interval / 2))
        probes = sample_probes({"versions": lambda: probe(host, port, "/versions", timeout=sc.timeout)},
                               seconds=sc.seconds, interval=sc.interval, timeout=sc.timeout)
        assert loris.began is not None
        loris.wait(max(0.0, loris.began + sc.loris_cap + 5 - time.monotonic()))
    details["versions"] = _record_probes(results, "loris_versions", name, probes["versions"], sc.timeout)
    conns = loris.conns
    closed = [c.closed for c in conns if c.closed is not None and c.closed <= sc.loris_cap]
    results.add("loris_closed", name, len(closed))
    close_times = sorted([c.closed if c.closed is not None and c.closed <= sc.loris_cap else math.inf
                          for c in conns if c.error is None])
    cell = results.cell("loris_close_s", name)
    cell.cap, cell.cap_text = sc.loris_cap, f"not closed within {sc.loris_cap:g} s"
    if close_times:
        cell.values.append(close_times[len(close_times) // 2] if len(close_times) % 2 else
                           (close_times[len(close_times) // 2 - 1] + close_times[len(close_times) // 2]) / 2)
    failed = [c.error for c in conns if c.error is not None]
    if failed:
        results.error("loris_closed", name, f"{len(failed)} slow connections could not connect: {failed[0]}")
    answers: dict[str, int] = {}
    hows: dict[str, int] = {}
    for c in conns:
        if c.answer:
            first = c.answer.split(b"\r\n", 1)[0].decode("latin-1", "replace")[:60]
            answers[first] = answers.get(first, 0) + 1
        if c.how:
            hows[c.how] = hows.get(c.how, 0) + 1
    details.update({
        "closed": len(closed), "close_s": _summary(closed), "answered": sum(1 for c in conns if c.answered),
        "answers": answers, "how_closed": hows, "lines_sent": _summary([c.lines for c in conns]),
        "connect_failures": len(failed), "loop_error": loris.loop_error,
        "held_s": round((loris.ended or 0) - (loris.began or 0), 1),
    })
    ctx.log(f"bench: storm slowloris run {run + 1}: {name}: /versions {_probe_text(probes['versions'])}, "
            f"{len(closed)} of {len(conns)} closed within {sc.loris_cap:g} s, answers {answers or 'none'}")
    _recover(ctx, name, target, "slowloris", details)


# -- 11. open streams --------------------------------------------------------------------------------


def part_open(ctx: Context, name: str, target: Target, run: int) -> None:
    from bench.compare import image

    sc, results = ctx.config.storm, ctx.results
    iid = image(ctx, name, "storm")
    host, port, headers = target.client.host, target.client.port, target.headers
    details = _detail(ctx, "open", name, run)
    idle = rss_bytes(target.pids())
    own_cpu = time.process_time()
    with (
        SlowReaders(host, port, f"/v2/images/{iid}/file", sc.open_streams, sc.open_rate, headers=headers,
                    burst=sc.open_burst, rcvbuf=sc.rcvbuf, max_seconds=sc.seconds + 15) as readers,
        RssSampler(target.pgid, interval=0.1) as sampler,
    ):
        time.sleep(sc.seconds)
        snap = readers.snapshot(within=1.0)
    results.add("open_rss", name, sampler.peak / MiB)
    results.add("open_streaming", name, snap["with_data"])
    errors = readers.errors()
    details.update({
        "idle_rss_mib": round(idle / MiB, 1), "peak_rss_mib": round(sampler.peak / MiB, 1),
        "median_rss_mib": round(Summary.of(sampler.samples).median / MiB, 1) if sampler.samples else None,
        "samples": len(sampler.samples), "with_data": snap["with_data"], "streaming_at_end": snap["streaming"],
        "processes": len(target.pids()), "reader_errors": len(errors),
        "load_generator_cpu_s": round(time.process_time() - own_cpu, 2),
        "reader_error_examples": sorted({e.split(": ", 1)[1] for e in errors})[:5],
        "loop_error": readers.loop_error,
    })
    if readers.loop_error:
        results.error("open_streaming", name, f"the readers' loop failed: {readers.loop_error}")
    ctx.log(f"bench: storm open streams run {run + 1}: {name}: peak RSS {sampler.peak / MiB:.0f} MiB "
            f"(idle {idle / MiB:.0f}), {snap['with_data']} of {sc.open_streams} got data, "
            f"{snap['streaming']} streaming at the end, {len(errors)} reader errors")
    _recover(ctx, name, target, "the open streams", details)


# -- the scenario ------------------------------------------------------------------------------------


def setup_storm(ctx: Context) -> None:
    """The storm image cached on every caching target (one untimed download each)."""
    from bench.compare import download_batch, guarded, image

    rows = tuple(row.key for row in storm_rows(ctx.config.storm, ctx.config.herd_size))
    for name, target in ctx.caching():
        with guarded(ctx, rows, name, "storm: caching the storm image"):
            iid = image(ctx, name, "storm")
            batch = download_batch(target, iid, 1, ctx.config.storm.size, ctx.config.timeout)
            if batch.errors:
                raise RuntimeError("; ".join(batch.errors))
            target.wait_cached(iid)


def scenario_storm(ctx: Context) -> None:
    from bench.compare import guarded

    sc = ctx.config.storm
    ctx.results.add_rows(storm_rows(sc, ctx.config.herd_size))
    setup_storm(ctx)
    per_target = {  # part -> (one target's step, its rows)
        "slow": (part_slow, ("storm_ttfb", "storm_health", "storm_streaming")),
        "slowloris": (part_slowloris, ("loris_versions", "loris_closed", "loris_close_s")),
        "open": (part_open, ("open_rss", "open_streaming")),
    }
    for run in range(sc.runs):
        for part in PARTS:
            if part not in sc.parts:
                continue
            if part == "herd":  # interleaved per N inside
                part_herd(ctx, run)
                continue
            step, rows = per_target[part]
            for name, target in ctx.each():
                with guarded(ctx, rows, name, f"storm {part} run {run + 1}"):
                    step(ctx, name, target, run)
    _notes(ctx)


def _notes(ctx: Context) -> None:
    results = ctx.results
    if "limit" in ctx.targets:
        for row, text in (
            ("storm_health", "the limit server's own `/healthcheck` (a constant 200 OK from its connection thread)"),
            ("loris_versions", "the limit server has no `/versions`: it answers 404 at once; the figure is that "
                               "answer's latency"),
            ("cpu_miss", "the limit has no cache: its 'miss' is one plain download (no hashing, no fill)"),
        ):
            if (row, "limit") in results.cells:
                results.cell(row, "limit").note = text
    if ("storm_health", "glance") in results.cells:
        results.cell("storm_health", "glance").note = (
            "Glance's `/healthcheck` is the paste pipeline's `oslo_middleware` Healthcheck app (before auth), "
            "served by the same gunicorn threads as the downloads")


# -- the report ---------------------------------------------------------------------------------------


def render_section(config: CompareConfig, info: dict[str, Any]) -> list[str]:
    """The storm's own markdown section: how each row was measured, and the details per target."""
    sc = config.storm
    extra = info.get("extra", {}).get("storm", {})
    lines = [
        "## Storm: slow clients, herds, slowloris, CPU per GiB, open streams (rows 7–11)",
        "",
        f"Load generator: one Python thread with `selectors` drives every slow socket (the slow readers "
        f"and the slowloris connections); probes are one fresh connection each, on their own thread, with a "
        f"{sc.timeout:g} s timeout: a probe that times out is shown as `>{sc.timeout:g}` and counts in the "
        "median, min and max as a time above that. The figures of rows 7 and 10 are medians (min–max) over "
        f"the samples (one every {sc.interval:g} s for {sc.seconds:g} s, {sc.runs} run(s)); the load generator's "
        "CPU is not in row 9 (only the server's process group is); its own CPU seconds during parts 7 and 11 are "
        "in the JSON (`load_generator_cpu_s`).",
        "",
        f"7. **slow clients**: {sc.slow_clients} clients download the cached {format_size(sc.size)} image at "
        f"{_rate(sc.slow_rate)} each (`SO_RCVBUF` {format_size(sc.rcvbuf)}, paced reads; one that finishes "
        f"connects again). After {sc.ramp:g} s, every {sc.interval:g} s: a new client's connect → first body "
        "byte of the same image (`GET /v2/images/{id}/file`, the admin token), and a `GET /healthcheck` "
        "(imagecache: its own; Glance: the paste pipeline's oslo.middleware `/healthcheck`; "
        "the limit: its `/healthcheck`). "
        f"\"receiving data\": slow clients that got a byte within the last {sc.interval:g} s, at each sample.",
        f"8. **herd**: N first downloads at once of the {format_size(config.herd_size)} image, evicted before "
        "each (the `all` herd's code: `DELETE /v2/cache/{id}`, N threads released by a barrier, wall = first "
        "start → last finish); aggregate = N × size ÷ wall; store reads per fill: imagecache's "
        "`imagecache_upstream_bytes_total` delta, Glance's `rchar` (`/proc/<pid>/io`, its processes) less one "
        "image per cache hit it counted, ÷ size. **hits**: right after, N downloads at once of the same "
        "image, now cached (the caches' hit counts are checked).",
        "9. **CPU per GiB**: `utime + stime` from `/proc/<pid>/stat` summed over the server's process group "
        "(gunicorn master + workers; Glance's the same; the limit's one process) just before and after each "
        "download batch of row 8, ÷ GiB delivered to the clients. hits: the hit batches; herds: the herd "
        "batches (one fill, the rest followers or hits); miss: one first download (N=1) before the herds; "
        "followers: each herd's CPU less that first download's (the fill and one reader), ÷ the other N-1 "
        "clients' GiB. "
        "Clock ticks of 10 ms: small images make coarse figures.",
        f"10. **slowloris**: {sc.slowloris} connections send `GET /versions HTTP/1.1` and then one header line "
        f"every {sc.loris_interval:g} s, never the blank line; meanwhile a normal `GET /versions` every "
        f"{sc.interval:g} s; "
        f"and per slow connection, connect → the server closes it (EOF or reset), capped at {sc.loris_cap:g} s "
        f"(\"not closed within {sc.loris_cap:g} s\"; then we close them).",
        f"11. **open streams**: {sc.open_streams} clients each read {format_size(sc.open_burst)} of the cached "
        f"image at once and then {_rate(sc.open_rate)}, for {sc.seconds:g} s, while the RSS of every process of "
        "the server's group is summed from /proc every 100 ms: the peak; and how many of the streams received "
        "any data (a stream the server has not started is an open socket waiting in a queue).",
        "",
    ]
    detail_rows = []
    for name in ("imagecache", "glance", "limit"):
        slow = (extra.get("slow") or {}).get(name) or []
        loris = (extra.get("slowloris") or {}).get(name) or []
        opened = (extra.get("open") or {}).get(name) or []
        if not (slow or loris or opened):
            continue
        detail_rows.append((
            TARGET_TITLES[name],
            "; ".join(f"{d.get('slow_mib_s')} MiB/s, {d.get('with_data')} got data, {d.get('downloads')} done, "
                      f"{d.get('reader_errors')} errors" for d in slow) or "–",
            "; ".join(f"{d['ttfb']['timed_out']}+{d['health']['timed_out']}" for d in slow if "ttfb" in d) or "–",
            "; ".join(f"{d.get('answers') or 'no answer'}, closed by {d.get('how_closed') or 'nobody'}"
                      for d in loris) or "–",
            "; ".join(f"{d.get('idle_rss_mib')} → {d.get('peak_rss_mib')} MiB "
                      f"({d.get('processes')} process{'es' if d.get('processes') != 1 else ''}), "
                      f"{d.get('streaming_at_end')} streaming at the end" for d in opened) or "–",
            "; ".join(f"{_fmt_s(d.get('recovered_s'))}" for part in ("slow", "slowloris", "open")
                      for d in ((extra.get(part) or {}).get(name) or [])) or "–",
        ))
    if detail_rows:
        from bench.report import markdown_table

        lines += [
            "Details per target (per run):",
            "",
            markdown_table(("target", "7. slow clients: delivered, got data, complete downloads, reader errors",
                            "7. timed out: first byte + healthcheck", "10. what the slow connections got",
                            "11. RSS idle → peak", "healthcheck answers again after 7, 10, 11 (s)"),
                           detail_rows, align="llllll"),
            "",
        ]
    return lines


def _fmt_s(value: Any) -> str:
    return "not within the limit" if value is None else f"{value:g}"


def render_report(config: CompareConfig, results: Results, info: dict[str, Any]) -> str:
    """``python -m bench storm``'s report: facts, the storm rows, the storm section, footnotes, every run."""
    from bench.report import facts_line
    from bench.results import footnotes, runs_listing, table

    facts = info["facts"]
    lines = [
        "# bench storm: imagecache beside Glance 33 and the limit under slow and many clients",
        "",
        f"Produced by `{config.command}` ({info['seconds']:.0f} s in all).",
        "",
        f"- Facts: {facts_line(facts)}; load at the end "
        f"{' '.join(f'{x:.2f}' for x in facts.get('loadavg_at_end') or [])}.",
        *(f"- {name}: `{text}`" for name, text in info.get("targets", {}).items()),
        "",
        table(results),
        "",
        *render_section(config, info),
        "### Notes per figure",
        "",
        *footnotes(results),
        "",
        "### Every run",
        "",
        *runs_listing(results),
        "",
    ]
    return "\n".join(lines)
