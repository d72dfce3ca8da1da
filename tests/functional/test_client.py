"""CacheClient against real servers: ``imagecache serve``, a TLS node in-process, a fake Keystone.

Every client method runs against a live node with both doc roots (``/v1``
and ``/v2``) and admin tokens, and the node's state is checked after each
call.  TLS: ``imagecache serve`` has no TLS option yet, so the real pipeline
(:func:`imagecache.server.build_app`) is served in-process behind an
``ssl.SSLContext`` with certificates made here.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import socketserver
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError:  # pragma: no cover - python-glanceclient (test extra) brings it
    x509 = None  # type: ignore[assignment]

from imagecache.client import (
    BadRequest,
    CacheClient,
    ClientError,
    Forbidden,
    NotFound,
    TLSError,
    Unauthorized,
    Unreachable,
    get_client,
)
from imagecache.config import load_settings
from imagecache.server import build_app
from tests.support.waiting import wait_until

from .conftest import AuthTokens, RunningServer, free_port
from .fake_keystone import FakeKeystone

DOC_ROOTS = ("/v1", "/v2")
#: Seconds a client gives a loopback server: only a hung one runs out (a busy machine is slow, not down).
TIMEOUT = 30
FORBIDDEN_MESSAGE = "You are not permitted to manage the image cache."


# -- helpers -----------------------------------------------------------------------


def client_for(server: RunningServer, user: str | None = "admin", **options: Any) -> CacheClient:
    token = server.tokens.token(user) if server.tokens and user else None
    return CacheClient(server.host, server.port, auth_token=token, timeout=TIMEOUT, environ={}, **options)


def upload(server: RunningServer, data: bytes) -> str:
    made = server.request("POST", "/v2/images", user="admin", json_body={
        "name": "client-test", "disk_format": "raw", "container_format": "bare"})
    assert made.status == 201, made.text
    image_id = made.json()["id"]
    put = server.request("PUT", f"/v2/images/{image_id}/file", user="admin", body=data,
                         headers={"Content-Type": "application/octet-stream"})
    assert put.status == 204, put.text
    return image_id


def cache_image(server: RunningServer, client: CacheClient, data: bytes) -> str:
    """Upload an image and download it once; return its id once the cache lists it."""
    image_id = upload(server, data)
    got = server.request("GET", f"/v2/images/{image_id}/file", user="admin")
    assert got.status == 200 and got.body == data
    wait_until(lambda: image_id in cached_ids(client), f"image {image_id} to be cached")
    return image_id


def cached_ids(client: CacheClient) -> set[str]:
    return {entry["image_id"] for entry in client.get_cached_images()}


@pytest.fixture(scope="module")
def tokens_server(start_module_server: Any) -> RunningServer:
    """This module's ``--auth tokens`` node, its periodic jobs held off so the queue is the tests' alone."""
    quiet = {"prefetcher_interval": 86400, "cleaner_interval": 86400, "pruner_interval": 86400}
    return start_module_server(auth="tokens", settings=quiet)


@pytest.fixture
def admin(tokens_server: RunningServer, request: pytest.FixtureRequest) -> Iterator[CacheClient]:
    """An admin client on the module's node, with the doc root of the test's parameter; empty cache and queue."""
    doc_root = getattr(request, "param", "/v1")
    with client_for(tokens_server, doc_root=doc_root) as client:
        client.delete_all_cached_images()
        client.delete_all_queued_images()
        yield client


# -- every method, both doc roots ------------------------------------------------------


@pytest.mark.parametrize("admin", DOC_ROOTS, indirect=True)
def test_queue_list_and_unqueue(admin: CacheClient, tokens_server: RunningServer) -> None:
    ids = [str(uuid.uuid4()) for _ in range(3)]
    for image_id in ids:
        assert admin.queue_image_for_caching(image_id) is True
    assert sorted(admin.get_queued_images()) == sorted(ids)
    # The node's own v2 API sees the same queue.
    assert sorted(tokens_server.request("GET", "/v2/cache", user="admin").json()["queued_images"]) == sorted(ids)

    assert admin.delete_queued_image(ids[0]) is True
    assert sorted(admin.get_queued_images()) == sorted(ids[1:])
    assert admin.delete_all_queued_images() == 2
    assert admin.get_queued_images() == []
    assert admin.delete_all_queued_images() == 0


@pytest.mark.parametrize("admin", DOC_ROOTS, indirect=True)
def test_cached_images_listed_and_deleted(admin: CacheClient, tokens_server: RunningServer) -> None:
    data = os.urandom(64 << 10)
    first = cache_image(tokens_server, admin, data)
    second = cache_image(tokens_server, admin, data[::-1])

    entries = {entry["image_id"]: entry for entry in admin.get_cached_images()}
    assert set(entries) == {first, second}
    entry = entries[first]
    assert entry["size"] == len(data) and entry["hits"] == 0 and entry["pinned"] is False
    assert set(entry) == {"image_id", "hits", "last_accessed", "last_modified", "size", "pinned"}

    assert admin.delete_cached_image(first) is True
    assert cached_ids(admin) == {second}
    assert not os.path.exists(os.path.join(tokens_server.data_dir, "image-cache", first))
    # Dropped from the cache only: the image itself is still served.
    assert tokens_server.request("GET", f"/v2/images/{first}/file", user="admin").body == data

    wait_until(lambda: first in cached_ids(admin), "the download to cache it again")
    assert admin.delete_all_cached_images() == 2
    assert admin.get_cached_images() == []


@pytest.mark.parametrize("admin", DOC_ROOTS, indirect=True)
def test_unknown_id_deletes_are_accepted_like_glance(admin: CacheClient) -> None:
    """Glance's legacy controller deletes unconditionally: an id never cached is no error."""
    assert admin.delete_cached_image(str(uuid.uuid4())) is True
    assert admin.delete_queued_image(str(uuid.uuid4())) is True


