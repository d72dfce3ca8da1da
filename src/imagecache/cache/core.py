"""ImageCache: an LRU cache of image files on local disk with a prefetch queue.

The public face of the library.  It joins three narrow parts: the layout
(the files), a driver (the index: sqlite, xattr or central) and the fill
pipeline (:mod:`~imagecache.cache.pipeline`: one writer per image, verified
before it is published).  No HTTP in here.

Guarantees:

* only a file whose size and hashes match the image's metadata is ever
  published, by an atomic rename; a reader never sees a partial file;
* a cache failure (disk full, permissions, a driver error) never breaks the
  caller's stream: the chunks keep flowing, the cache just does not keep them;
* the verified files never exceed ``image_cache_max_size``, and at least
  ``image_cache_min_free`` bytes stay free on the filesystem: room is made,
  least recently used first, before a file is published;
* a pinned image (:attr:`ImageCache.pins`, :mod:`~imagecache.cache.pins`) is
  never evicted: only pinned images may hold the cache past its limit, and
  they say so.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, BinaryIO, NamedTuple, TypeVar

from imagecache.cache.drivers.base import CachedImage, Driver, FleetEntry, ListingRow, PeerSource
from imagecache.cache.drivers.choose import make_driver
from imagecache.cache.errors import DriverConfigError, ImageNotCached
from imagecache.cache.eviction import Shortfall, room_for
from imagecache.cache.fill import is_locked
from imagecache.cache.flight import FillClaim, remove_stalled
from imagecache.cache.hit_flush import HitFlusher
from imagecache.cache.layout import CacheLayout, validate_image_id
from imagecache.cache.pins import CachePins
from imagecache.cache.pipeline import Declined, FillPipeline
from imagecache.cache.progress import ProgressWatch
from imagecache.cache.tail import TailReader, open_reader
from imagecache.cache.verify import Expected
from imagecache.config import Settings

if TYPE_CHECKING:
    from imagecache.metrics import Metrics

LOG = logging.getLogger(__name__)
_T = TypeVar("_T")
READ_CHUNK = 1 << 20
#: Seconds a change mark is kept (far above any sensible auth_cache_ttl).
CHANGE_MARK_LIFETIME = 3600.0


class CleanResult(NamedTuple):
    invalid_removed: int
    stalled_removed: int

    @property
    def total(self) -> int:
        return self.invalid_removed + self.stalled_removed


class ReconcileResult(NamedTuple):
    rows_dropped: int
    files_adopted: int
    files_invalidated: int
    stalled_removed: int


class ImageCache:
    """An LRU cache of verified image files, configured by explicit settings."""

    def __init__(
        self,
        settings: Settings,
        *,
        reconcile: bool = False,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        if metrics is None:
            # Imported here: the cache's modules load without prometheus_client
            # until a cache is built without the caller's counters.
            from imagecache.metrics import Metrics

            metrics = Metrics()
        #: Counters shared with the filters in front of this cache (its own when none are given).
        self.metrics: Metrics = metrics
        self.layout = CacheLayout(settings.image_cache_dir)
        self.layout.ensure()
        self._clock = clock
        #: Wakes the readers of fills in this process when their file changes.
        self.progress = ProgressWatch()
        self.driver: Driver
        self.init_driver()
        #: Hits counted in memory, written in one transaction per interval; flushed before counts are read.
        #: Through a lambda: the batch goes to whichever driver the cache holds when it is written.
        self.hits = HitFlusher(lambda batch: self.driver.record_hits(batch),  # noqa: PLW0108
                               settings.image_cache_hit_flush_interval)
        #: Pinned images: never evicted (pin, unpin, list, the state against the limit).
        self.pins = CachePins(self)
        self._fills = FillPipeline(self, clock)
        if reconcile:
            self.reconcile()

    # -- the driver -----------------------------------------------------------
    def init_driver(self) -> None:
        """Load and configure the configured driver; xattr falls back to sqlite if it cannot work.

        Only xattr falls back: a node configured for the central index must
        not quietly keep a private one that no other node can see.
        """
        name = self.settings.image_cache_driver
        try:
            self.driver = make_driver(name, self.layout, self.settings)
            self.configure_driver()
        except DriverConfigError as exc:
            if name != "xattr":
                raise
            LOG.warning("image cache driver %r cannot be used (%s); falling back to sqlite", name, exc)
            self.driver = make_driver("sqlite", self.layout, self.settings)
            self.configure_driver()

    def configure_driver(self) -> None:
        self.driver.configure()

    def close(self) -> None:
        self.hits.close()
        self.progress.close()
        self.driver.close()

    # -- questions --------------------------------------------------------------
    def is_cached(self, image_id: str) -> bool:
        return self.layout.exists(image_id)

    def is_queued(self, image_id: str) -> bool:
        return self.driver.is_queued(validate_image_id(image_id))

    def is_being_cached(self, image_id: str) -> bool:
        return is_locked(self.layout.incomplete_path(image_id))

    def get_cache_size(self) -> int:
        return self.driver.total_size()

    def get_hit_count(self, image_id: str) -> int:
        self.hits.flush()
        return record.hits if (record := self.driver.get(validate_image_id(image_id))) else 0

    def get_image_size(self, image_id: str) -> int | None:
        return facts.size if (facts := self.layout.stat(image_id)) else None

    def get_cached_image(self, image_id: str) -> CachedImage | None:
        """The record (its checksums, for every hit): no flush, so its counts may lag this process's hits."""
        return self.indexed(image_id) if self.layout.exists(validate_image_id(image_id)) else None

    def indexed(self, image_id: str) -> CachedImage | None:
        """The index's record, for a caller that already holds the file open (no look at the file)."""
        return self.driver.get(validate_image_id(image_id))

    def get_cached_images(self) -> list[CachedImage]:
        """Records of the cached images, most recently accessed first."""
        self.hits.flush()
        return self.driver.list()

    def listing_rows(self) -> Iterator[ListingRow]:
        """The listing's columns, most recently accessed first, once this process's hits are written."""
        self.hits.flush()
        return self.driver.listing_rows()

    def get_queued_images(self) -> list[str]:
        """Queued image ids, oldest queued first."""
        return self.driver.queued()

    def get_cached_nodes(self, image_id: str) -> list[str] | None:
        """Reference URLs of the live nodes caching ``image_id``; None when the index has no nodes."""
        nodes = self.driver.cached_nodes(validate_image_id(image_id))
        return None if nodes is None else list(nodes)

    # -- peer fill (docs/peer-fill.md) ------------------------------------------------
    # What a fill's source chooser asks of the index.  Failures never reach a
    # download: no peers, and a claim won (at worst a second origin read).
    def peer_sources(self, image_id: str) -> list[PeerSource]:
        """Live peers holding or filling ``image_id``, best first (same site, holders, most bytes)."""
        return self._asking("the peers of", image_id, lambda i: list(self.driver.peer_sources(i)), [])

    def claim_cluster_fill(self, image_id: str) -> bool:
        """True: this node is the cluster's one reader of ``image_id`` from the origin."""
        return self._asking("the cluster's claim on", image_id, self.driver.claim_cluster_fill, True)

    def mark_suspect(self, peer_url: str, seconds: float) -> None:
        """Read nothing from ``peer_url`` for ``seconds``: its bytes failed verification."""
        try:
            self.driver.mark_suspect(peer_url, seconds)
        except Exception:  # the index must not fail a download
            LOG.exception("could not mark peer %s suspect", peer_url)

    def fleet(self) -> list[FleetEntry]:
        """Every node's cached and filling images (empty without nodes); CacheError when the index fails."""
        self.hits.flush()
        return list(self.driver.fleet())

    def _asking(self, what: str, image_id: str, ask: Callable[[str], _T], fallback: _T) -> _T:
        image_id = validate_image_id(image_id)
        try:
            return ask(image_id)
        except Exception:  # the index must not fail a download
            LOG.exception("could not ask the index for %s image %s", what, image_id)
            return fallback

    # -- the queue ------------------------------------------------------------
    def queue_image(self, image_id: str) -> bool:
        """Queue for prefetching; False when already queued, cached or being cached."""
        image_id = validate_image_id(image_id)
        if self.is_cached(image_id) or self.is_being_cached(image_id):
            return False
        return self.driver.queue(image_id)

    def delete_queued_image(self, image_id: str) -> bool:
        return self.driver.dequeue(validate_image_id(image_id))

    def delete_all_queued_images(self) -> int:
        return self.driver.clear_queue()

    # -- deleting ---------------------------------------------------------------
    def delete_cached_image(self, image_id: str) -> bool:
        """Evict one image (a pin stays); readers that have it open keep streaming."""
        image_id = validate_image_id(image_id)
        removed_file, removed_row = self.layout.remove(image_id), self.driver.remove(image_id)
        if removed_file:
            self.metrics.evictions.inc()
        return removed_file or removed_row

    def delete_all_cached_images(self) -> int:
        """Evict every image, pinned ones too (their pins stay); how many were removed."""
        ids = {facts.image_id for facts in self.layout.published()} | self.driver.ids()
        deleted = sum(1 for image_id in ids if self.delete_cached_image(image_id))
        self.pins.check()
        return deleted

    # -- reading ------------------------------------------------------------------
    @contextlib.contextmanager
    def open_for_read(self, image_id: str) -> Iterator[BinaryIO]:
        """The open cached file; a read that completes (no exception) counts as a hit."""
        with self.open_cached(image_id) as fh:
            yield fh
        self.record_hit(image_id)

    def open_cached(self, image_id: str) -> BinaryIO:
        """The open verified file, for callers that count the hit (:meth:`record_hit`) once sent; ImageNotCached."""
        try:
            return open(self.layout.path(image_id), "rb")  # the caller closes it
        except FileNotFoundError:
            raise ImageNotCached(f"image {image_id} is not cached") from None

    def record_hit(self, image_id: str) -> None:
        """Count a completed read, written with the next batch (errors are logged: a hit count never fails a read)."""
        try:
            self.hits.record(validate_image_id(image_id), self._clock())
        except Exception:  # the index must not fail a download
            LOG.exception("could not record a hit for image %s", image_id)

    # -- writing ------------------------------------------------------------------
    # Glance's signatures, kept for its callers (``image_checksum=`` ...); each
    # builds one Expected from the image's metadata and hands it to the pipeline.
    def get_caching_iter(
        self,
        image_id: str,
        image_checksum: str | None,
        image_iter: Iterable[bytes],
        *,
        os_hash_algo: str | None = None,
        os_hash_value: str | None = None,
        size: int | None = None,
    ) -> Iterator[bytes]:
        """Yield ``image_iter``'s chunks while caching them (Glance's argument order).

        On a verification mismatch the file goes to ``invalid/`` and
        ImageVerificationError is raised after the last chunk, so the caller's
        response is aborted instead of completing with a wrong image.
        """
        validate_image_id(image_id)
        expected = Expected(image_checksum, os_hash_algo, os_hash_value, size)
        return self._fills.tee(image_id, image_iter, expected)

    def cache_tee_iter(
        self,
        image_id: str,
        image_iter: Iterable[bytes],
        image_checksum: str | None,
        *,
        os_hash_algo: str | None = None,
        os_hash_value: str | None = None,
        size: int | None = None,
    ) -> Iterator[bytes]:
        """Glance's other spelling of :meth:`get_caching_iter`."""
        validate_image_id(image_id)
        expected = Expected(image_checksum, os_hash_algo, os_hash_value, size)
        return self._fills.tee(image_id, image_iter, expected)

    def cache_image_iter(
        self,
        image_id: str,
        image_iter: Iterable[bytes],
        image_checksum: str | None = None,
        *,
        os_hash_algo: str | None = None,
        os_hash_value: str | None = None,
        size: int | None = None,
    ) -> bool:
        """Cache from an iterator; True when cached, False when not cacheable.

        Raises ImageVerificationError when the bytes do not match.
        """
        image_id = validate_image_id(image_id)
        expected = Expected(image_checksum, os_hash_algo, os_hash_value, size)
        return self._fills.copy(image_id, image_iter, expected)

    def cache_image_file(
        self,
        image_id: str,
        image_file: BinaryIO,
        image_checksum: str | None = None,
        *,
        os_hash_algo: str | None = None,
        os_hash_value: str | None = None,
        size: int | None = None,
    ) -> bool:
        """Cache from an open file; True when cached, False when not cacheable."""
        image_id = validate_image_id(image_id)
        expected = Expected(image_checksum, os_hash_algo, os_hash_value, size)
        return self._fills.copy(image_id, iter(lambda: image_file.read(READ_CHUNK), b""), expected)

    # -- single-flight fills ------------------------------------------------------
    def claim_fill(
        self,
        image_id: str,
        image_checksum: str | None = None,
        *,
        os_hash_algo: str | None = None,
        os_hash_value: str | None = None,
        size: int | None = None,
    ) -> FillClaim | None:
        """The right to fill ``image_id`` in the background, or None.

        None means: cached already, being filled by someone else (follow it
        with :meth:`follow`), or not cacheable (too large, cache unwritable).
        Start the claim with the image's data, or cancel it.
        """
        claimed = self.try_claim_fill(image_id, image_checksum, os_hash_algo=os_hash_algo,
                                      os_hash_value=os_hash_value, size=size)
        return claimed if isinstance(claimed, FillClaim) else None

    def try_claim_fill(self, image_id: str, image_checksum: str | None = None, *, os_hash_algo: str | None = None,
                       os_hash_value: str | None = None, size: int | None = None) -> FillClaim | Declined:
        """:meth:`claim_fill`, saying why there is no claim: ``Declined.reason`` (too large, disk full, a cache
        error), or None when the image is cached or being filled by someone else."""
        image_id = validate_image_id(image_id)
        return self._fills.claim(image_id, Expected(image_checksum, os_hash_algo, os_hash_value, size))

    def follow(self, image_id: str, size: int | None = None) -> TailReader | None:
        """A reader of the fill in progress for ``image_id`` (any process), or None.

        ``size`` (from the image's metadata) lets the reader hold the last
        byte back until the file is verified and published.
        """
        try:
            return open_reader(self.layout, validate_image_id(image_id), size, self.progress)
        except OSError:
            LOG.exception("cannot follow the fill of image %s", image_id)
            return None

    # -- size limits -----------------------------------------------------------
    def prune(self) -> tuple[int, int]:
        """Evict least recently used images until within the size limit: (files, bytes).

        Pinned images stay, even when they alone exceed the limit (then all others go, and that is said).
        """
        self.hits.flush()  # the LRU order includes this process's latest hits
        with self.layout.publish_lock():
            excess = self.driver.total_size() - self.settings.image_cache_max_size
            sizes: dict[str, int] = {}

            def lru_order() -> Iterator[tuple[str, int]]:
                # Read only as far as the eviction goes, remembering what was read.
                for record in self.driver.lru():
                    sizes[record.image_id] = record.size
                    yield record.image_id, record.size

            victims = [] if excess <= 0 else room_for(lru_order(), Shortfall(excess, 0), self.pins.ids(),
                                                      pinned=True) or []
            pruned = bytes_pruned = 0
            for image_id in victims:
                if self.delete_cached_image(image_id):
                    pruned += 1
                    bytes_pruned += sizes[image_id]
        if pruned:
            LOG.info("pruned %d images, %d bytes", pruned, bytes_pruned)
        self.pins.check()
        return pruned, bytes_pruned

    # -- housekeeping ----------------------------------------------------------
    def clean(self, stall_time: float | None = None) -> CleanResult:
        """Remove every invalid file, and incomplete files untouched for ``stall_time`` seconds."""
        if stall_time is None:
            stall_time = self.settings.image_cache_stall_time
        self.hits.flush()  # the cleaner's run also writes what a quiet node still holds
        invalid = sum(1 for facts in list(self.layout.invalid()) if self.layout.remove_invalid(facts.image_id))
        # Change marks only matter for as long as an authorization answer is memoised.
        self.layout.forget_changes(self._clock() - CHANGE_MARK_LIFETIME)
        return CleanResult(invalid, remove_stalled(self.layout, self._clock() - stall_time))

    def reconcile(self) -> ReconcileResult:
        """Make the index agree with the files after a crash (run at start-up).

        Rows without files are dropped; verified files without rows are adopted
        with their sizes; a file whose size disagrees with its row is moved to
        ``invalid/``; stalled incomplete files no live writer holds are removed.
        """
        self.hits.flush()
        with self.layout.publish_lock():
            files = {facts.image_id: facts for facts in self.layout.published()}
            records = {r.image_id: r for r in self.driver.list()}
            dropped = invalidated = 0
            for image_id, record in records.items():
                facts = files.get(image_id)
                if facts is None:
                    dropped += self.driver.remove(image_id)
                elif facts.size != record.size:
                    LOG.error("cached image %s has %d bytes, index says %d; invalidating",
                              image_id, facts.size, record.size)
                    with contextlib.suppress(FileNotFoundError):
                        os.replace(self.layout.path(image_id), self.layout.invalid_path(image_id))
                    self.driver.remove(image_id)
                    invalidated += 1
            orphans = [
                CachedImage(image_id, facts.size, 0, facts.mtime, facts.mtime)
                for image_id, facts in files.items()
                if image_id not in records
            ]
            self.driver.add_many(orphans)
        stalled = remove_stalled(self.layout, self._clock() - self.settings.image_cache_stall_time)
        result = ReconcileResult(dropped, len(orphans), invalidated, stalled)
        if any(result):
            LOG.warning("reconciled the cache index with its files: %s", result._asdict())
        self.pins.check(restate=True)  # a node starting with pins over its limit says so at once
        return result

