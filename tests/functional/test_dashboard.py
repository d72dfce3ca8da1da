"""The Grafana dashboard on a real Prometheus: every query parses and returns data.

A node (2 workers, over an origin slowed so that a fill lasts long enough
to be joined) is scraped every second by Debian's ``prometheus``; the test
drives a miss, a follower, hits, a Range of an uncached image and an
eviction, waits until Prometheus has scraped the result, then evaluates
every target's ``expr`` of deploy/grafana/imagecache.json through
``/api/v1/query``, with the dashboard's variables set to this node.
Nothing is mocked.
"""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.dashboard import OPTIONAL_METRICS, SCRAPE_SERIES, Query, concrete, load, metric_names, queries
from tests.support.waiting import wait_until

from .conftest import RunningServer
from .prometheus import JOB, Prometheus, prometheus_binary, running_prometheus
from .test_cache_http import create, wait_cached
from .test_fills import MiB, metric, metrics

#: What Grafana would put in the queries here: this node, a window holding every scrape of the test.
RATE_INTERVAL = "1m"
RANGE = "5m"


def exported_names(node: RunningServer) -> set[str]:
    answer = node.request("GET", "/metrics")
    assert answer.status == 200, answer.text
    return {sample.name for family in text_string_to_metric_families(answer.text) for sample in family.samples}


def drive_traffic(node: RunningServer) -> None:
    """A fill with a follower, hits (one a Range), a Range of an uncached image, and an eviction."""
    first, second = os.urandom(4 * MiB), os.urandom(3 * MiB)  # together over the 6 MiB limit
    first_id, second_id = create(node, "alice", first), create(node, "alice", second)
    bodies: list[bytes] = []
    leader = threading.Thread(target=lambda: bodies.append(get(node, first_id).body))
    leader.start()
    # Join the fill while it runs (at 2 MiB/s it lasts about 2 s); if it is over already, this is a hit.
    wait_until(lambda: metric(metrics(node), "imagecache_origin_bytes_total", reason="fill") > 0,
               "the first fill to be under way")
    during = metrics(node)  # one answer, its gauges read before its counters
    if metric(during, "imagecache_origin_bytes_total", reason="fill") < len(first):
        assert metric(during, "imagecache_fills_in_progress") == 1
    assert get(node, first_id).body == first
    leader.join(60)
    assert not leader.is_alive() and bodies == [first]
    wait_cached(node, first_id)
    assert get(node, first_id).body == first
    assert get(node, first_id, {"Range": "bytes=0-99"}).body == first[:100]
    part = get(node, second_id, {"Range": "bytes=-100"})
    assert part.status == 206 and part.headers["cache-status"].endswith("detail=range-uncached")
    assert get(node, second_id).body == second  # its fill evicts the first image at publish
    wait_cached(node, second_id)
    wait_until(lambda: metric(metrics(node), "imagecache_evictions_total") >= 1, "the first image to be evicted")


def get(node: RunningServer, image_id: str, headers: dict[str, str] | None = None) -> Any:
    answer = node.request("GET", f"/v2/images/{image_id}/file", user="alice", headers=headers)
    assert answer.status in (200, 206), answer.text
    return answer


def scraped_after_traffic(prometheus: Prometheus, node: RunningServer) -> bool:
    """Prometheus's latest samples show what the node counted once the traffic was over."""
    now = metrics(node)
    for name, labels in (("imagecache_cache_hits_total", {}), ("imagecache_evictions_total", {}),
                         ("imagecache_fills_total", {"result": "completed"})):
        selector = ",".join([f'job="{JOB}"', *(f'{key}="{value}"' for key, value in labels.items())])
        seen = prometheus.values(f"{name}{{{selector}}}")
        if seen != [metric(now, name, **labels)]:
            return False
    return True


def problem(prometheus: Prometheus, query: Query, expr: str) -> str | None:
    """What is wrong with ``query`` on this Prometheus, or None."""
    answer = prometheus.query(expr)
    if answer.get("status") != "success":
        return f"{query}: {answer.get('errorType')}: {answer.get('error')}"
    result = answer["data"]["result"]
    if answer["data"]["resultType"] != "vector" or not result:
        return f"{query}: no data ({answer['data']['resultType']}, {len(result)} series)"
    if not any(math.isfinite(float(sample["value"][1])) for sample in result):
        return f"{query}: no finite value in {[sample['value'][1] for sample in result]}"
    return None


@pytest.mark.timeout(120)
def test_every_dashboard_query_parses_and_returns_data_on_a_real_prometheus(start_server: Any,
                                                                            tmp_path: Path) -> None:
    binary = prometheus_binary()
    dashboard = load()
    node = start_server(auth="tokens", workers=2, origin=f"throttled:{2 * MiB}", image_cache_max_size="6M")
    instance = f"127.0.0.1:{node.port}"
    values = {"job": JOB, "node": instance, "__rate_interval": RATE_INTERVAL, "__range": RANGE,
              "__interval": "1s"}
    with running_prometheus(binary, tmp_path / "prometheus", [instance]) as prometheus:
        # A first scrape before any traffic, so that rate() and increase() see the counters grow.
        wait_until(lambda: prometheus.values(f'up{{job="{JOB}"}}') == [1.0], "prometheus to scrape the node",
                   describe=lambda: prometheus.logs()[-2000:])
        drive_traffic(node)
        wait_until(lambda: scraped_after_traffic(prometheus, node), "prometheus to scrape the node after the traffic",
                   describe=lambda: prometheus.logs()[-2000:])

        exported = exported_names(node) | SCRAPE_SERIES
        checked, problems = 0, []
        for query in queries(dashboard):
            missing = metric_names(query.expr) - exported
            if missing - OPTIONAL_METRICS:
                problems.append(f"{query}: the node exports no {sorted(missing)}")
                continue
            if missing:
                continue  # a feature this build lacks: its panel shows no data
            found = problem(prometheus, query, concrete(query.expr, values))
            if found:
                problems.append(found)
            checked += 1
        assert not problems, "\n".join(problems)
        assert checked >= len(queries(dashboard)) - 2, "too few queries were checked"
