"""A real HTTP/1.1 upstream on loopback for UpstreamApp's tests, and an in-process WSGI client.

The upstream is ``http.server`` under a thread per connection, with
keep-alive, so tests see exactly what went over the wire (the raw request
target, every header, chunked framing) and can answer in any way, however
broken.  Each test sets ``upstream.respond`` to decide the answer; by
default it echoes what it received as JSON.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from webob import Request

#: Bodies up to this size are kept whole in Received.body; larger ones only as size and digest.
KEEP_BODY = 1 << 20


@dataclass
class Received:
    """One request as the upstream read it off the wire."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    client_port: int
    nth_on_connection: int
    body: bytes = b""
    size: int = 0
    sha256: str = hashlib.sha256(b"").hexdigest()

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return ", ".join(values) if values else None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    @property
    def names(self) -> set[str]:
        return {key.lower() for key, _ in self.headers}


class Exchange:
    """What a responder gets: the request, and ways to answer it (or not)."""

    def __init__(self, handler: _Handler, received: Received) -> None:
        self.handler = handler
        self.received = received

    def send(
        self, status: int, headers: Iterable[tuple[str, str]] = (), body: bytes | Iterable[bytes] = b"",
        *, reason: str | None = None, chunked: bool = False,
    ) -> None:
        """A whole answer: Content-Length added for bytes bodies unless given (or chunked)."""
        headers = list(headers)
        names = {key.lower() for key, _ in headers}
        no_body = self.received.method == "HEAD" or status in (204, 304)
        if chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        elif isinstance(body, bytes) and "content-length" not in names and status != 204:
            headers.append(("Content-Length", str(len(body))))
        self.head(status, headers, reason=reason)
        if no_body:
            return
        for piece in [body] if isinstance(body, bytes) else body:
            if chunked:
                self.chunk(piece)
            else:
                self.write(piece)
        if chunked:
            self.end_chunks()

    def head(self, status: int, headers: Iterable[tuple[str, str]] = (), *, reason: str | None = None) -> None:
        self.handler.send_response_only(status, reason)
        for key, value in headers:
            self.handler.send_header(key, value)
        self.handler.end_headers()
        self.handler.wfile.flush()

    def write(self, data: bytes) -> None:
        self.handler.wfile.write(data)

    def chunk(self, data: bytes) -> None:
        if data:
            self.handler.wfile.write(b"%x\r\n%b\r\n" % (len(data), data))

    def end_chunks(self) -> None:
        self.handler.wfile.write(b"0\r\n\r\n")

    def die(self) -> None:
        """Drop the connection now (FIN), whatever was promised."""
        self.handler.close_connection = True
        with contextlib.suppress(OSError):
            self.handler.connection.shutdown(socket.SHUT_RDWR)

    def hang(self) -> None:
        """Answer nothing until the test ends."""
        self.handler.close_connection = True
        self.handler.server.released.wait(60)  # type: ignore[attr-defined]


def echo(exchange: Exchange) -> None:
    """200 with what was received, as JSON."""
    got = exchange.received
    body = json.dumps({
        "method": got.method, "target": got.target, "size": got.size, "sha256": got.sha256,
    }).encode()
    exchange.send(200, [("Content-Type", "application/json")], body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        return None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def _dispatch(self) -> None:
        self.count = getattr(self, "count", 0) + 1
        received = Received(
            method=self.command, target=self.path, headers=list(self.headers.items()),
            client_port=self.client_address[1], nth_on_connection=self.count,
        )
        if self.server.upstream.read_bodies:
            self._read_body(received)
        with self.server.lock:
            self.server.requests.append(received)
        self.server.upstream.respond(Exchange(self, received))

    def _read_body(self, received: Received) -> None:
        digest = hashlib.sha256()
        kept = bytearray()

        def take(data: bytes) -> None:
            digest.update(data)
            received.size += len(data)
            if len(kept) < KEEP_BODY:
                kept.extend(data)
            self.server.upstream.body_progress(received.size)

        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                take(self.rfile.read(size))
                self.rfile.readline()
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining > 0:
                data = self.rfile.read(min(256 << 10, remaining))
                if not data:
                    break
                remaining -= len(data)
                take(data)
        received.body = bytes(kept) if received.size <= KEEP_BODY else b""
        received.sha256 = digest.hexdigest()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 resets a burst of new connections
    upstream: Upstream
    lock: threading.Lock
    requests: list[Received]
    released: threading.Event

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # connections the tests break on purpose are not news


class Upstream:
    """A loopback HTTP/1.1 server in a thread; ``respond`` decides every answer."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.respond: Callable[[Exchange], None] = echo
        #: False: the responder gets the request with its body still unread.
        self.read_bodies = True
        #: Called with the running size of each request body as it arrives.
        self.body_progress: Callable[[int], None] = lambda size: None
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.upstream = self
        self._server.lock = threading.Lock()
        self._server.requests = []
        self._server.released = threading.Event()
        if tls is not None:
            # The handshake happens in the connection's thread, not in accept().
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True, do_handshake_on_connect=False)
        self.port = self._server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def requests(self) -> list[Received]:
        with self._server.lock:
            return list(self._server.requests)

    @property
    def last(self) -> Received:
        return self.requests[-1]

    def stop(self) -> None:
        self._server.released.set()
        self._server.shutdown()
        self._server.server_close()


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """(certificate, key) PEM files for 127.0.0.1, the certificate its own CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imagecache test upstream")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "upstream.pem", directory / "upstream.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    return cert_path, key_path


def free_port() -> int:
    """A loopback port nobody listens on (just closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the client side: in-process WSGI ---------------------------------------------------


@dataclass
class Answer:
    """What a WSGI app answered; ``body`` is its iterable, not yet read."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: Iterable[bytes]
    _chunks: Iterator[bytes] | None = field(default=None, repr=False)

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return ", ".join(values) if values else None

    @property
    def names(self) -> set[str]:
        return {key.lower() for key, _ in self.headers}

    def chunks(self) -> Iterator[bytes]:
        if self._chunks is None:
            self._chunks = iter(self.body)
        return self._chunks

    def read(self) -> bytes:
        try:
            return b"".join(self.chunks())
        finally:
            self.close()

    def json(self) -> Any:
        return json.loads(self.read())

    def close(self) -> None:
        close = getattr(self.body, "close", None)
        if close is not None:
            close()


def environ(
    method: str = "GET",
    path: str = "/",
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A WSGI environ as a server would build it (webob's), with ``extra`` keys on top."""
    request = Request.blank(path, method=method, headers=headers or {})
    if body is not None:
        request.body = body
    env = dict(request.environ)
    env.setdefault("REMOTE_ADDR", "192.0.2.7")
    env["SERVER_PROTOCOL"] = "HTTP/1.1"
    env.update(extra)
    return env


def call(app: Callable[..., Iterable[bytes]], env: dict[str, Any]) -> Answer:
    """Call ``app`` like a WSGI server; the body is left for the test to read."""
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        for key, value in headers:
            assert isinstance(key, str) and isinstance(value, str), (key, value)
            value.encode("latin-1")
        started.append((status, headers))
        return lambda data: None

    body = app(env, start_response)
    status, headers = started[-1]
    code, _, reason = status.partition(" ")
    return Answer(int(code), reason, list(headers), body)