# -- errors ------------------------------------------------------------------------


@pytest.mark.parametrize("doc_root", DOC_ROOTS)
def test_a_member_is_forbidden_with_the_servers_message(tokens_server: RunningServer, doc_root: str) -> None:
    client = client_for(tokens_server, "alice", doc_root=doc_root)
    calls: list[Callable[[], Any]] = [
        client.get_cached_images, client.get_queued_images, client.delete_all_cached_images,
        client.delete_all_queued_images, lambda: client.queue_image_for_caching(str(uuid.uuid4())),
        lambda: client.delete_cached_image(str(uuid.uuid4())), lambda: client.delete_queued_image(str(uuid.uuid4())),
    ]
    for call in calls:
        with pytest.raises(Forbidden) as caught:
            call()
        assert caught.value.status == 403 and caught.value.message == FORBIDDEN_MESSAGE
        assert isinstance(caught.value, ClientError) and "403" in str(caught.value)


def test_a_bad_token_or_none_is_unauthorized(tokens_server: RunningServer) -> None:
    for token in ("not-a-known-token", None):
        client = CacheClient(tokens_server.host, tokens_server.port, auth_token=token, environ={})
        with pytest.raises(Unauthorized) as caught:
            client.get_queued_images()
        assert caught.value.status == 401
        assert caught.value.message.startswith("The request you have made requires authentication")


def test_an_id_that_is_no_uuid_is_the_servers_400(admin: CacheClient) -> None:
    with pytest.raises(BadRequest) as caught:
        admin.queue_image_for_caching("not-a-uuid")
    assert caught.value.status == 400 and caught.value.message == "Invalid image id: an image id is a UUID."
    # Dots are sent encoded, so ".." is an id the server refuses, not a path step up.
    with pytest.raises(BadRequest):
        admin.delete_cached_image("..")
    assert admin.get_queued_images() == []


def test_ids_are_quoted_into_one_segment(admin: CacheClient) -> None:
    """An id with a slash cannot reach another route: the node finds no such resource."""
    with pytest.raises(NotFound) as caught:
        admin.delete_queued_image("x/../../cached_images")
    assert caught.value.status == 404 and caught.value.message == "No such image cache resource."


def test_an_unknown_doc_root_is_not_found_with_a_tidy_message(tokens_server: RunningServer) -> None:
    client = client_for(tokens_server, doc_root="/v9")
    with pytest.raises(NotFound) as caught:
        client.get_cached_images()
    # webob's JSON error carries "<br />" and newlines; the client keeps the words.
    assert caught.value.message == "The resource could not be found."


