"""Stand-ins for a node's peers: their endpoint on loopback, and the central index's answers about them.

The endpoint is docs/peer-fill.md's, serving bytes a test chooses, built on
the tests' real HTTP/1.1 server (:class:`tests.unit.upstream_helpers.Upstream`):
``GET /peer/v1/images/{id}`` with the peer token, optionally ``Range:
bytes=N-``, answered 200 or 206 with ``X-Image-Meta-Size``.  ``cut_at``
makes it drop the connection after that many bytes of the image (a peer
dying mid-transfer), ``gate`` hold the last ``held`` bytes back until it is set;
``data`` may differ from the origin's (a peer that lies).  The index is a
fake: the central driver's own answers are tested against PostgreSQL.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from imagecache.cache import PeerSource
from imagecache.peers.reader import TOKEN_HEADER
from tests.unit.upstream_helpers import Exchange, Upstream

TOKEN = "peer-secret"
_RANGE = re.compile(r"bytes=(\d+)-")


def endpoint(
    data: bytes, *, token: str = TOKEN, cut_at: int | None = None, gate: threading.Event | None = None,
    held: int = 1000,
) -> Callable[[Exchange], None]:
    """A responder that answers as a peer holding ``data``."""

    def respond(exchange: Exchange) -> None:
        got = exchange.received
        if got.header(TOKEN_HEADER) != token:
            exchange.send(401, [("Content-Type", "application/json")], b'{"error": "no"}')
            return
        asked = _RANGE.fullmatch(got.header("Range") or "")
        start = int(asked.group(1)) if asked else 0
        headers = [("X-Image-Meta-Size", str(len(data))), ("Content-Length", str(len(data) - start))]
        if asked:
            exchange.head(206, [*headers, ("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")])
        else:
            exchange.head(200, headers)
        if cut_at is not None and cut_at < len(data):
            exchange.write(data[start:max(start, cut_at)])
            exchange.handler.wfile.flush()
            exchange.die()
            return
        until = len(data) - held if gate is not None else len(data)
        exchange.write(data[start:until])
        exchange.handler.wfile.flush()
        if gate is not None:
            gate.wait(30)
            exchange.write(data[until:])

    return respond


def start_peer(data: bytes, **options: object) -> Upstream:
    """A running peer serving ``data`` (stop() it when done)."""
    peer = Upstream()
    peer.respond = endpoint(data, **options)  # type: ignore[arg-type]
    return peer


def peer_at(server: Upstream, *, filling: bool = False, size: int | None = None) -> PeerSource:
    """The index's row for a peer running at ``server``."""
    return PeerSource(url=server.url, site="default", filling=filling, size=size, bytes=0)


@dataclass
class FakeIndex:
    """The central index's peer-fill answers: peer_sources from a script, one answer a call; every call recorded."""

    answers: list[list[PeerSource] | Exception] = field(default_factory=list)
    won: bool | Exception = True
    calls: list[str] = field(default_factory=list)
    suspects: list[tuple[str, float]] = field(default_factory=list)

    def peer_sources(self, image_id: str) -> list[PeerSource]:
        self.calls.append("peer_sources")
        answer = self.answers.pop(0) if self.answers else []
        if isinstance(answer, Exception):
            raise answer
        return answer

    def claim_cluster_fill(self, image_id: str) -> bool:
        self.calls.append("claim")
        if isinstance(self.won, Exception):
            raise self.won
        return self.won

    def mark_suspect(self, peer_url: str, seconds: float) -> None:
        self.calls.append("mark_suspect")
        self.suspects.append((peer_url, seconds))

