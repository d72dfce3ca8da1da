"""Request metrics on a real node with the access log off: every request counted by method and code, and timed.

Two workers, so the counts must be summed over processes (the scrape lands
on one worker only); the requests are spread by opening a connection each.
"""

from __future__ import annotations

import os
from typing import Any

from tests.support.waiting import wait_until

from .test_cache_http import create
from .test_fills import metric, metrics


def test_requests_are_counted_by_method_and_code_and_timed_with_the_access_log_off(start_server: Any) -> None:
    server = start_server(auth="none", settings={"access_log": "off"})
    data = os.urandom(4096)
    image_id = create(server, "admin", data)
    before = metrics(server)
    for _ in range(5):
        assert server.request("GET", f"/v2/images/{image_id}/file").status == 200
    assert server.request("GET", "/v2/images/00000000-0000-0000-0000-000000000000").status == 404
    assert server.request("BREW", "/v2/images").status == 405

    def counted() -> dict:
        values = metrics(server)
        got = {key: metric(values, "imagecache_http_requests_total", method=key[0], code=key[1])
               - metric(before, "imagecache_http_requests_total", method=key[0], code=key[1])
               for key in (("GET", "200"), ("GET", "404"), ("OTHER", "405"))}
        return got if got[("GET", "200")] >= 5 else {}

    got = wait_until(counted, "the five downloads counted", timeout=30)
    assert got[("GET", "404")] == 1 and got[("OTHER", "405")] == 1
    values = metrics(server)
    timed = metric(values, "imagecache_http_request_duration_seconds_count", method="GET")
    assert timed >= 6  # the downloads and the 404 at least
    assert metric(values, "imagecache_http_request_duration_seconds_bucket", method="GET", le="+Inf") == timed
    assert f"GET /v2/images/{image_id}/file" not in server.logs()  # no access log


def test_the_access_log_is_on_by_default(start_server: Any) -> None:
    server = start_server(auth="none")
    assert server.request("GET", "/versions").status == 200
    wait_until(lambda: '"GET /versions HTTP/1.1" 200' in server.logs(), "the access line", timeout=30)