def test_a_stopped_server_is_unreachable(start_server: Any) -> None:
    server = start_server(auth="none")
    client = CacheClient(server.host, server.port, timeout=TIMEOUT, environ={})
    assert client.get_cached_images() == []
    server.stop()
    with pytest.raises(Unreachable) as caught:
        client.get_cached_images()
    assert caught.value.status is None and "Connection refused" in caught.value.message


def test_a_silent_server_times_out_as_unreachable() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # connections complete in the backlog; nobody ever answers
        client = CacheClient("127.0.0.1", listener.getsockname()[1], timeout=0.3, environ={})
        started = time.monotonic()
        with pytest.raises(Unreachable, match=r"did not answer within 0\.3 s"):
            client.get_queued_images()
        assert time.monotonic() - started < 5


class _Redirector:
    """A loopback HTTP server that redirects every GET to ``target(path)`` and records headers."""

    def __init__(self, target: Callable[[str], str | None]) -> None:
        self.seen: list[dict[str, str]] = []
        seen = self.seen

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(dict(self.headers))
                location = target(self.path)
                body = b'{"queued_images": []}' if location is None else b""
                self.send_response(200 if location is None else 307)
                if location is not None:
                    self.send_header("Location", location)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_endless_redirects_end_with_a_client_error() -> None:
    loop = _Redirector(lambda path: path)
    try:
        with pytest.raises(ClientError, match="more than 5 redirects"):
            CacheClient("127.0.0.1", loop.port, auth_token="tok", timeout=TIMEOUT, environ={}).get_queued_images()
    finally:
        loop.close()


def test_the_token_does_not_follow_a_redirect_to_another_host() -> None:
    elsewhere = _Redirector(lambda path: None)
    bouncer = _Redirector(lambda path: f"http://localhost:{elsewhere.port}{path}")
    try:
        client = CacheClient("127.0.0.1", bouncer.port, auth_token="tok", timeout=TIMEOUT, environ={})
        assert client.get_queued_images() == []
        assert bouncer.seen[0]["X-Auth-Token"] == "tok"
        assert "X-Auth-Token" not in elsewhere.seen[0]
    finally:
        bouncer.close()
        elsewhere.close()


# -- TLS ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Pem:
    cert: Path
    key: Path


def _name(common_name: str) -> Any:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


CA = tuple[Pem, Any, Any]  # (files, certificate, private key)


