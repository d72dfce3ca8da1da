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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagecache import ImageCache, Settings
from imagecache.cache import PeerSource
from imagecache.http.context import RequestContext, set_context
from imagecache.images import make_app
from imagecache.metrics import Metrics
from imagecache.peers.fills import PeerFills
from imagecache.peers.reader import TOKEN_HEADER, PeerReader
from imagecache.wsgi.cache_filter import CacheFilter
from tests.unit.upstream_helpers import Answer, Exchange, Upstream, call, environ

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


# -- a node with peer fill on, in-process ---------------------------------------------------


class RecordingOrigin:
    """The image app behind a node, recording each data request: (its Range, the caller's token)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.data_requests: list[tuple[str | None, str | None]] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] == "GET" and environ["PATH_INFO"].endswith("/file"):
            self.data_requests.append((environ.get("HTTP_RANGE"), environ.get("HTTP_X_AUTH_TOKEN")))
        return self.app(environ, start_response)


@dataclass
class Node:
    """A cache filter over the embedded image app, a real cache in a tmp dir, peers from ``index``."""

    app: CacheFilter
    origin: RecordingOrigin
    cache: ImageCache
    index: FakeIndex
    reader: PeerReader

    @property
    def metrics(self) -> Metrics:
        return self.cache.metrics

    def peer_fills(self, result: str) -> float:
        return self.metrics.peer_fills.labels(result=result)._value.get()

    def counted(self) -> tuple[float, float]:
        """(bytes from peers, bytes from the origin)."""
        return self.metrics.peer_bytes._value.get(), self.metrics.upstream_bytes._value.get()

    def close(self) -> None:
        self.reader.close()
        self.cache.close()


def make_node(root: Path, index: FakeIndex) -> Node:
    settings = Settings(data_dir=str(root / "data"), image_cache_min_free=0)
    origin = RecordingOrigin(make_app(settings))
    cache = ImageCache(settings)
    reader = PeerReader(TOKEN, timeout=5)
    app = CacheFilter(origin, cache, peers=PeerFills(cache, index, reader.read))
    return Node(app, origin, cache, index, reader)


def download(app: CacheFilter, image_id: str, *, token: str = "caller-token",
             context: RequestContext | None = None) -> Answer:
    """``GET /v2/images/{id}/file`` as a caller (an admin of p1 unless ``context`` says otherwise)."""
    env = environ("GET", f"/v2/images/{image_id}/file", headers={"X-Auth-Token": token})
    set_context(env, context if context is not None else RequestContext.admin(project_id="p1"))
    return call(app, env)


def drain(answer: Answer) -> tuple[bytes, BaseException | None]:
    """What a client got of a response, and what cut it off (None: it ended normally)."""
    got = bytearray()
    try:
        for chunk in answer.chunks():
            got += chunk
    except Exception as exc:  # noqa: BLE001 - the test looks at what it was
        return bytes(got), exc
    finally:
        answer.close()
    return bytes(got), None
