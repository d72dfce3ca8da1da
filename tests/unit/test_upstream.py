"""UpstreamApp against a real HTTP/1.1 upstream on loopback, called in-process like a WSGI server would.

The upstream (tests/unit/upstream_helpers.py) records what came over the
wire, so these tests check the bytes the proxy sent, not what it meant to.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imagecache.upstream import UPSTREAM_ERROR_HEADER, UpstreamApp, UpstreamBodyError
from tests.support.waiting import wait_until

from .upstream_helpers import Answer, Exchange, Upstream, call, echo, environ, free_port, self_signed_certificate

MiB = 1 << 20
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade",
              "proxy-authorization", "proxy-authenticate", "trailer"}


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.stop()


@pytest.fixture
def app(upstream: Upstream) -> Iterator[UpstreamApp]:
    proxy = UpstreamApp(upstream.url + "/image", timeout=5)
    yield proxy
    proxy.close()


def pattern(size: int) -> bytes:
    """``size`` bytes that differ from one MiB to the next (a shifted or lost chunk shows)."""
    block = hashlib.sha256(b"seed").digest() * (MiB // 32)
    return b"".join(i.to_bytes(8, "big") + block[8:] for i in range(size // MiB + 1))[:size]


# -- the request ---------------------------------------------------------------------------


def test_path_prefix_and_raw_target_are_forwarded_exactly(app: UpstreamApp, upstream: Upstream) -> None:
    raw = "/v2/images/a%2Fb%20c%25d/file"
    query = "name=x%26y&tag=%E2%9C%93&plus=a+b&empty=&flag"
    answer = call(app, environ("GET", raw + "?" + query, RAW_URI=raw + "?" + query))
    assert answer.status == 200
    assert answer.json()["target"] == f"/image{raw}?{query}"
    assert upstream.last.target == f"/image{raw}?{query}"


def test_urllib3_normalises_what_is_equivalent_and_nothing_else(app: UpstreamApp, upstream: Upstream) -> None:
    # urllib3 upper-cases escapes and escapes what a target may not hold raw
    # (RFC 3986 §6.2.2.1: the same URI); a stray "%" must not make it
    # re-escape the valid escapes next to it.
    raw = "/a%2fb%7e?x=[1]&p=100%&q=%2F"
    call(app, environ("GET", "/a/b~", QUERY_STRING="x=[1]&p=100%&q=%2F", RAW_URI=raw)).read()
    assert upstream.last.target == "/image/a%2Fb%7E?x=%5B1%5D&p=100%25&q=%2F"


def test_script_name_is_not_forwarded(app: UpstreamApp, upstream: Upstream) -> None:
    env = environ("GET", "/v2/images%2Fx", RAW_URI="/mount%20point/v2/images%2Fx?limit=2",
                  SCRIPT_NAME="/mount point", PATH_INFO="/v2/images/x", QUERY_STRING="limit=2")
    assert call(app, env).read()
    assert upstream.last.target == "/image/v2/images%2Fx?limit=2"


def test_without_raw_uri_the_decoded_path_is_quoted(app: UpstreamApp, upstream: Upstream) -> None:
    env = environ("GET", "/", PATH_INFO="/v2/images/a b%/x:y@z", QUERY_STRING="q=%20")
    call(app, env).read()
    assert upstream.last.target == "/image/v2/images/a%20b%25/x:y@z?q=%20"


def test_a_raw_uri_that_does_not_match_path_info_is_ignored(app: UpstreamApp, upstream: Upstream) -> None:
    # A middleware rewrote PATH_INFO (or a sub-request kept the caller's RAW_URI).
    env = environ("GET", "/v2/images/meta", RAW_URI="/v2/images/original%2Fpath/file?x=1")
    call(app, env).read()
    assert upstream.last.target == "/image/v2/images/meta"


def test_no_prefix_and_empty_path(upstream: Upstream) -> None:
    with_slash = UpstreamApp(upstream.url + "/")
    try:
        call(with_slash, environ("GET", "/", PATH_INFO="")).read()
        assert upstream.last.target == "/"
        call(with_slash, environ("GET", "/versions")).read()
        assert upstream.last.target == "/versions"
    finally:
        with_slash.close()


def test_end_to_end_headers_go_and_hop_by_hop_ones_do_not(app: UpstreamApp, upstream: Upstream) -> None:
    headers = {
        "X-Auth-Token": "s3cret-token",
        "Content-Type": "application/octet-stream",
        "X-Image-Meta-Name": "cirros",
        "Range": "bytes=0-9",
        "Connection": "keep-alive, X-Private-Hop",
        "X-Private-Hop": "only for the next hop",
        "Keep-Alive": "timeout=5",
        "Proxy-Connection": "keep-alive",
        "TE": "trailers",
        "Upgrade": "h2c",
        "Proxy-Authorization": "Basic Zm9vOmJhcg==",
        "Trailer": "X-Checksum",
        "Expect": "100-continue",
        "Host": "node.example:9292",
        "X-Forwarded-For": "203.0.113.1",
        "Via": "1.1 lb",
    }
    answer = call(app, environ("PUT", "/v2/images/x/file", headers=headers, body=b"0123456789"))
    assert answer.status == 200
    answer.read()
    got = upstream.last
    assert got.method == "PUT" and got.body == b"0123456789"
    assert got.header("X-Auth-Token") == "s3cret-token"
    assert got.header("Content-Type") == "application/octet-stream"
    assert got.header("X-Image-Meta-Name") == "cirros"
    assert got.header("Range") == "bytes=0-9"
    assert got.header("Content-Length") == "10"
    assert not got.names & (HOP_BY_HOP | {"x-private-hop", "expect"})
    assert got.all("Host") == [f"127.0.0.1:{upstream.port}"]
    assert got.header("X-Forwarded-For") == "203.0.113.1, 192.0.2.7"
    assert got.header("X-Forwarded-Host") == "node.example:9292"
    assert got.header("X-Forwarded-Proto") == "http"
    assert got.header("Via") == "1.1 lb, 1.1 imagecache"
    # Nothing the client did not send is made up.
    assert "user-agent" not in got.names and "accept-encoding" not in got.names


def test_forwarded_host_and_proto_from_a_proxy_in_front_are_kept(app: UpstreamApp, upstream: Upstream) -> None:
    headers = {"X-Forwarded-Host": "images.example", "X-Forwarded-Proto": "https", "User-Agent": "glanceclient"}
    call(app, environ("GET", "/v2/images", headers=headers, REMOTE_ADDR="10.0.0.5")).read()
    got = upstream.last
    assert got.header("X-Forwarded-Host") == "images.example"
    assert got.header("X-Forwarded-Proto") == "https"
    assert got.header("X-Forwarded-For") == "10.0.0.5"
    assert got.header("User-Agent") == "glanceclient"


def test_a_sub_request_without_wsgi_input(app: UpstreamApp, upstream: Upstream) -> None:
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/v2/images/x", "SCRIPT_NAME": "", "QUERY_STRING": "",
           "SERVER_NAME": "node", "SERVER_PORT": "9292", "wsgi.url_scheme": "http",
           "HTTP_X_AUTH_TOKEN": "t"}
    assert call(app, env).json()["target"] == "/image/v2/images/x"
    assert upstream.last.header("X-Forwarded-Host") == "node:9292"
    assert upstream.last.header("Via") == "1.1 imagecache" and "x-forwarded-for" not in upstream.last.names


def test_an_empty_post_says_content_length_0(app: UpstreamApp, upstream: Upstream) -> None:
    call(app, environ("POST", "/v2/images/x/actions/deactivate", body=b"")).read()
    assert upstream.last.header("Content-Length") == "0"
    assert "transfer-encoding" not in upstream.last.names


class GatedInput(io.RawIOBase):
    """wsgi.input of ``size`` bytes that stops at ``gate`` until ``opened`` is set.

    If the proxy read the whole body before sending any of it, the
    upstream would never see a byte, the gate would never open, and the
    read would fail: a deterministic test of streaming.
    """

    def __init__(self, data: bytes, gate: int, opened: threading.Event) -> None:
        self.data = memoryview(data)
        self.offset = 0
        self.gate = gate
        self.opened = opened
        self.largest_read = 0

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        assert size is not None and size >= 0, "the proxy must never read the whole body at once"
        self.largest_read = max(self.largest_read, size)
        if self.offset >= self.gate and not self.opened.is_set() and not self.opened.wait(10):
            raise OSError("the upstream got nothing before the client finished: the body was buffered")
        end = min(self.offset + size, len(self.data) if self.offset >= self.gate else self.gate)
        piece = bytes(self.data[self.offset:end])
        self.offset = end
        return piece


class Zeros(io.RawIOBase):
    """wsgi.input of ``size`` zero bytes, made as they are read."""

    def __init__(self, size: int) -> None:
        self.remaining = size

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        piece = min(size, self.remaining)
        self.remaining -= piece
        return bytes(piece)


def test_a_64_mib_upload_is_streamed(app: UpstreamApp, upstream: Upstream) -> None:
    data = pattern(64 * MiB)
    arrived = threading.Event()
    upstream.body_progress = lambda size: arrived.set() if size >= MiB else None
    body = GatedInput(data, gate=8 * MiB, opened=arrived)
    env = environ("PUT", "/v2/images/x/file", headers={"Content-Type": "application/octet-stream"},
                  CONTENT_LENGTH=str(len(data)))
    env["wsgi.input"] = body
    answer = call(app, env)
    assert answer.status == 200, answer.read()
    assert answer.json() == {"method": "PUT", "target": "/image/v2/images/x/file", "size": len(data),
                             "sha256": hashlib.sha256(data).hexdigest()}
    assert arrived.is_set() and body.offset == len(data)
    assert body.largest_read <= MiB
    got = upstream.last
    assert got.header("Content-Length") == str(len(data)) and "transfer-encoding" not in got.names


def test_a_chunked_upload_is_sent_chunked(app: UpstreamApp, upstream: Upstream) -> None:
    data = pattern(3 * MiB + 5)
    env = environ("PUT", "/v2/images/x/file", headers={"Transfer-Encoding": "chunked"},
                  **{"wsgi.input_terminated": True})
    env.pop("CONTENT_LENGTH", None)
    env["wsgi.input"] = io.BytesIO(data)
    assert call(app, env).json()["sha256"] == hashlib.sha256(data).hexdigest()
    got = upstream.last
    assert got.header("Transfer-Encoding") == "chunked" and "content-length" not in got.names


def test_a_chunked_upload_the_server_cannot_delimit_is_refused(app: UpstreamApp, upstream: Upstream) -> None:
    env = environ("PUT", "/v2/images/x/file", headers={"Transfer-Encoding": "chunked"})
    env.pop("CONTENT_LENGTH", None)
    answer = call(app, env)
    assert answer.status == 411
    assert UPSTREAM_ERROR_HEADER.lower() not in answer.names
    answer.read()
    assert upstream.requests == []


def test_a_client_body_that_breaks_off_is_a_400(app: UpstreamApp, upstream: Upstream) -> None:
    env = environ("PUT", "/v2/images/x/file", CONTENT_LENGTH=str(5 * MiB))
    env["wsgi.input"] = io.BytesIO(b"x" * (2 * MiB))
    answer = call(app, env)
    assert answer.status == 400
    assert "short of its Content-Length" in answer.json()["error"]["message"]
    # The proxy is still fine afterwards.
    assert call(app, environ("GET", "/v2/images")).status == 200


# -- the response --------------------------------------------------------------------------


def test_hop_by_hop_response_headers_are_dropped(app: UpstreamApp, upstream: Upstream) -> None:
    def respond(exchange: Exchange) -> None:
        exchange.send(200, [
            ("Content-Type", "application/octet-stream"),
            ("Content-MD5", "d41d8cd98f00b204e9800998ecf8427e"),
            ("Connection", "X-Hop-Only"), ("X-Hop-Only", "1"),
            ("Keep-Alive", "timeout=5"), ("Proxy-Authenticate", "Basic"), ("Upgrade", "h2c"),
            ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"),
            ("Via", "1.1 origin"),
        ], b"payload")

    upstream.respond = respond
    answer = call(app, environ("GET", "/v2/images/x/file"))
    assert answer.status == 200
    assert not answer.names & (HOP_BY_HOP | {"x-hop-only"})
    assert answer.header("Content-MD5") == "d41d8cd98f00b204e9800998ecf8427e"
    assert answer.header("Content-Length") == "7"
    assert [v for k, v in answer.headers if k.lower() == "set-cookie"] == ["a=1", "b=2"]
    assert answer.header("Via") == "1.1 origin, 1.1 imagecache"
    assert answer.read() == b"payload"


def test_a_chunked_response_loses_its_framing_not_its_bytes(app: UpstreamApp, upstream: Upstream) -> None:
    data = pattern(3 * MiB + 17)

    def respond(exchange: Exchange) -> None:
        exchange.send(200, [("Content-Type", "application/octet-stream")],
                      (data[i:i + 100_000] for i in range(0, len(data), 100_000)), chunked=True)

    upstream.respond = respond
    answer = call(app, environ("GET", "/v2/images/x/file"))
    assert "transfer-encoding" not in answer.names and "content-length" not in answer.names
    assert answer.read() == data


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        (201, [("Location", "/v2/images/new"), ("Content-Type", "application/json")], b'{"id": "new"}'),
        (204, [], b""),
        (304, [("ETag", '"abc"')], b""),
        (404, [("Content-Type", "application/json")], b'{"message": "no such image"}'),
        (301, [("Location", "http://elsewhere.example/v2/images?x=%2F")], b"moved"),
        (302, [("Location", "/v2/images/other")], b""),
        (307, [("Location", "https://other.example:9292/v2/x")], b""),
        (500, [("Content-Type", "text/plain")], b"upstream broke"),
        (502, [("Content-Type", "text/plain")], b"upstream's own 502"),
        (503, [("Retry-After", "5")], b"busy"),
    ],
)
def test_status_headers_and_body_pass_through(
    app: UpstreamApp, upstream: Upstream, status: int, headers: list[tuple[str, str]], body: bytes
) -> None:
    upstream.respond = lambda exchange: exchange.send(status, headers, body)
    answer = call(app, environ("GET", "/v2/images/x", headers={"If-None-Match": '"abc"'}))
    assert answer.status == status
    for key, value in headers:
        assert answer.header(key) == value
    assert UPSTREAM_ERROR_HEADER.lower() not in answer.names
    assert answer.read() == body
    assert len(upstream.requests) == 1  # redirects are passed on, never followed


def test_the_reason_phrase_is_kept(app: UpstreamApp, upstream: Upstream) -> None:
    upstream.respond = lambda exchange: exchange.send(418, body=b"short and stout", reason="I'm a teapot")
    answer = call(app, environ("GET", "/"))
    assert (answer.status, answer.reason) == (418, "I'm a teapot")
    answer.read()


def test_head_has_no_body_and_keeps_its_length(app: UpstreamApp, upstream: Upstream) -> None:
    def respond(exchange: Exchange) -> None:
        exchange.send(200, [("Content-Length", "123456"), ("Content-MD5", "abc")], b"x" * 123456)

    upstream.respond = respond
    answer = call(app, environ("HEAD", "/v1/images/x"))
    assert answer.status == 200 and answer.header("Content-Length") == "123456"
    assert answer.read() == b""
    upstream.respond = echo
    assert call(app, environ("GET", "/after")).status == 200
    first, second = upstream.requests
    assert first.method == "HEAD"
    assert second.client_port == first.client_port  # the connection went back to the pool


def test_responses_read_to_the_end_reuse_one_connection(app: UpstreamApp, upstream: Upstream) -> None:
    for _ in range(5):
        call(app, environ("GET", "/v2/images")).read()
    assert len({got.client_port for got in upstream.requests}) == 1


def test_a_64_mib_download_is_streamed(app: UpstreamApp, upstream: Upstream) -> None:
    data = pattern(64 * MiB)
    first_chunk_out = threading.Event()
    held = []

    def respond(exchange: Exchange) -> None:
        exchange.head(200, [("Content-Length", str(len(data))), ("Content-Type", "application/octet-stream")])
        exchange.write(data[:MiB])
        # The rest only once the proxy's client has the first chunk: a proxy
        # that read the whole body first would wait here until its timeout.
        held.append(first_chunk_out.wait(10))
        for offset in range(MiB, len(data), 4 * MiB):
            exchange.write(data[offset:offset + 4 * MiB])

    upstream.respond = respond
    answer = call(app, environ("GET", "/v2/images/x/file"))
    assert answer.header("Content-Length") == str(len(data))
    chunks = answer.chunks()
    first = next(chunks)
    first_chunk_out.set()
    digest, size, largest = hashlib.sha256(first), len(first), len(first)
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
        largest = max(largest, len(chunk))
    answer.close()
    assert held == [True]
    assert size == len(data) and digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert largest <= MiB


def test_a_client_that_leaves_early_does_not_return_a_half_read_connection(
    app: UpstreamApp, upstream: Upstream
) -> None:
    data = pattern(16 * MiB)
    writer_failed = threading.Event()

    def respond(exchange: Exchange) -> None:
        if exchange.received.target.endswith("/big"):
            try:
                exchange.send(200, [("Content-Type", "application/octet-stream")],
                              (data[i:i + MiB] for i in range(0, len(data), MiB)))
            except OSError:
                writer_failed.set()
                raise
        else:
            echo(exchange)

    upstream.respond = respond
    answer = call(app, environ("GET", "/big"))
    assert len(next(answer.chunks())) > 0
    answer.close()  # the client went away
    assert writer_failed.wait(5), "the upstream connection was not closed"
    after = call(app, environ("GET", "/small"))
    assert after.json()["target"] == "/image/small"
    big, small = upstream.requests
    assert small.client_port != big.client_port


def test_a_small_rest_is_drained_and_the_connection_kept(app: UpstreamApp, upstream: Upstream) -> None:
    upstream.respond = lambda exchange: exchange.send(404, [("Content-Type", "text/plain")], b"n" * 30_000)
    answer = call(app, environ("GET", "/missing"))
    assert answer.status == 404
    answer.close()  # nobody read the error page
    upstream.respond = echo
    call(app, environ("GET", "/next")).read()
    first, second = upstream.requests
    assert second.client_port == first.client_port


# -- failures ------------------------------------------------------------------------------


def error_of(answer: Answer) -> dict[str, Any]:
    assert answer.header("Content-Type") == "application/json"
    document = answer.json()
    assert set(document) == {"error"} and set(document["error"]) == {"code", "title", "message"}
    assert document["error"]["code"] == answer.status
    return document["error"]


def test_an_upstream_that_is_down_is_a_502(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    proxy = UpstreamApp(f"http://127.0.0.1:{port}/image", timeout=5)
    caplog.set_level(logging.WARNING, "imagecache.upstream")
    try:
        started = time.monotonic()
        answer = call(proxy, environ("GET", "/v2/images"))
        assert time.monotonic() - started < 2
        assert answer.status == 502
        assert answer.header(UPSTREAM_ERROR_HEADER) == "unreachable"
        error = error_of(answer)
        assert error["title"] == "Bad Gateway"
        assert f"127.0.0.1:{port}" in error["message"] and "refused" in error["message"].lower()
        head = call(proxy, environ("HEAD", "/v2/images"))
        assert head.status == 502 and head.read() == b""
        put = call(proxy, environ("PUT", "/v2/images/x/file", body=b"data"))
        assert put.status == 502 and put.header(UPSTREAM_ERROR_HEADER) == "unreachable"
        put.read()
    finally:
        proxy.close()
    records = [r for r in caplog.records if r.name == "imagecache.upstream"]
    assert len(records) == 3 and all(r.exc_info is None for r in records)


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_to_a_plain_http_upstream_is_a_502(upstream: Upstream) -> None:
    proxy = UpstreamApp(f"https://127.0.0.1:{upstream.port}", timeout=5, insecure=True)
    try:
        answer = call(proxy, environ("GET", "/v2/images"))
        assert answer.status == 502 and answer.header(UPSTREAM_ERROR_HEADER) == "unreachable"
        assert "TLS" in error_of(answer)["message"]
    finally:
        proxy.close()


@pytest.fixture
def tls_upstream(tmp_path: Path) -> Iterator[tuple[Upstream, Path]]:
    pytest.importorskip("cryptography")
    cert, key = self_signed_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = Upstream(tls=context)
    yield server, cert
    server.stop()


def test_https_upstream_verified_with_ca_file(tls_upstream: tuple[Upstream, Path]) -> None:
    upstream, cert = tls_upstream
    proxy = UpstreamApp(upstream.url + "/image", ca_file=str(cert), timeout=5)
    try:
        answer = call(proxy, environ("PUT", "/v2/images/x/file", body=b"over tls", RAW_URI="/v2/images/x/file"))
        assert answer.json()["target"] == "/image/v2/images/x/file"
        assert upstream.last.body == b"over tls"
        assert upstream.last.header("X-Forwarded-Proto") == "http"  # what the client used, not the upstream
    finally:
        proxy.close()


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_https_upstream_with_an_unknown_certificate(tls_upstream: tuple[Upstream, Path]) -> None:
    upstream, _ = tls_upstream
    strict, insecure = UpstreamApp(upstream.url, timeout=5), UpstreamApp(upstream.url, timeout=5, insecure=True)
    try:
        refused = call(strict, environ("GET", "/v2/images"))
        assert refused.status == 502 and refused.header(UPSTREAM_ERROR_HEADER) == "unreachable"
        message = error_of(refused)["message"]
        assert message.startswith(f"TLS with the image service at 127.0.0.1:{upstream.port} failed")
        assert "certificate verify failed" in message
        assert call(insecure, environ("GET", "/v2/images")).status == 200
    finally:
        strict.close()
        insecure.close()


def test_an_upstream_that_never_answers_is_a_504(upstream: Upstream) -> None:
    upstream.respond = Exchange.hang
    # Long enough that a busy machine's overhead cannot pass for a second wait.
    timeout = 2.0
    proxy = UpstreamApp(upstream.url, timeout=timeout)
    try:
        for method in ("GET", "POST"):
            started = time.monotonic()
            answer = call(proxy, environ(method, "/v2/images", body=b"{}" if method == "POST" else None))
            elapsed = time.monotonic() - started
            assert answer.status == 504, method
            assert 0.8 * timeout < elapsed < 1.9 * timeout, (
                f"{method}: a timeout must not be waited for twice ({elapsed:.2f} s)")
            assert answer.header(UPSTREAM_ERROR_HEADER) == "timeout"
            error = error_of(answer)
            assert error["title"] == "Gateway Timeout"
            assert f"127.0.0.1:{upstream.port}" in error["message"] and f"{timeout:g} s" in error["message"]
    finally:
        proxy.close()


def is_connected(sock: socket.socket) -> bool:
    try:
        sock.getpeername()
    except OSError:  # ENOTCONN: its handshake is still pending
        return False
    return True


def test_an_upstream_that_accepts_no_connection_is_a_504() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        # Fill the accept queue: further SYNs are dropped, so connecting hangs.
        queued = []
        for _ in range(8):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            queued.append(sock)
        # listen(0): the queue is full once one of them is established.
        wait_until(lambda: any(is_connected(sock) for sock in queued), "the listener's accept queue to fill")
        proxy = UpstreamApp(f"http://127.0.0.1:{port}", timeout=30, connect_timeout=0.3)
        try:
            started = time.monotonic()
            answer = call(proxy, environ("GET", "/v2/images"))
            elapsed = time.monotonic() - started
        finally:
            proxy.close()
            for sock in queued:
                sock.close()
    assert answer.status == 504 and answer.header(UPSTREAM_ERROR_HEADER) == "timeout"
    assert "did not accept a connection" in error_of(answer)["message"]
    assert elapsed < 5  # the 0.3 s connect timeout, not the 30 s one


def test_an_upstream_that_stops_reading_an_upload_is_a_504(upstream: Upstream) -> None:
    upstream.read_bodies = False
    upstream.respond = Exchange.hang
    proxy = UpstreamApp(upstream.url, timeout=0.5)
    try:
        env = environ("PUT", "/v2/images/x/file", CONTENT_LENGTH=str(256 * MiB))
        env["wsgi.input"] = Zeros(256 * MiB)  # far more than socket buffers hold
        answer = call(proxy, env)
        assert answer.status == 504 and answer.header(UPSTREAM_ERROR_HEADER) == "timeout"
        assert "did not answer within 0.5 s" in error_of(answer)["message"]
    finally:
        proxy.close()


def test_a_get_on_a_connection_the_upstream_dropped_is_tried_again(app: UpstreamApp, upstream: Upstream) -> None:
    def respond(exchange: Exchange) -> None:
        if exchange.received.nth_on_connection == 2:
            exchange.die()  # a keep-alive connection closed just as it was reused
        else:
            echo(exchange)

    upstream.respond = respond
    assert call(app, environ("GET", "/one")).json()["target"] == "/image/one"
    answer = call(app, environ("GET", "/two"))
    assert answer.status == 200 and answer.json()["target"] == "/image/two"
    one, dropped, two = upstream.requests
    assert dropped.client_port == one.client_port and dropped.nth_on_connection == 2
    assert two.target == "/image/two" and two.client_port != one.client_port
    # Not so for a request with a body: it may have been acted on.
    upstream.respond = lambda exchange: exchange.die() if exchange.received.method == "POST" else echo(exchange)
    post = call(app, environ("POST", "/v2/images", body=b"{}"))
    assert post.status == 502 and post.header(UPSTREAM_ERROR_HEADER) == "unreachable"
    assert "closed the connection" in error_of(post)["message"]
    assert sum(got.method == "POST" for got in upstream.requests) == 1


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_upstream_that_dies_mid_body_breaks_the_iterator(
    app: UpstreamApp, upstream: Upstream, chunked: bool, caplog: pytest.LogCaptureFixture
) -> None:
    data = pattern(4 * MiB)

    def respond(exchange: Exchange) -> None:
        headers = [] if chunked else [("Content-Length", str(10 * MiB))]
        if chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        exchange.head(200, headers)
        for offset in range(0, len(data), MiB):
            (exchange.chunk if chunked else exchange.write)(data[offset:offset + MiB])
        exchange.die()

    upstream.respond = respond
    caplog.set_level(logging.WARNING, "imagecache.upstream")
    answer = call(app, environ("GET", "/v2/images/x/file"))
    assert answer.status == 200
    received = 0
    with pytest.raises(UpstreamBodyError) as raised:
        for chunk in answer.chunks():
            received += len(chunk)
    answer.close()
    assert received <= len(data)
    assert raised.value.errno == errno.ECONNRESET
    assert f"127.0.0.1:{upstream.port}" in str(raised.value)
    records = [r for r in caplog.records if r.name == "imagecache.upstream"]
    assert len(records) == 1 and records[0].exc_info is None
    # The broken connection is not reused.
    upstream.respond = echo
    assert call(app, environ("GET", "/after")).json()["target"] == "/image/after"


def test_an_upstream_that_stalls_mid_body_breaks_the_iterator(upstream: Upstream) -> None:
    def respond(exchange: Exchange) -> None:
        exchange.head(200, [("Content-Length", str(2 * MiB))])
        exchange.write(b"x" * MiB)
        exchange.hang()

    upstream.respond = respond
    proxy = UpstreamApp(upstream.url, timeout=0.5)
    try:
        answer = call(proxy, environ("GET", "/v2/images/x/file"))
        with pytest.raises(UpstreamBodyError, match="timed out"):
            answer.read()
    finally:
        proxy.close()


def test_sixteen_threads_share_one_app(upstream: Upstream) -> None:
    proxy = UpstreamApp(upstream.url + "/image", timeout=10, pool_maxsize=4)
    failures: list[str] = []
    barrier = threading.Barrier(16)

    def client(n: int) -> None:
        barrier.wait()
        for i in range(8):
            body = pattern(64 << 10)[: 1000 + n * 97 + i] + f"{n}-{i}".encode()
            answer = call(proxy, environ("PUT", f"/t{n}/r{i}%2F?x={n}", body=body, RAW_URI=f"/t{n}/r{i}%2F?x={n}"))
            got = answer.json()
            expected = {"method": "PUT", "target": f"/image/t{n}/r{i}%2F?x={n}", "size": len(body),
                        "sha256": hashlib.sha256(body).hexdigest()}
            if answer.status != 200 or got != expected:
                failures.append(f"{n}/{i}: {answer.status} {got}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        proxy.close()
    assert not failures
    assert len(upstream.requests) == 16 * 8


# -- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("", "empty"),
        ("ftp://images.example/", "http:// or https://"),
        ("127.0.0.1:9292", "http:// or https://"),
        ("http://", "no host"),
        ("http:///v2", "no host"),
        ("http://images.example:99999", "not a valid URL"),
        ("http://images.example:port", "not a valid URL"),
        ("http://images.example/?x=1", "query string"),
        ("http://images.example/?", "query string"),
        ("http://images.example/#top", "fragment"),
        ("http://admin:hunter2@images.example/", "credentials"),
    ],
)
def test_bad_base_urls_are_refused_at_construction(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=says) as raised:
        UpstreamApp(url)
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"timeout": 0}, "timeout"),
        ({"connect_timeout": -1}, "connect timeout"),
        ({"pool_maxsize": 0}, "pool size"),
        ({"ca_file": "/nonexistent/ca.pem"}, "CA file"),
    ],
)
def test_bad_options_are_refused_at_construction(options: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        UpstreamApp("http://127.0.0.1:9292", **options)


def test_good_base_urls() -> None:
    for url, where, prefix in [
        ("http://127.0.0.1:9292", "127.0.0.1:9292", ""),
        ("https://images.example/image/", "images.example:443", "/image"),
        ("HTTP://Images.Example/v1/", "images.example:80", "/v1"),
        ("http://[::1]:9292/x", "[::1]:9292", "/x"),
    ]:
        proxy = UpstreamApp(url)
        assert (proxy.where, proxy.prefix) == (where, prefix), url
        proxy.close()


def test_the_error_body_is_json_like_the_servers(app: UpstreamApp) -> None:
    # The same shape as every error of the server (imagecache.http.errors).
    env = environ("PUT", "/x", CONTENT_LENGTH="nope")
    answer = call(app, env)
    assert answer.status == 400
    assert json.loads(answer.read())["error"]["title"] == "Bad Request"