def make_ca(directory: Path, name: str) -> CA:
    """A self-signed CA, written as PEM files (in the test's tmp dir only)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name)).issuer_name(_name(name))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _write(directory, name, cert, key), cert, key


def make_leaf(directory: Path, name: str, ca: CA, *, server: bool) -> Pem:
    """A certificate signed by ``ca``: for 127.0.0.1 (server) or a client."""
    _, ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(name)).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return _write(directory, name, builder.sign(ca_key, hashes.SHA256()), key)


def _write(directory: Path, name: str, cert: Any, key: Any) -> Pem:
    pem = Pem(directory / f"{name}.crt", directory / f"{name}.key")
    pem.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return pem


@dataclass(frozen=True)
class Certificates:
    ca: Pem
    other_ca: Pem
    server: Pem
    client: Pem


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    if x509 is None:
        pytest.skip("the cryptography package is not installed (python-glanceclient brings it)")
    directory = tmp_path_factory.mktemp("tls")
    ca = make_ca(directory, "test-ca")
    other = make_ca(directory, "other-ca")
    return Certificates(ca=ca[0], other_ca=other[0], server=make_leaf(directory, "node", ca, server=True),
                        client=make_leaf(directory, "operator", ca, server=False))


class _TLSWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # failed handshakes are what some tests are about


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        pass


@dataclass
class TLSNode:
    host: str
    port: int
    tokens: AuthTokens

    def client(self, **options: Any) -> CacheClient:
        return CacheClient(self.host, self.port, use_ssl=True, auth_token=self.tokens.admin,
                           timeout=TIMEOUT, environ={}, **options)


def serve_tls(tmp: Path, certificates: Certificates, *, require_client_cert: bool) -> Iterator[TLSNode]:
    """The real pipeline (tokens auth, cache filters, images app) behind TLS, in a thread."""
    tokens = AuthTokens()
    tokens_file = tmp / "tokens.toml"
    tokens_file.write_text(tokens.toml(), encoding="utf-8")
    settings = load_settings(None, {}, {"data_dir": str(tmp / "data"), "auth_strategy": "tokens",
                                        "tokens_file": str(tokens_file)})
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates.server.cert, certificates.server.key)
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(certificates.ca.cert)
    httpd = make_server("127.0.0.1", 0, build_app(settings), server_class=_TLSWSGIServer, handler_class=_QuietHandler)
    # The handshake happens on the handler's first read, in its own thread.
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield TLSNode("127.0.0.1", httpd.server_address[1], tokens)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def tls_node(tmp_path_factory: pytest.TempPathFactory, certificates: Certificates) -> Iterator[TLSNode]:
    yield from serve_tls(tmp_path_factory.mktemp("tls-node"), certificates, require_client_cert=False)


@pytest.fixture(scope="module")
def mtls_node(tmp_path_factory: pytest.TempPathFactory, certificates: Certificates) -> Iterator[TLSNode]:
    yield from serve_tls(tmp_path_factory.mktemp("mtls-node"), certificates, require_client_cert=True)


def test_tls_verified_with_ca_file(tls_node: TLSNode, certificates: Certificates) -> None:
    client = tls_node.client(ca_file=str(certificates.ca.cert))
    image_id = str(uuid.uuid4())
    client.queue_image_for_caching(image_id)
    assert client.get_queued_images() == [image_id]
    assert client.delete_all_queued_images() == 1


def test_tls_ca_file_from_glances_environment_variable(tls_node: TLSNode, certificates: Certificates) -> None:
    client = CacheClient(tls_node.host, tls_node.port, use_ssl=True, auth_token=tls_node.tokens.admin,
                         environ={"GLANCE_CLIENT_CA_FILE": str(certificates.ca.cert)})
    assert client.ca_file == str(certificates.ca.cert)
    assert client.get_cached_images() == []


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_insecure_needs_no_ca(tls_node: TLSNode) -> None:
    assert tls_node.client(insecure=True).get_queued_images() == []


@pytest.mark.parametrize("trust", ["other", "system"])
def test_tls_untrusted_certificate_is_a_tls_error(tls_node: TLSNode, certificates: Certificates, trust: str) -> None:
    ca_file = str(certificates.other_ca.cert) if trust == "other" else None
    with pytest.raises(TLSError) as caught:
        tls_node.client(ca_file=ca_file).get_queued_images()
    assert isinstance(caught.value, Unreachable) and caught.value.status is None
    assert "certificate verify failed" in caught.value.message
    assert "ca_file" in caught.value.message  # says what to check


def test_plain_http_to_a_tls_node_is_unreachable(tls_node: TLSNode) -> None:
    client = CacheClient(tls_node.host, tls_node.port, auth_token=tls_node.tokens.admin, timeout=TIMEOUT, environ={})
    with pytest.raises(Unreachable):
        client.get_queued_images()


def test_client_certificate(mtls_node: TLSNode, certificates: Certificates) -> None:
    with_cert = mtls_node.client(ca_file=str(certificates.ca.cert), cert_file=str(certificates.client.cert),
                                 key_file=str(certificates.client.key))
    assert with_cert.get_cached_images() == []
    without = mtls_node.client(ca_file=str(certificates.ca.cert))
    for _ in range(5):
        with pytest.raises(Unreachable) as caught:
            without.get_cached_images()
        # Under TLS 1.3 the refusal comes after the handshake: an alert or a bare EOF.
        assert isinstance(caught.value, TLSError), caught.value.message
        assert "cert_file and key_file" in caught.value.message


# -- Keystone ----------------------------------------------------------------------


@pytest.fixture
def keystone(tokens_server: RunningServer) -> Iterator[FakeKeystone]:
    """A fake Keystone that issues the node's admin token, with the node as its image endpoint."""
    with FakeKeystone(tokens=[tokens_server.tokens.admin], image_url=tokens_server.url) as fake:
        yield fake


