"""The fills a node leads with peer fill on: from its peers, and never again from a peer that lied.

The cache filter claims a fill as ever and hands the claim to
:meth:`PeerFills.start`, which picks the source (docs/peer-fill.md "A miss
with peer fill on"): peers that hold or are filling the image, or, when
this node is the cluster's one claimant (or nobody else can give it), the
origin, which the filter reads exactly as it does without peers.  Bytes
from peers go into the node's own fill, verified like the origin's.

When a fill that peers sent bytes to fails verification, those peers are
marked suspect (not read from for ``suspect_for`` seconds), a warning names
them, and the image is filled again at once from the origin alone, as the
same caller: the clients whose responses the bad file cut off find that
fill when they try again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping

from imagecache.cache import FillClaim, FillResult, ImageCache, TailReader
from imagecache.cache.fill_source import record_peer_source
from imagecache.config import Settings
from imagecache.metrics import Metrics, OriginReason
from imagecache.peers.origin import OpenData, origin_reader
from imagecache.peers.reader import PeerReader
from imagecache.peers.source import FillSource, Origin, PeerFetch, PeerIndex, choose_peers

LOG = logging.getLogger(__name__)

#: Seconds a peer whose bytes failed verification is not read from (``peer_suspect_for``).
SUSPECT_FOR = 600.0


class PeerFills:
    """Starts one worker's fills from peers, and settles them when they end."""

    def __init__(
        self,
        cache: ImageCache,
        index: PeerIndex,
        fetch: PeerFetch,
        *,
        metrics: Metrics | None = None,
        suspect_for: float = SUSPECT_FOR,
    ) -> None:
        self._cache = cache
        self._index = index
        self._fetch = fetch
        self._metrics = metrics if metrics is not None else cache.metrics
        self._suspect_for = suspect_for

    @classmethod
    def for_settings(cls, cache: ImageCache, settings: Settings) -> PeerFills:
        """The peer fills of a node whose peer fill is on (:func:`imagecache.config.peer_fill_on`)."""
        return cls(cache, cache, PeerReader.for_settings(settings).read)  # ImageCache is the PeerIndex

    def start(self, claim: FillClaim, open_data: OpenData) -> TailReader | None:
        """Start ``claim``'s fill from peers: the claimant's reader, or None when this node reads the origin.

        With None the claim is untouched, for the caller to fill from the
        origin as it would without peers.  ``open_data(start)`` is the
        origin's data answer for this caller, should the peers fail.
        """
        image_id, size = claim.image_id, claim.expected.size
        peers = choose_peers(self._index, image_id)
        if not peers:
            return None
        origin = self._origin(open_data, image_id, size, "peer-fallback")
        record_peer_source(claim.layout, image_id)  # for the node's activity: this fill spares the origin
        source = FillSource(image_id, size, peers, self._fetch, origin, on_peer_bytes=self._metrics.peer_bytes.inc)
        claim.on_done(lambda done, result: self._ended(done, result, source, open_data))
        return claim.start(source)

    def _ended(self, claim: FillClaim, result: FillResult, source: FillSource, open_data: OpenData) -> None:
        """Count how a fill that peers sent bytes to ended; distrust them if it failed verification."""
        if not source.senders:
            return  # every byte came from the origin: no peer fill
        if not claim.failed_verification:
            self._count("completed" if result is FillResult.COMPLETED else "failed")
            return
        again = self._claim_again(claim)  # first: the clients cut off come back at once
        peers = sorted(source.senders)
        for peer in peers:
            try:
                self._index.mark_suspect(peer, self._suspect_for)
            except Exception as exc:  # noqa: BLE001 - the refill matters more than the mark
                LOG.warning("could not mark peer %s suspect: %s", peer, exc)
        LOG.warning("image %s failed verification with bytes from peer %s; not reading from %s for %g s, "
                    "filling it again from the origin", claim.image_id, ", ".join(peers),
                    "it" if len(peers) == 1 else "them", self._suspect_for)
        self._count("suspect")
        if again is not None:
            self._refill(again, open_data)

    def _claim_again(self, failed: FillClaim) -> FillClaim | None:
        facts = failed.expected
        try:
            claim = self._cache.claim_fill(failed.image_id, facts.checksum, os_hash_algo=facts.os_hash_algo,
                                           os_hash_value=facts.os_hash_value, size=facts.size)
        except Exception:  # the cache never fails a download: the next miss fills it
            LOG.exception("cannot fill image %s again", failed.image_id)
            return None
        if claim is None:
            LOG.info("image %s is being filled (or cached) already; not filling it again here", failed.image_id)
        return claim

    def _refill(self, claim: FillClaim, open_data: OpenData) -> None:
        """Fill ``claim`` from the origin only, on its own thread, holding a reader until it ends.

        Nobody may be reading yet (the clients come back when they will), and
        a fill nobody reads is abandoned: the held reader keeps it going.
        """
        origin = self._origin(open_data, claim.image_id, claim.expected.size, "fill")
        keeper = _ReaderKeeper()
        claim.on_done(keeper.ended)
        try:
            keeper.keep(claim.start(origin(0)))
        except Exception:  # the cache never fails a download: the next miss fills it
            LOG.exception("cannot fill image %s again from the origin", claim.image_id)
            claim.cancel()

    def _count(self, result: str) -> None:
        self._metrics.peer_fills.labels(result=result).inc()

    def _origin(self, open_data: OpenData, image_id: str, size: int | None, reason: OriginReason) -> Origin:
        """The origin's bytes of the image from any offset, each request and byte counted for ``reason``."""
        requests = self._metrics.origin_requests.labels(reason=reason)

        def counted(start: int) -> tuple[int, Mapping[str, str], Iterable[bytes]]:
            requests.inc()
            return open_data(start)

        return origin_reader(counted, image_id, size, self._metrics.from_origin(reason))


class _ReaderKeeper:
    """The one reader of a refill until the refill ends (it may end before the reader is handed over)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reader: TailReader | None = None
        self._ended = False

    def keep(self, reader: TailReader) -> None:
        with self._lock:
            if not self._ended:
                self._reader = reader
                return
        reader.close()

    def ended(self, claim: FillClaim, result: FillResult) -> None:
        with self._lock:
            self._ended = True
            reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()
