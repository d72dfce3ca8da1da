"""The node under slow and too many clients: deadlines, a connection limit, a lane for health.

Small and bounded: a handful of sockets on loopback, short deadlines set for
the test, every wait a condition with a deadline.
"""

from __future__ import annotations

import http.client
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.waiting import wait_until

from .conftest import RunningServer
from .test_cache_http import cache_listing, create
from .test_fills import Download, MiB, metric, metrics, run_together

HEADER_DEADLINE = 2.0


def get(server: RunningServer, path: str, timeout: float = 30.0) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        connection.close()


def open_slow(server: RunningServer, first: bytes = b"GET /versions HTTP/1.1\r\n") -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=30)
    sock.sendall(first)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


@pytest.fixture
def slow_sockets() -> Iterator[list[socket.socket]]:
    sockets: list[socket.socket] = []
    yield sockets
    for sock in sockets:
        sock.close()


def test_a_slow_header_is_answered_408_and_closed_while_others_are_served(start_server: Any, slow_sockets) -> None:
    server = start_server(settings={"client_header_timeout": HEADER_DEADLINE})
    started = time.monotonic()
    slow_sockets.extend(open_slow(server) for _ in range(8))
    for sock in slow_sockets:
        sock.sendall(b"X-Slow: 1\r\n")  # still no end of header
    served = 0
    while time.monotonic() - started < HEADER_DEADLINE:
        assert get(server, "/versions")[0] == 200
        served += 1
    assert served > 0
    for sock in slow_sockets:
        answer = read_until_closed(sock)  # the server closes it: recv sees the end
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
    assert time.monotonic() - started >= HEADER_DEADLINE  # not before its deadline
    wait_until(lambda: "request header took over" in server.logs(), "the log line of the closed header")


def test_past_max_connections_a_new_client_gets_503_at_once(start_server: Any, slow_sockets) -> None:
    server = start_server(workers=1, settings={"max_connections": 4})
    slow_sockets.extend(open_slow(server) for _ in range(4))
    wait_until(lambda: get(server, "/versions")[0] == 503, "a connection past the limit to be refused")
    status, headers, body = get(server, "/healthcheck")
    assert status == 503 and headers["retry-after"] == "1" and b'"code": 503' in body
    for sock in slow_sockets:
        sock.close()
    wait_until(lambda: get(server, "/versions")[0] == 200, "the node to take connections again")


def test_health_and_metrics_answer_while_every_thread_is_busy(start_server: Any, slow_sockets) -> None:
    server = start_server(workers=1, auth="none", settings={"threads": 2})
    image_id = create(server, "admin", b"x")
    upload = (f"PUT /v2/images/{image_id}/file HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\n"
              f"Content-Length: 1000000\r\n\r\n").encode()
    # Two uploads that never finish their bodies hold both request threads.
    slow_sockets.extend(open_slow(server, upload + b"x" * 10) for _ in range(2))
    for _ in range(3):
        assert get(server, "/healthcheck", timeout=10)[0] == 200
        assert get(server, "/metrics", timeout=10)[0] == 200


def test_first_downloads_beyond_the_thread_count_all_follow_the_fill_at_once(start_server: Any) -> None:
    # Two request threads and twelve first downloads of an image whose fill takes about 4 s.  A
    # follower that held its thread to the end would leave ten clients waiting until the fill is
    # over (they would then be hits); sent from the loop, every one follows the fill as it grows.
    server = start_server(workers=1, auth="tokens", origin=f"throttled:{8 * MiB}", settings={"threads": 2})
    data = os.urandom(32 * MiB)
    image_id = create(server, "alice", data)
    downloads = [Download(server, image_id) for _ in range(12)]
    run_together(downloads)
    for download in downloads:
        assert download.error is None and download.status == 200, (download.status, download.error)
        assert download.body == data
    wait_until(lambda: image_id in cache_listing(server), "the image to be listed as cached")
    values = metrics(server)
    followers, hits = metric(values, "imagecache_fill_followers_total"), metric(values, "imagecache_cache_hits_total")
    assert followers + hits == 11, server.logs()[-4000:]
    assert followers >= 10, f"only {followers:.0f} of 11 followed the fill: the rest waited for a thread"
    assert metric(values, "imagecache_upstream_bytes_total") == len(data)


def test_a_client_that_stops_reading_a_hit_is_closed_after_the_send_timeout(start_server: Any, slow_sockets) -> None:
    server = start_server(auth="none", settings={"send_timeout": 2})
    data = os.urandom(32 << 20)
    image_id = create(server, "admin", data)
    assert get(server, f"/v2/images/{image_id}/file")[2] == data
    assert image_id in cache_listing(server)
    sock = socket.create_connection((server.host, server.port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    slow_sockets.append(sock)
    sock.sendall(f"GET /v2/images/{image_id}/file HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    sock.recv(1024)  # the answer has started; now read nothing more
    wait_until(lambda: "it read nothing for" in server.logs(), "the node to close the stalled reader",
               describe=server.logs)
    assert get(server, "/healthcheck")[0] == 200


def test_kept_alive_connections_carry_hits_ranges_and_misses(start_server: Any) -> None:
    server = start_server(auth="none")
    data = os.urandom((3 << 20) + 5)
    image_id = create(server, "admin", data)
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        for headers, expected, status in [
            ({}, data, 200),  # the miss (a fill)
            ({}, data, 200),  # a hit, sent from the loop
            ({"Range": "bytes=10-2000000"}, data[10:2000001], 206),
            ({"Range": "bytes=-3"}, data[-3:], 206),
            ({}, data, 200),
        ]:
            connection.request("GET", f"/v2/images/{image_id}/file", headers=headers)
            answer = connection.getresponse()
            assert (answer.status, answer.read()) == (status, expected)
        connection.request("GET", "/v2/cache")
        assert connection.getresponse().read().count(image_id.encode()) == 1
    finally:
        connection.close()
    assert cache_listing(server)[image_id]["hits"] == 4


def test_pipelined_requests_after_a_hit_are_answered(start_server: Any) -> None:
    server = start_server(auth="none")
    data = os.urandom(1 << 20)
    image_id = create(server, "admin", data)
    assert get(server, f"/v2/images/{image_id}/file")[2] == data  # cached now
    request = f"GET /v2/images/{image_id}/file HTTP/1.1\r\nHost: t\r\n\r\n".encode()
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        sock.sendall(request * 2 + b"GET /versions HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        received = read_until_closed(sock)
    assert received.count(b"HTTP/1.1 200 OK") == 3
    assert received.count(data) == 2