@pytest.mark.parametrize("path", ["/v3", ""])
def test_get_client_gets_a_keystone_token_the_node_accepts(
    tokens_server: RunningServer, keystone: FakeKeystone, path: str
) -> None:
    client = get_client(tokens_server.host, tokens_server.port, username=keystone.username,
                        password=keystone.password, tenant=keystone.project, auth_url=keystone.url + path,
                        environ={})
    image_id = str(uuid.uuid4())
    client.queue_image_for_caching(image_id)
    assert image_id in client.get_queued_images()
    client.delete_queued_image(image_id)
    assert client.auth_token == tokens_server.tokens.admin
    assert keystone.token_requests == 1  # the token is kept, not fetched per call
    asked = keystone.requests[0].body["auth"]
    assert asked["identity"]["password"]["user"] == {
        "name": keystone.username, "password": keystone.password, "domain": {"name": "Default"}}
    assert asked["scope"]["project"] == {"name": keystone.project, "domain": {"name": "Default"}}


def test_get_client_from_the_environment(tokens_server: RunningServer, keystone: FakeKeystone) -> None:
    environ = {"OS_AUTH_URL": keystone.url + "/v3", "OS_USERNAME": keystone.username,
               "OS_PASSWORD": keystone.password, "OS_PROJECT_NAME": keystone.project,
               "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default"}
    client = get_client(tokens_server.host, tokens_server.port, environ=environ)
    assert client.get_cached_images() is not None
    assert keystone.token_requests == 1


def test_keystone_refusing_the_password_is_unauthorized(tokens_server: RunningServer, keystone: FakeKeystone) -> None:
    client = get_client(tokens_server.host, tokens_server.port, username=keystone.username, password="wrong",
                        tenant=keystone.project, auth_url=keystone.url + "/v3", environ={})
    with pytest.raises(Unauthorized) as caught:
        client.get_queued_images()
    assert caught.value.status == 401 and keystone.url in caught.value.message


def test_a_token_the_node_rejects_is_renewed_once(tokens_server: RunningServer) -> None:
    """Glance's client re-authenticated on a 401 and tried again; so does ours."""
    with FakeKeystone(tokens=["stale-token", tokens_server.tokens.admin], image_url=tokens_server.url) as keystone:
        client = get_client(tokens_server.host, tokens_server.port, username=keystone.username,
                            password=keystone.password, tenant=keystone.project,
                            auth_url=keystone.url + "/v3", environ={})
        assert isinstance(client.get_queued_images(), list)
        assert [request.issued for request in keystone.requests] == ["stale-token", tokens_server.tokens.admin]


def test_a_member_token_from_keystone_is_forbidden(tokens_server: RunningServer) -> None:
    with FakeKeystone(tokens=[tokens_server.tokens.alice], roles=["member"]) as keystone:
        client = get_client(tokens_server.host, tokens_server.port, username=keystone.username,
                            password=keystone.password, tenant=keystone.project,
                            auth_url=keystone.url, environ={})
        with pytest.raises(Forbidden, match=FORBIDDEN_MESSAGE):
            client.get_cached_images()
        assert keystone.token_requests == 1  # a 403 is no reason to re-authenticate


def test_catalog_endpoint_configures_the_client(tokens_server: RunningServer, keystone: FakeKeystone) -> None:
    """Glance's configure_via_auth: the catalog's image endpoint replaces host and port."""
    client = CacheClient("127.0.0.1", free_port(), doc_root="/v2", timeout=TIMEOUT, environ={},
                         creds={"strategy": "keystone", "auth_url": keystone.url + "/v3",
                                "username": keystone.username, "password": keystone.password,
                                "tenant": keystone.project, "region": keystone.region})
    assert client.get_queued_images() == []
    assert (client.host, client.port, client.doc_root) == (tokens_server.host, tokens_server.port, "/v2")


def test_an_unreachable_keystone(tokens_server: RunningServer) -> None:
    client = get_client(tokens_server.host, tokens_server.port, username="u", password="p", tenant="t",
                        auth_url=f"http://127.0.0.1:{free_port()}/v3", timeout=TIMEOUT, environ={})
    with pytest.raises(Unreachable, match="Keystone at"):
        client.get_queued_images()
