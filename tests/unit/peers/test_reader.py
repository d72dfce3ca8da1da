"""PeerReader against a real HTTP server on loopback: resuming, and every way a peer fails."""

from __future__ import annotations

import os
import socket
import ssl
import struct
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagecache import Settings
from imagecache.peers.reader import READ_CHUNK, TOKEN_HEADER, PeerFailed, PeerReader
from tests.unit.peers.doubles import TOKEN, endpoint, start_peer
from tests.unit.upstream_helpers import Exchange, Upstream, free_port, self_signed_certificate

DATA = os.urandom(3 * READ_CHUNK + 12345)
IMAGE_ID = str(uuid.uuid4())


@pytest.fixture
def peer() -> Iterator[Upstream]:
    server = start_peer(DATA)
    yield server
    server.stop()


@pytest.fixture
def reader() -> Iterator[PeerReader]:
    made = PeerReader(TOKEN, timeout=5)
    yield made
    made.close()


def read_until_failure(body: Iterator[bytes]) -> tuple[bytes, PeerFailed]:
    """The bytes a failing read gave before it failed, and its failure."""
    got = bytearray()
    with pytest.raises(PeerFailed) as caught:
        for chunk in body:
            got += chunk
    return bytes(got), caught.value


def test_a_whole_image_with_the_token_in_large_chunks(peer: Upstream, reader: PeerReader) -> None:
    chunks = list(reader.read(peer.url, IMAGE_ID, size=len(DATA)))
    assert b"".join(chunks) == DATA
    assert max(map(len, chunks)) == READ_CHUNK
    request = peer.last
    assert request.target == f"/peer/v1/images/{IMAGE_ID}"
    assert request.header(TOKEN_HEADER) == TOKEN
    assert request.header("Range") is None


@pytest.mark.parametrize("start", [1, READ_CHUNK, len(DATA) - 1])
def test_a_read_resumes_from_an_offset(peer: Upstream, reader: PeerReader, start: int) -> None:
    assert b"".join(reader.read(peer.url, IMAGE_ID, start=start, size=len(DATA))) == DATA[start:]
    assert peer.last.header("Range") == f"bytes={start}-"


def test_the_size_may_be_unknown(peer: Upstream, reader: PeerReader) -> None:
    assert b"".join(reader.read(peer.url, IMAGE_ID, start=10)) == DATA[10:]


def test_a_node_url_with_a_path_keeps_it(peer: Upstream, reader: PeerReader) -> None:
    assert b"".join(reader.read(peer.url + "/node/", IMAGE_ID, size=len(DATA))) == DATA
    assert peer.last.target == f"/node/peer/v1/images/{IMAGE_ID}"


def test_the_workers_fills_share_a_pool_per_peer(peer: Upstream, reader: PeerReader) -> None:
    for _ in range(3):
        assert b"".join(reader.read(peer.url, IMAGE_ID, size=len(DATA))) == DATA
    assert [r.nth_on_connection for r in peer.requests] == [1, 2, 3]
    assert len({r.client_port for r in peer.requests}) == 1


def test_a_read_given_up_half_way_does_not_go_back_to_the_pool(peer: Upstream, reader: PeerReader) -> None:
    body = reader.read(peer.url, IMAGE_ID, size=len(DATA))
    assert len(next(body)) == READ_CHUNK
    body.close()  # type: ignore[attr-defined]
    assert b"".join(reader.read(peer.url, IMAGE_ID, size=len(DATA))) == DATA
    assert [r.nth_on_connection for r in peer.requests] == [1, 1]


def test_a_refused_connection(reader: PeerReader) -> None:
    got, failure = read_until_failure(reader.read(f"http://127.0.0.1:{free_port()}", IMAGE_ID, start=7))
    assert got == b"" and failure.offset == 7
    assert "refused" in str(failure).lower()


@pytest.mark.parametrize("peer_url", ["ftp://127.0.0.1/", "not a url at all", "http://"])
def test_a_node_url_that_is_no_http_url(reader: PeerReader, peer_url: str) -> None:
    _, failure = read_until_failure(reader.read(peer_url, IMAGE_ID))
    assert failure.offset == 0 and failure.peer == peer_url


@pytest.mark.parametrize("start", [0, 1000])
def test_a_peer_dying_mid_transfer_says_how_far_it_got(reader: PeerReader, start: int) -> None:
    cut_at = READ_CHUNK + 5000
    server = start_peer(DATA, cut_at=cut_at)
    try:
        got, failure = read_until_failure(reader.read(server.url, IMAGE_ID, start=start, size=len(DATA)))
    finally:
        server.stop()
    assert got == DATA[start:cut_at] and failure.offset == cut_at


def _reset_after(sent: int) -> object:
    def respond(exchange: Exchange) -> None:
        exchange.head(200, [("Content-Length", str(len(DATA)))])
        exchange.write(DATA[:sent])
        exchange.handler.wfile.flush()
        time.sleep(0.05)  # let the bytes leave before the reset
        exchange.handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        exchange.handler.connection.close()

    return respond


def test_a_reset_connection(reader: PeerReader) -> None:
    server = Upstream()
    server.respond = _reset_after(100_000)  # type: ignore[assignment]
    try:
        got, failure = read_until_failure(reader.read(server.url, IMAGE_ID, size=len(DATA)))
    finally:
        server.stop()
    # A reset may take bytes still in flight with it: the offset is what arrived.
    assert failure.offset == len(got) <= 100_000 and got == DATA[: len(got)]


