"""Where a fill reads an image from: peers best first, the origin last, resuming at the offset reached.

docs/peer-fill.md "A miss with peer fill on": :func:`choose_peers` asks the
central index for live peers that hold or are filling the image; with none,
it claims the cluster's fill, and a node that loses the claim asks again,
since the winner is filling now.  :class:`FillSource` is then the fill's
one iterator of bytes: each peer in turn from the offset the last one
reached, and the origin, with ``Range: bytes=<offset>-``, once no peer is
left, so nothing already written is read twice.  It remembers which peers
sent bytes, so that a fill that fails verification can name them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from typing import Protocol

from imagecache.cache import PeerSource
from imagecache.cache.flight import close_source
from imagecache.peers.reader import PeerFailed

LOG = logging.getLogger(__name__)

#: Count ``n`` bytes somewhere (a metric).
Count = Callable[[int], None]
#: origin(start) -> the image's bytes from ``start`` on, exactly; raises when it cannot.
Origin = Callable[[int], Iterable[bytes]]


class PeerIndex(Protocol):
    """What peer fill asks of the central index (the driver contract of docs/peer-fill.md)."""

    def peer_sources(self, image_id: str) -> list[PeerSource]: ...

    def claim_cluster_fill(self, image_id: str) -> bool: ...

    def mark_suspect(self, peer_url: str, seconds: float) -> None: ...


class PeerFetch(Protocol):
    """Reads a peer (:meth:`imagecache.peers.reader.PeerReader.read`); PeerFailed on any failure."""

    def __call__(self, peer: str, image_id: str, *, start: int, size: int | None) -> Iterable[bytes]: ...


def choose_peers(index: PeerIndex, image_id: str) -> list[PeerSource]:
    """The peers to read ``image_id`` from, best first; empty: this node reads the origin.

    An index that cannot answer is a node alone: no peers, the claim won (the
    origin is always there; a download never waits on the index).
    """
    peers = _peer_sources(index, image_id)
    if peers:
        return peers
    try:
        won = index.claim_cluster_fill(image_id)
    except Exception as exc:  # noqa: BLE001 - the index's trouble is no download's
        LOG.warning("image %s: cannot claim the cluster's fill (%s); reading the origin", image_id, exc)
        return []
    if won:
        return []
    peers = _peer_sources(index, image_id)
    if not peers:
        LOG.info("image %s: another node claimed the cluster's fill but no peer has it; reading the origin",
                 image_id)
    return peers


def _peer_sources(index: PeerIndex, image_id: str) -> list[PeerSource]:
    try:
        return list(index.peer_sources(image_id))
    except Exception as exc:  # noqa: BLE001 - the index's trouble is no download's
        LOG.warning("image %s: cannot ask the index for peers (%s); not reading from peers", image_id, exc)
        return []


class FillSource:
    """One fill's bytes: from ``peers`` in turn, then from the origin, each from the offset reached.

    Iterate it once (a fill does), and close() it at the end: the connection
    being read is settled.  ``senders`` says how many bytes each peer sent.
    """

    def __init__(
        self,
        image_id: str,
        size: int | None,
        peers: Sequence[PeerSource],
        fetch: PeerFetch,
        origin: Origin,
        *,
        on_peer_bytes: Count = lambda n: None,
    ) -> None:
        self.image_id = image_id
        self.size = size
        self._peers = list(peers)
        self._fetch = fetch
        self._origin = origin
        self._on_peer_bytes = on_peer_bytes
        #: Bytes handed to the fill so far: where the next source starts.
        self.offset = 0
        #: node_url -> bytes that peer sent, for the peers that sent any.
        self.senders: dict[str, int] = {}
        self._chunks = self._all()

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self._chunks)

    def close(self) -> None:
        self._chunks.close()

    def _all(self) -> Generator[bytes, None, None]:
        for number, peer in enumerate(self._peers, 1):
            try:
                yield from self._from_peer(peer.url)
            except PeerFailed as exc:
                why = str(exc)
            else:
                why = f"peer {peer.url} ended image {self.image_id} at byte {self.offset}"
                if self.size is None:
                    return  # the whole image, as far as anyone can tell: the fill's verification decides
            if self.size is not None and self.offset >= self.size:
                return  # every byte is in (a peer that sent more had the rest cut off)
            LOG.warning("%s; going on from %s", why, "the next peer" if number < len(self._peers) else "the origin")
        body = self._origin(self.offset)
        try:
            for chunk in body:
                self.offset += len(chunk)
                yield chunk
        finally:
            close_source(body)

    def _from_peer(self, peer: str) -> Iterator[bytes]:
        body = self._fetch(peer, self.image_id, start=self.offset, size=self.size)
        try:
            for chunk in body:
                self.offset += len(chunk)
                self.senders[peer] = self.senders.get(peer, 0) + len(chunk)
                self._on_peer_bytes(len(chunk))
                yield chunk
        finally:
            close_source(body)
