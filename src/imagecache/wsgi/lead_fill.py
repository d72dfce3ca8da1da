"""Leading a fill for one caller: claim it, start it from peers or the app, or say why the image is not stored.

The cache filter comes here on a miss that nobody is filling yet.  The
claim is the cache's decision (:meth:`ImageCache.try_claim_fill`: too large,
disk full, a cache error, or someone else has it); starting the claimed
fill is this module's: from peers when peer fill finds any, else from the
app's data answer, which must be a 200 whose Content-MD5 (when sent)
agrees with the metadata.  Either way the caller learns what to tell the
client: a :class:`FillAnswer` to stream, or the reason to pass the request
through, and every origin request is counted by why it was made.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from imagecache.cache import Declined, FillClaim, ImageCache, TailReader
from imagecache.http.cache_status import CacheStatus
from imagecache.http.closing import quiet_close
from imagecache.metrics import Metrics, PassReason
from imagecache.peers.fills import PeerFills
from imagecache.wsgi.bodies import CountingBody
from imagecache.wsgi.image_source import ImageSource

LOG = logging.getLogger(__name__)

#: The filling request's answer: its response will be stored ...
STORED = CacheStatus(fwd="miss", stored=True)
#: ... from the bytes of peers (docs/peer-fill.md).
STORED_FROM_PEERS = CacheStatus(fwd="miss", stored=True, detail="peer")


@dataclass(frozen=True)
class FillAnswer:
    """A fill to stream to a caller (one it started, or one it joined), and what the answer says of it."""

    reader: TailReader
    cache_status: CacheStatus
    #: The app's own Cache-Status field lines on the data it sends (kept before ours).
    upstream: tuple[str, ...] = ()


class FillLeader:
    """Claims and starts the fills of one filter."""

    def __init__(self, cache: ImageCache, source: ImageSource, metrics: Metrics, peers: PeerFills | None) -> None:
        self.cache = cache
        self.source = source
        self.metrics = metrics
        self.peers = peers

    def claim(self, image_id: str, image: Mapping[str, Any], size: int | None) -> FillClaim | Declined:
        """The cache's answer to "may I fill this image?"; a failure to ask is a cache error (counted here)."""
        try:
            return self.cache.try_claim_fill(
                image_id,
                image.get("checksum"),
                os_hash_algo=image.get("os_hash_algo"),
                os_hash_value=image.get("os_hash_value"),
                size=size,
            )
        except Exception:  # the cache never fails a download
            LOG.exception("cannot start caching image %s", image_id)
            self.metrics.count_not_stored("cache-error")
            return Declined("cache-error")

    def lead(
        self, environ: Mapping[str, Any], image_id: str, image: Mapping[str, Any], claim: FillClaim
    ) -> FillAnswer | PassReason:
        """Start ``claim``'s fill from peers or the app; or why not (the claim is then given up).

        A reason returned here has not been counted as not stored: the caller
        counts it when the app's answer carries the image.
        """
        if self.peers is not None:
            reader = self._from_peers(self.peers, environ, image_id, claim)
            if reader is not None:
                return FillAnswer(reader, STORED_FROM_PEERS)
        read = self.metrics.origin_request("fill")
        try:
            status, headers, body = self.source.data(environ, image_id)
        except Exception:
            claim.cancel()
            raise
        if status != 200:
            quiet_close(body)
            claim.cancel()
            return "origin-error"
        header = {k.lower(): v for k, v in headers.items()}
        upstream_md5 = header.get("content-md5")
        if upstream_md5 and image.get("checksum") and upstream_md5 != image["checksum"]:
            LOG.warning("image %s: the data's Content-MD5 differs from its metadata; not caching it", image_id)
            quiet_close(body)
            claim.cancel()
            return "verify-failed"
        try:
            reader = claim.start(CountingBody(body, read))
        except Exception:  # the cache never fails a download
            LOG.exception("cannot start the fill of image %s", image_id)
            quiet_close(body)
            claim.cancel()
            return "cache-error"
        upstream = tuple(v for k, v in headers.items() if k.lower() == "cache-status")
        return FillAnswer(reader, STORED, upstream)

    def _from_peers(
        self, peers: PeerFills, environ: Mapping[str, Any], image_id: str, claim: FillClaim
    ) -> TailReader | None:
        """The fill started from peers (the app when they fail), or None: the claim is to be filled from the app."""
        try:
            return peers.start(claim, lambda start: self.source.data(environ, image_id, start=start))
        except Exception:  # the cache never fails a download: the app answers
            LOG.exception("cannot start the fill of image %s from peers", image_id)
            return None