def _answer(status: int, headers: list[tuple[str, str]], body: bytes = b"") -> object:
    return lambda exchange: exchange.send(status, headers, body)


CR = "Content-Range"
SIZE = len(DATA)


@pytest.mark.parametrize(("start", "responder", "why"), [
    (0, _answer(401, [], b"no"), "401"),
    (0, _answer(404, [("Content-Type", "application/json")], b"{}"), "404"),
    (5, _answer(500, [], b"oops"), "500"),
    (0, _answer(503, [("Retry-After", "1")]), "503"),
    (0, _answer(302, [("Location", "/elsewhere")]), "302"),
    (5, _answer(200, [], DATA), "200 to a Range request"),
    (5, _answer(206, [(CR, f"bytes 0-{SIZE - 1}/{SIZE}")], DATA), "Content-Range"),
    (5, _answer(206, [], DATA[5:]), "Content-Range"),
    (5, _answer(206, [(CR, f"bytes 5-{SIZE}/{SIZE + 1}")], DATA[5:] + b"x"), "Content-Range"),
    (5, _answer(206, [(CR, "bytes 5-9/*")], DATA[5:10]), "Content-Range"),
    (0, _answer(200, [("X-Image-Meta-Size", str(SIZE + 1))], DATA), "the image has"),
    (0, _answer(200, [("X-Image-Meta-Size", "lots")], DATA), "X-Image-Meta-Size"),
    (0, _answer(200, [("Content-Length", str(SIZE - 1))], DATA[:-1]), "announced"),
], ids=["401", "404", "500", "503", "redirect", "range-ignored", "wrong-part", "no-content-range",
        "other-size", "short-part", "meta-size", "bad-meta-size", "short-length"])
def test_an_answer_that_is_not_the_bytes_asked_for(reader: PeerReader, start: int, responder: object,
                                                  why: str) -> None:
    server = Upstream()
    server.respond = responder  # type: ignore[assignment]
    try:
        got, failure = read_until_failure(reader.read(server.url, IMAGE_ID, start=start, size=SIZE))
        assert len(server.requests) == 1  # no redirect followed, nothing retried
    finally:
        server.stop()
    assert got == b"" and failure.offset == start
    assert why in str(failure)


def test_a_chunked_body_that_ends_early_or_runs_long(reader: PeerReader) -> None:
    server = Upstream()
    server.respond = lambda exchange: exchange.send(200, [], [DATA[:1000], DATA[1000:5000]], chunked=True)
    try:
        got, failure = read_until_failure(reader.read(server.url, IMAGE_ID, size=SIZE))
        assert got == DATA[:5000] and failure.offset == 5000 and "ended after 5000" in str(failure)
        got, failure = read_until_failure(reader.read(server.url, IMAGE_ID, size=3000))
        assert got == DATA[:3000] and failure.offset == 3000 and "more than" in str(failure)
    finally:
        server.stop()


def _stall_after(sent: int) -> object:
    def respond(exchange: Exchange) -> None:
        exchange.head(200, [("Content-Length", str(len(DATA)))])
        exchange.write(DATA[:sent])
        exchange.handler.wfile.flush()
        exchange.hang()

    return respond


@pytest.mark.parametrize("sent", [0, READ_CHUNK + 70_000])
def test_a_slow_peer_hits_the_peer_timeout(sent: int) -> None:
    """A stall is noticed within peer_timeout; the offset is what the fill got, whole chunks
    (the bytes of a chunk cut off by the stall come from the next source)."""
    server = Upstream()
    server.respond = _stall_after(sent) if sent else (lambda exchange: exchange.hang())  # type: ignore[assignment]
    reader = PeerReader(TOKEN, timeout=0.5)
    began = time.monotonic()
    try:
        got, failure = read_until_failure(reader.read(server.url, IMAGE_ID, size=SIZE))
    finally:
        server.stop()
        reader.close()
    delivered = sent // READ_CHUNK * READ_CHUNK
    assert got == DATA[:delivered] and failure.offset == delivered
    assert "timed out" in str(failure).lower()
    assert 0.4 < time.monotonic() - began < 10


def test_settings_make_the_reader() -> None:
    reader = PeerReader.for_settings(Settings(peer_token="s3cret", peer_timeout=7))
    assert reader._token == "s3cret" and reader._timeout.read_timeout == 7
    with pytest.raises(ValueError, match="peer_token"):
        PeerReader.for_settings(Settings())
    with pytest.raises(ValueError, match="does not exist"):
        PeerReader("t", timeout=1, ca_file="/nonexistent/ca.pem")
    with pytest.raises(ValueError, match="positive"):
        PeerReader("t", timeout=0)


@pytest.fixture
def tls_peer(tmp_path: Path) -> Iterator[tuple[Upstream, Path]]:
    pytest.importorskip("cryptography")
    cert, key = self_signed_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = Upstream(tls=context)
    server.respond = endpoint(DATA)  # type: ignore[assignment]
    yield server, cert
    server.stop()


def test_an_https_peer_is_verified_with_the_ca_file(tls_peer: tuple[Upstream, Path]) -> None:
    server, cert = tls_peer
    trusting, default = PeerReader(TOKEN, timeout=5, ca_file=str(cert)), PeerReader(TOKEN, timeout=5)
    try:
        assert b"".join(trusting.read(server.url, IMAGE_ID, size=SIZE)) == DATA
        _, failure = read_until_failure(default.read(server.url, IMAGE_ID, size=SIZE))
        assert "certificate verify failed" in str(failure) and failure.offset == 0
    finally:
        trusting.close()
        default.close()
