"""Reading an image from a peer's endpoint, from any offset (docs/peer-fill.md "The peer endpoint").

A fill reads a peer through :class:`PeerReader`: ``GET /peer/v1/images/{id}``
with the peer token, ``Range: bytes=N-`` to resume, over one urllib3 pool
per peer node shared by every fill of the worker.  Nothing a peer says is
taken on trust: the status, the ``Content-Range``, the sizes it announces
and the length of its body are checked here, and its bytes are verified by
the node's own fill.  Every way a read can go wrong (refused, reset,
``peer_timeout``, an error status, a redirect, the wrong part, a short or
long body) is one exception, :class:`PeerFailed`, carrying the offset the
read reached, so the fill goes on from there elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import urllib3
from urllib3 import BaseHTTPResponse
from urllib3.exceptions import HTTPError
from urllib3.util import Timeout, parse_url

from imagecache.config import Settings
from imagecache.http.causes import innermost
from imagecache.http.ranges import parse_content_range

#: The header a node presents its peer token in.
TOKEN_HEADER = "X-Imagecache-Peer-Token"
#: The endpoint's path below a peer's node_url.
PEER_PATH = "/peer/v1/images/{}"
#: Bytes asked of the connection at a time: large, so a fill writes few, big chunks.
READ_CHUNK = 1 << 20
#: Peer nodes with a pool at once (least recently used pools go first), and connections kept per node.
POOLS = 32
CONNECTIONS_PER_PEER = 8


class PeerFailed(Exception):
    """A peer could not give (the rest of) an image; ``offset`` is how far its bytes went."""

    def __init__(self, peer: str, image_id: str, offset: int, why: str) -> None:
        super().__init__(f"peer {peer} stopped sending image {image_id} at byte {offset}: {why}")
        self.peer = peer
        self.image_id = image_id
        self.offset = offset
        self.why = why


class PeerReader:
    """Reads images from peer nodes; one per worker, safe to share between its fills' threads."""

    def __init__(
        self,
        token: str,
        *,
        timeout: float,
        ca_file: str | None = None,
        pools: int = POOLS,
        connections_per_peer: int = CONNECTIONS_PER_PEER,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"the peer timeout must be a positive number of seconds, not {timeout!r}")
        if ca_file is not None and not os.path.isfile(ca_file):
            raise ValueError(f"the CA file {ca_file} for peers does not exist")
        self._token = token
        #: peer_timeout bounds opening a connection and each wait for more bytes.
        self._timeout = Timeout(connect=timeout, read=timeout)
        # block=False: a fill never waits for a pooled connection; past the bound
        # a connection is opened anyway and closed after use instead of kept.
        self._pools = urllib3.PoolManager(
            num_pools=pools, maxsize=connections_per_peer, block=False, retries=False,
            cert_reqs="CERT_REQUIRED", ca_certs=ca_file,
        )

    @classmethod
    def for_settings(cls, settings: Settings) -> PeerReader:
        """The reader of a node whose peer fill is on (``peer_token`` set)."""
        if not settings.peer_token:
            raise ValueError("reading from peers needs peer_token")
        return cls(settings.peer_token, timeout=settings.peer_timeout, ca_file=settings.ca_file)

    def close(self) -> None:
        """Close the pooled connections (the reader stays usable)."""
        self._pools.clear()

    def read(self, peer: str, image_id: str, *, start: int = 0, size: int | None = None) -> Iterator[bytes]:
        """The image's bytes from ``start`` as ``peer`` (its node_url) sends them; PeerFailed on any failure.

        ``size`` is the image's size by the origin's metadata (None: unknown):
        the peer must send exactly the bytes from ``start`` to it.  The
        request goes out when iteration starts; close() the iterator when
        giving up on it, so its connection is settled.
        """
        return self._read(peer, image_id, start, size)

    def _read(self, peer: str, image_id: str, start: int, size: int | None) -> Iterator[bytes]:
        resp = self._open(peer, image_id, start)
        got = 0
        finished = False
        try:
            length = _expected_length(resp, start, size)
            for received in resp.stream(READ_CHUNK, decode_content=False):
                chunk = received if length is None else received[: length - got]
                if chunk:
                    got += len(chunk)
                    yield chunk
                if len(chunk) < len(received):
                    raise _BadAnswer(f"it sent more than the {length} bytes from {start}")
            if length is not None and got < length:
                raise _BadAnswer(f"its body ended after {got} of {length} bytes")
            finished = True
        except _BadAnswer as exc:
            raise PeerFailed(peer, image_id, start + got, str(exc)) from None
        except (HTTPError, OSError) as exc:
            raise PeerFailed(peer, image_id, start + got, innermost(exc)) from exc
        finally:
            if not finished:
                resp.close()  # a half-read connection must not go back to the pool
            resp.release_conn()

    def _open(self, peer: str, image_id: str, start: int) -> BaseHTTPResponse:
        try:
            url = parse_url(peer)
        except ValueError as exc:
            raise PeerFailed(peer, image_id, start, f"not a URL: {exc}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise PeerFailed(peer, image_id, start, "not an http or https URL")
        headers = {TOKEN_HEADER: self._token}
        if start > 0:
            headers["Range"] = f"bytes={start}-"
        path = (url.path or "").rstrip("/") + PEER_PATH.format(image_id)
        try:
            pool = self._pools.connection_from_host(url.host, port=url.port, scheme=url.scheme)
            return pool.urlopen(
                "GET", path, headers=headers, timeout=self._timeout, retries=False, redirect=False,
                assert_same_host=False, preload_content=False, decode_content=False, release_conn=False,
            )
        except (HTTPError, OSError) as exc:
            raise PeerFailed(peer, image_id, start, innermost(exc)) from exc


class _BadAnswer(Exception):
    """The peer answered, but not with the bytes asked for."""


def _expected_length(resp: BaseHTTPResponse, start: int, size: int | None) -> int | None:
    """How many bytes the answer must carry (None: unknown), or _BadAnswer if it is not the part asked for.

    Our endpoint honours the Range: a 200 to a request from an offset is no
    answer to it (its body could be the whole image or the rest: nobody can
    tell), and neither is a redirect, which is never followed.
    """
    status = resp.status
    if status == 206:
        sent = parse_content_range(resp.headers.get("Content-Range"))
        if sent is None or sent.first != start:
            raise _BadAnswer(f"it sent Content-Range {resp.headers.get('Content-Range')!r} for bytes {start}-")
        if size is not None and (sent.last != size - 1 or sent.size not in (None, size)):
            raise _BadAnswer(f"it sent Content-Range {resp.headers.get('Content-Range')!r} of a {size}-byte image")
    elif status != 200 or start != 0:
        raise _BadAnswer(f"it answered {status}" + (" to a Range request" if status == 200 else ""))
    announced = _number(resp.headers.get("X-Image-Meta-Size"), "X-Image-Meta-Size")
    if announced is not None and size is not None and announced != size:
        raise _BadAnswer(f"it says the image has {announced} bytes, the origin {size}")
    length = _number(resp.headers.get("Content-Length"), "Content-Length")
    if size is not None:
        if length is not None and length != size - start:
            raise _BadAnswer(f"it announced {length} bytes from {start} of a {size}-byte image")
        return size - start
    return length


def _number(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit():
        raise _BadAnswer(f"it sent {name} {value!r}")
    return int(text)
