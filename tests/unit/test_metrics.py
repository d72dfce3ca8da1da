"""Prometheus metrics: names, labels, independence, multiprocess sums, the /metrics app.

The multiprocess tests never switch this process's prometheus_client to
multiprocess values: every process that calls ``enable_multiprocess`` is a
spawned child (the autouse fixture checks it stayed that way).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from pathlib import Path

import pytest
import webob
from prometheus_client import REGISTRY, values
from prometheus_client.parser import text_string_to_metric_families

from imagecache.metrics import (
    MULTIPROC_ENV,
    NOT_STORED_REASONS,
    ORIGIN_REASONS,
    PASS_REASONS,
    DiskFacts,
    Metrics,
    MetricsApp,
    PinFacts,
    enable_multiprocess,
    reset_multiprocess_dir,
)

COUNTERS = {
    "imagecache_cache_hits_total": (),
    "imagecache_cache_misses_total": (),
    "imagecache_served_bytes_total": ("cache", "upstream"),
    "imagecache_upstream_bytes_total": (),
    "imagecache_fills_total": ("completed", "failed", "abandoned"),
    "imagecache_fill_followers_total": (),
    "imagecache_evictions_total": (),
    "imagecache_peer_bytes_total": (),
    "imagecache_peer_served_bytes_total": (),
    "imagecache_peer_fills_total": ("completed", "failed", "suspect"),
    "imagecache_not_stored_total": NOT_STORED_REASONS,
    "imagecache_origin_requests_total": ORIGIN_REASONS,
    "imagecache_origin_bytes_total": ORIGIN_REASONS,
}
GAUGES = ("imagecache_cache_size_bytes", "imagecache_cache_max_size_bytes")
DISK_GAUGES = ("imagecache_filesystem_free_bytes", "imagecache_cache_min_free_bytes", "imagecache_fills_in_progress")
LABEL = {"imagecache_served_bytes_total": "source", "imagecache_fills_total": "result",
         "imagecache_peer_fills_total": "result", "imagecache_not_stored_total": "reason",
         "imagecache_origin_requests_total": "reason", "imagecache_origin_bytes_total": "reason"}

SampleKey = tuple[str, tuple[tuple[str, str], ...]]


def parse(body: bytes) -> tuple[dict[SampleKey, float], dict[str, str]]:
    """Samples by (name, sorted labels), and family types by family name."""
    samples: dict[SampleKey, float] = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(body.decode("utf-8")):
        types[family.name] = family.type
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = s.value
    return samples, types


def value(samples: dict[SampleKey, float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def expected_keys(*, gauges: bool) -> set[SampleKey]:
    keys: set[SampleKey] = set()
    for name, label_values in COUNTERS.items():
        if label_values:
            keys |= {(name, ((LABEL[name], v),)) for v in label_values}
        else:
            keys.add((name, ()))
    if gauges:
        keys |= {(name, ()) for name in GAUGES}
    return keys


@pytest.fixture(autouse=True)
def single_process_values():
    """This process must never end up in multiprocess mode because of these tests."""
    before = values.ValueClass
    assert MULTIPROC_ENV not in os.environ
    yield
    assert values.ValueClass is before
    assert MULTIPROC_ENV not in os.environ


# -- one process ---------------------------------------------------------------


def test_every_counter_is_exposed_at_zero():
    content_type, body = Metrics().render()
    assert content_type.startswith("text/plain; version=0.0.4")
    samples, types = parse(body)
    assert set(samples) == expected_keys(gauges=False)  # no _created, no gauges
    assert all(v == 0 for v in samples.values())
    assert {types[name.removesuffix("_total")] for name in COUNTERS} == {"counter"}


def test_increments_and_labels_show_up():
    m = Metrics()
    m.cache_hits.inc()
    m.cache_hits.inc(2)
    m.cache_misses.inc()
    m.served_bytes.labels(source="cache").inc(100)
    m.served_bytes.labels(source="upstream").inc(7)
    m.upstream_bytes.inc(50)
    m.fills.labels(result="completed").inc()
    m.fills.labels(result="abandoned").inc(3)
    m.fill_followers.inc(4)
    m.evictions.inc(5)
    samples, _ = parse(m.render()[1])
    assert value(samples, "imagecache_cache_hits_total") == 3
    assert value(samples, "imagecache_cache_misses_total") == 1
    assert value(samples, "imagecache_served_bytes_total", source="cache") == 100
    assert value(samples, "imagecache_served_bytes_total", source="upstream") == 7
    assert value(samples, "imagecache_upstream_bytes_total") == 50
    assert value(samples, "imagecache_fills_total", result="completed") == 1
    assert value(samples, "imagecache_fills_total", result="failed") == 0
    assert value(samples, "imagecache_fills_total", result="abandoned") == 3
    assert value(samples, "imagecache_fill_followers_total") == 4
    assert value(samples, "imagecache_evictions_total") == 5


@pytest.mark.parametrize(
    ("size", "max_size", "present"),
    [
        (None, None, set()),
        (123, None, {"imagecache_cache_size_bytes"}),
        (None, 456, {"imagecache_cache_max_size_bytes"}),
        (0, 456, set(GAUGES)),
    ],
)
def test_gauges_appear_only_when_given(size, max_size, present):
    samples, types = parse(Metrics().render(size, max_size)[1])
    names = {name for name, _ in samples}
    assert names & set(GAUGES) == present
    for name in present:
        assert types[name] == "gauge"
    if "imagecache_cache_size_bytes" in present:
        assert value(samples, "imagecache_cache_size_bytes") == size
    if "imagecache_cache_max_size_bytes" in present:
        assert value(samples, "imagecache_cache_max_size_bytes") == max_size


def test_the_reasons_are_a_small_closed_set_of_label_values():
    """Dashboards group by ``reason``: every value is a short lower-case word, pass reasons are not-stored
    reasons and origin reasons both, and the three tuples say exactly that."""
    assert set(PASS_REASONS) < set(NOT_STORED_REASONS) and set(PASS_REASONS) < set(ORIGIN_REASONS)
    assert set(NOT_STORED_REASONS) - set(PASS_REASONS) == {"abandoned", "no-room"}
    assert set(ORIGIN_REASONS) - set(PASS_REASONS) == {"fill", "peer-fallback", "resume", "prefetch"}
    for reason in {*NOT_STORED_REASONS, *ORIGIN_REASONS}:
        assert reason.replace("-", "").isalpha() and reason.islower() and len(reason) <= 16


def test_origin_bytes_add_up_to_the_upstream_total():
    m = Metrics()
    m.origin_request("fill")(10)
    m.from_origin("resume")(5)
    m.origin_request("range-uncached")(1)
    m.count_not_stored("too-large")
    samples, _ = parse(m.render()[1])
    assert value(samples, "imagecache_upstream_bytes_total") == 16
    assert value(samples, "imagecache_origin_bytes_total", reason="fill") == 10
    assert value(samples, "imagecache_origin_bytes_total", reason="resume") == 5
    assert value(samples, "imagecache_origin_requests_total", reason="fill") == 1
    assert value(samples, "imagecache_origin_requests_total", reason="resume") == 0  # bytes only: no request
    assert value(samples, "imagecache_origin_requests_total", reason="range-uncached") == 1
    assert value(samples, "imagecache_not_stored_total", reason="too-large") == 1


def test_two_metrics_objects_are_independent():
    a, b = Metrics(), Metrics()
    a.cache_hits.inc(5)
    b.fills.labels(result="failed").inc()
    sa, _ = parse(a.render()[1])
    sb, _ = parse(b.render()[1])
    assert value(sa, "imagecache_cache_hits_total") == 5
    assert value(sa, "imagecache_fills_total", result="failed") == 0
    assert value(sb, "imagecache_cache_hits_total") == 0
    assert value(sb, "imagecache_fills_total", result="failed") == 1


def test_nothing_lands_on_the_default_registry():
    Metrics()
    names = set(REGISTRY._names_to_collectors)  # no public listing exists
    assert not {n for n in names if n.startswith("imagecache_")}


def test_multiprocess_dir_without_enable_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="enable_multiprocess"):
        Metrics(multiprocess_dir=str(tmp_path))


# -- several processes ------------------------------------------------------------
# Module-level functions, so the spawn context can import them in the children.


def _worker(directory: str, n: int) -> None:
    enable_multiprocess(directory)
    m = Metrics(multiprocess_dir=directory)
    m.cache_hits.inc(n)
    m.cache_misses.inc()
    m.served_bytes.labels(source="cache").inc(1000 * n)
    m.fills.labels(result="completed").inc()
    m.evictions.inc(n)


def _render(directory: str, out: str, sizes: tuple[int, int] | None) -> None:
    enable_multiprocess(directory)
    m = Metrics(multiprocess_dir=directory)
    m.fill_followers.inc()  # the rendering worker counts too, exactly once
    _, body = m.render(*(sizes or (None, None)))
    Path(out).write_bytes(body)


def _run(target, *args) -> None:
    process = multiprocessing.get_context("spawn").Process(target=target, args=args)
    process.start()
    process.join(60)
    assert process.exitcode == 0, f"{target.__name__} exited with {process.exitcode}"


def _render_in_child(directory: Path, tmp_path: Path, sizes=None) -> dict[SampleKey, float]:
    out = tmp_path / "scrape.txt"
    _run(_render, str(directory), str(out), sizes)
    samples, _ = parse(out.read_bytes())
    return samples


def test_multiprocess_sums_over_processes(tmp_path: Path):
    directory = tmp_path / "prom"
    reset_multiprocess_dir(str(directory))
    for n in (1, 2, 3):
        _run(_worker, str(directory), n)
    assert len(list(directory.glob("counter_*.db"))) == 3

    samples = _render_in_child(directory, tmp_path, sizes=(10, 20))

    assert set(samples) == expected_keys(gauges=True)
    assert value(samples, "imagecache_cache_hits_total") == 6
    assert value(samples, "imagecache_cache_misses_total") == 3
    assert value(samples, "imagecache_served_bytes_total", source="cache") == 6000
    assert value(samples, "imagecache_served_bytes_total", source="upstream") == 0
    assert value(samples, "imagecache_fills_total", result="completed") == 3
    assert value(samples, "imagecache_fills_total", result="failed") == 0
    assert value(samples, "imagecache_evictions_total") == 6
    assert value(samples, "imagecache_fill_followers_total") == 1
    # Computed at scrape time, not summed over the four processes' files.
    assert value(samples, "imagecache_cache_size_bytes") == 10
    assert value(samples, "imagecache_cache_max_size_bytes") == 20


def test_reset_multiprocess_dir_forgets_a_previous_run(tmp_path: Path):
    directory = tmp_path / "prom"
    reset_multiprocess_dir(str(directory))
    assert directory.is_dir()
    _run(_worker, str(directory), 5)
    (directory / "notes.txt").write_text("not ours")

    reset_multiprocess_dir(str(directory))
    assert not list(directory.glob("*.db"))
    assert (directory / "notes.txt").exists()

    _run(_worker, str(directory), 1)
    samples = _render_in_child(directory, tmp_path)
    assert value(samples, "imagecache_cache_hits_total") == 1
    assert set(samples) == expected_keys(gauges=False)


# -- the /metrics app ---------------------------------------------------------------


def _request(app: MetricsApp, method: str) -> webob.Response:
    return webob.Request.blank("/metrics", method=method).get_response(app)


def test_get_answers_the_text_format():
    m = Metrics()
    m.cache_hits.inc()
    response = _request(MetricsApp(m, sizes=lambda: (1, 2)), "GET")
    assert response.status_int == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert int(response.headers["Content-Length"]) == len(response.body)
    samples, _ = parse(response.body)
    assert value(samples, "imagecache_cache_hits_total") == 1
    assert value(samples, "imagecache_cache_size_bytes") == 1
    assert value(samples, "imagecache_cache_max_size_bytes") == 2


def test_head_has_no_body():
    get = _request(MetricsApp(Metrics()), "GET")
    head = _request(MetricsApp(Metrics()), "HEAD")
    assert head.status_int == 200
    assert head.body == b""
    assert head.headers["Content-Type"] == get.headers["Content-Type"]
    assert head.headers["Content-Length"] == get.headers["Content-Length"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_other_methods_are_405(method: str):
    response = _request(MetricsApp(Metrics()), method)
    assert response.status_int == 405
    assert response.headers["Allow"] == "GET, HEAD"


def test_sizes_failing_leaves_out_the_gauges(caplog: pytest.LogCaptureFixture):
    def sizes() -> tuple[int, int]:
        raise OSError("disk gone")

    with caplog.at_level(logging.ERROR, logger="imagecache.metrics"):
        response = _request(MetricsApp(Metrics(), sizes=sizes), "GET")
    assert response.status_int == 200
    samples, _ = parse(response.body)
    assert set(samples) == expected_keys(gauges=False)
    assert "cannot measure the cache" in caplog.text


def test_collection_failing_is_a_500_without_traceback(caplog: pytest.LogCaptureFixture):
    class Broken(Metrics):
        def render(self, *args, **kwargs):
            raise RuntimeError("secret internals")

    with caplog.at_level(logging.ERROR, logger="imagecache.metrics"):
        response = _request(MetricsApp(Broken()), "GET")
    assert response.status_int == 500
    assert response.text.count("\n") == 1
    assert "secret" not in response.text
    assert "Traceback" not in response.text
    assert "secret internals" in caplog.text


# -- the pins' gauges (imagecache.cache.pins) -----------------------------------------


def test_the_pins_gauges_say_how_many_how_much_and_whether_they_alone_exceed_the_limit():
    pins = PinFacts(cached=2, uncached=1, bytes=300, over_limit=True)
    response = _request(MetricsApp(Metrics(), sizes=lambda: (300, 200), pins=lambda: pins), "GET")
    samples, types = parse(response.body)
    assert value(samples, "imagecache_pinned_images", state="cached") == 2
    assert value(samples, "imagecache_pinned_images", state="uncached") == 1
    assert value(samples, "imagecache_pinned_bytes") == 300
    assert value(samples, "imagecache_pinned_over_limit") == 1
    assert {types[name] for name in ("imagecache_pinned_images", "imagecache_pinned_bytes",
                                     "imagecache_pinned_over_limit")} == {"gauge"}
    calm = PinFacts(cached=0, uncached=0, bytes=0, over_limit=False)
    samples, _ = parse(_request(MetricsApp(Metrics(), pins=lambda: calm), "GET").body)
    assert value(samples, "imagecache_pinned_over_limit") == 0


def test_pins_failing_leaves_out_their_gauges_only(caplog: pytest.LogCaptureFixture):
    def pins() -> PinFacts:
        raise OSError("index gone")

    with caplog.at_level(logging.ERROR, logger="imagecache.metrics"):
        response = _request(MetricsApp(Metrics(), sizes=lambda: (1, 2), pins=pins), "GET")
    assert response.status_int == 200
    samples, _ = parse(response.body)
    assert set(samples) == expected_keys(gauges=True)
    assert "cannot read the pins" in caplog.text
# -- the disk's gauges (what a dashboard sets the cache size against) ------------------


def test_disk_gauges_show_the_free_space_the_floor_and_the_fills():
    response = _request(MetricsApp(Metrics(), disk=lambda: DiskFacts(free=7000, min_free=1000, fills=2)), "GET")
    samples, types = parse(response.body)
    assert value(samples, "imagecache_filesystem_free_bytes") == 7000
    assert value(samples, "imagecache_cache_min_free_bytes") == 1000
    assert value(samples, "imagecache_fills_in_progress") == 2
    assert {types[name] for name in DISK_GAUGES} == {"gauge"}


def test_disk_failing_leaves_out_its_gauges_only(caplog: pytest.LogCaptureFixture):
    def disk() -> DiskFacts:
        raise OSError("disk gone")

    with caplog.at_level(logging.ERROR, logger="imagecache.metrics"):
        response = _request(MetricsApp(Metrics(), sizes=lambda: (1, 2), disk=disk), "GET")
    assert response.status_int == 200
    samples, _ = parse(response.body)
    assert set(samples) == expected_keys(gauges=True)
    assert "cannot measure the disk" in caplog.text
