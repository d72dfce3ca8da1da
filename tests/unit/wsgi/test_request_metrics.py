"""Request metrics: bounded labels (hypothesis), and the middleware counting what the app answered."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from imagecache.wsgi.request_metrics import METHODS, RequestCounters, RequestMetrics, code_label, method_label


@given(st.text(max_size=20))
def test_a_method_label_is_one_of_a_fixed_few(method: str) -> None:
    assert method_label(method) in METHODS | {"OTHER"}
    assert (method_label(method) == method) == (method in METHODS)


@given(st.integers(min_value=100, max_value=999), st.text(max_size=20))
def test_a_status_lines_code_is_its_three_digits(code: int, reason: str) -> None:
    assert code_label(f"{code} {reason}") == str(code)


@given(st.text(max_size=20))
def test_any_status_gives_three_digits(status: str) -> None:
    label = code_label(status)
    assert len(label) == 3 and label.isdigit()
    assert label == "000" or status.startswith(label)


def _sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_the_middleware_counts_codes_and_times_to_the_headers() -> None:
    registry = CollectorRegistry()
    ticks = iter([10.0, 10.25, 20.0, 20.5, 30.0, 31.0])
    body = [b"x"]

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/boom":
            raise RuntimeError("boom")
        start_response(environ["PATH_INFO"][1:], [])
        return body

    counted = RequestMetrics(app, RequestCounters(registry), clock=lambda: next(ticks))
    assert counted({"REQUEST_METHOD": "GET", "PATH_INFO": "/200 OK"}, lambda *a: None) is body  # passed on as is
    counted({"REQUEST_METHOD": "BREW", "PATH_INFO": "/418 I'm a teapot"}, lambda *a: None)
    with pytest.raises(RuntimeError):
        counted({"REQUEST_METHOD": "GET", "PATH_INFO": "/boom"}, lambda *a: None)
    assert _sample(registry, "imagecache_http_requests_total", method="GET", code="200") == 1
    assert _sample(registry, "imagecache_http_requests_total", method="OTHER", code="418") == 1
    assert _sample(registry, "imagecache_http_requests_total", method="GET", code="500") == 1
    assert _sample(registry, "imagecache_http_request_duration_seconds_sum", method="GET") == pytest.approx(1.25)
    assert _sample(registry, "imagecache_http_request_duration_seconds_bucket", method="GET", le="0.25") == 1
    assert _sample(registry, "imagecache_http_request_duration_seconds_count", method="OTHER") == 1
