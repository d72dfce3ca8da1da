"""ImageCache: an LRU cache of image files on local disk with a prefetch queue.

The public face of the library.  It joins three narrow parts: the layout
(the files), a driver (the index: sqlite, xattr or central) and fills (one
writer per image, verified before it is published).  No HTTP in here.

Guarantees:

* only a file whose size and hashes match the image's metadata is ever
  published, by an atomic rename; a reader never sees a partial file;
* a cache failure (disk full, permissions, a driver error) never breaks the
  caller's stream: the chunks keep flowing, the cache just does not keep them;
* the verified files never exceed ``image_cache_max_size``, and at least
  ``image_cache_min_free`` bytes stay free on the filesystem: room is made,
  least recently used first, before a file is published.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, NamedTuple

from imagecache.cache.drivers.base import CachedImage, Driver
from imagecache.cache.drivers.sqlite import SqliteDriver
from imagecache.cache.errors import (
    CacheError,
    DriverConfigError,
    FillFailed,
    ImageNotCached,
    ImageVerificationError,
    InvalidImageId,
)
from imagecache.cache.eviction import bytes_to_free, select_victims
from imagecache.cache.fill import FillWriter, is_locked, remove_if_stalled
from imagecache.cache.flight import FillClaim, FillResult, TailReader, open_reader
from imagecache.cache.layout import CacheLayout, validate_image_id
from imagecache.cache.progress import ProgressWatch
from imagecache.cache.verify import Expected, mismatch, multihash_algo
from imagecache.config import Settings, effective_min_free
from imagecache.metrics import Metrics

__all__ = [
    "CacheError",
    "CachedImage",
    "CleanResult",
    "DriverConfigError",
    "FillClaim",
    "FillFailed",
    "FillResult",
    "ImageCache",
    "ImageNotCached",
    "ImageVerificationError",
    "InvalidImageId",
    "ReconcileResult",
    "TailReader",
]

LOG = logging.getLogger(__name__)
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


def _make_driver(name: str, layout: CacheLayout, settings: Settings) -> Driver:
    """Drivers by name: a table, not string-built dispatch."""
    if name == "sqlite":
        return SqliteDriver(layout, settings.image_cache_sqlite_db)
    if name == "xattr":
        from imagecache.cache.drivers.xattr import XattrDriver

        return XattrDriver(layout)
    if name == "central":
        try:
            from imagecache.cache.drivers.central import CentralDriver
        except ImportError as exc:
            raise DriverConfigError(f"the central driver is not available: {exc}") from exc
        return CentralDriver(layout, settings)
    raise DriverConfigError(f"unknown image cache driver {name!r}")


@dataclass
class _FillOutcome:
    published: bool = False


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
        #: Counters shared with the filters in front of this cache (its own when none are given).
        self.metrics = metrics if metrics is not None else Metrics()
        self.layout = CacheLayout(settings.image_cache_dir)
        self.layout.ensure()
        self._clock = clock
        #: Wakes the readers of fills in this process when their file changes.
        self.progress = ProgressWatch()
        self.driver: Driver
        self.init_driver()
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
            self.driver = _make_driver(name, self.layout, self.settings)
            self.configure_driver()
        except DriverConfigError as exc:
            if name != "xattr":
                raise
            LOG.warning("image cache driver %r cannot be used (%s); falling back to sqlite", name, exc)
            self.driver = _make_driver("sqlite", self.layout, self.settings)
            self.configure_driver()

    def configure_driver(self) -> None:
        self.driver.configure()

    def close(self) -> None:
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
        record = self.driver.get(validate_image_id(image_id))
        return record.hits if record else 0

    def get_image_size(self, image_id: str) -> int | None:
        facts = self.layout.stat(image_id)
        return facts.size if facts else None

    def get_cached_image(self, image_id: str) -> CachedImage | None:
        image_id = validate_image_id(image_id)
        return self.driver.get(image_id) if self.layout.exists(image_id) else None

    def get_cached_images(self) -> list[CachedImage]:
        """Records of the cached images, most recently accessed first."""
        return self.driver.list()

    def get_queued_images(self) -> list[str]:
        """Queued image ids, oldest queued first."""
        return self.driver.queued()

    def get_cached_nodes(self, image_id: str) -> list[str] | None:
        """Reference URLs of the live nodes caching ``image_id``; None when the index has no nodes."""
        cached_nodes = getattr(self.driver, "cached_nodes", None)
        return None if cached_nodes is None else list(cached_nodes(validate_image_id(image_id)))

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
        """Evict one image; readers that have it open keep streaming."""
        image_id = validate_image_id(image_id)
        removed_file = self.layout.remove(image_id)
        removed_row = self.driver.remove(image_id)
        if removed_file:
            self.metrics.evictions.inc()
        return removed_file or removed_row

    def delete_all_cached_images(self) -> int:
        ids = {facts.image_id for facts in self.layout.published()} | self.driver.ids()
        return sum(1 for image_id in ids if self.delete_cached_image(image_id))

    # -- reading ------------------------------------------------------------------
    @contextlib.contextmanager
    def open_for_read(self, image_id: str) -> Iterator[BinaryIO]:
        """The open cached file; a read that completes (no exception) counts as a hit."""
        with self.open_cached(image_id) as fh:
            yield fh
        self.record_hit(image_id)

    def open_cached(self, image_id: str) -> BinaryIO:
        """The open verified file, for callers that count the hit themselves
        (with :meth:`record_hit`) once they have sent it; ImageNotCached if absent.
        """
        try:
            return open(self.layout.path(image_id), "rb")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError:
            raise ImageNotCached(f"image {image_id} is not cached") from None

    def record_hit(self, image_id: str) -> None:
        """Count a completed read (errors are logged: a hit count never fails a read)."""
        try:
            self.driver.record_hit(validate_image_id(image_id), self._clock())
        except Exception:  # noqa: BLE001 - the index must not fail a download
            LOG.exception("could not record a hit for image %s", image_id)

    # -- writing ------------------------------------------------------------------
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
        return self._tee(image_id, image_iter, expected)

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
        return self.get_caching_iter(
            image_id, image_checksum, image_iter, os_hash_algo=os_hash_algo, os_hash_value=os_hash_value, size=size
        )

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
        writer = self._start_fill(image_id, expected)
        if writer is None:
            _close(image_iter)
            return False
        outcome = _FillOutcome()
        for _ in self._fill(writer, image_iter, expected, outcome):
            pass
        return outcome.published

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
        chunks = iter(lambda: image_file.read(READ_CHUNK), b"")
        return self.cache_image_iter(
            image_id, chunks, image_checksum, os_hash_algo=os_hash_algo, os_hash_value=os_hash_value, size=size
        )

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
        image_id = validate_image_id(image_id)
        expected = Expected(image_checksum, os_hash_algo, os_hash_value, size)
        writer = self._start_fill(image_id, expected)
        if writer is None:
            return None
        return FillClaim(
            self.layout,
            writer,
            size,
            write=lambda w, chunk: self._accept_chunk(w, chunk, expected),
            finish=lambda w: self._finish(w, expected),
            on_result=self._count_fill,
            abandon_after=self.settings.fill_abandon_after,
            progress=self.progress,
        )

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

    def _count_fill(self, result: FillResult) -> None:
        self.metrics.fills.labels(result=result.value).inc()

    def _accept_chunk(self, writer: FillWriter, chunk: bytes, expected: Expected) -> bool:
        """Write ``chunk``; False (writing nothing) once the fill cannot go on."""
        limit = self.settings.image_cache_max_size
        if expected.size is not None:
            limit = min(limit, expected.size)
        if writer.size + len(chunk) > limit:
            LOG.info("image %s grew past %d bytes; not caching it", writer.image_id, limit)
            return False
        try:
            writer.write(chunk)
        except Exception as exc:  # noqa: BLE001 - disk full, EIO, ...
            LOG.warning("stopped caching image %s: %s", writer.image_id, exc)
            return False
        return True

    def _tee(self, image_id: str, image_iter: Iterable[bytes], expected: Expected) -> Iterator[bytes]:
        # The lock is taken when iteration starts, not when the iterator is
        # built, so an iterator that is never consumed holds nothing.
        writer = self._start_fill(image_id, expected)
        if writer is None:
            try:
                yield from image_iter
            finally:
                _close(image_iter)
            return
        yield from self._fill(writer, image_iter, expected, _FillOutcome())

    def _start_fill(self, image_id: str, expected: Expected) -> FillWriter | None:
        """A writer for the image, or None when it must not (or cannot) be cached."""
        if expected.size is not None and not self._fits(expected.size):
            LOG.info("image %s (%d bytes) will not be cached: larger than the cache allows", image_id, expected.size)
            return None
        algo = multihash_algo(expected, self.settings.hashing_algorithm)
        try:
            writer = FillWriter.acquire(self.layout, image_id, algo)
        except OSError as exc:
            LOG.warning("cannot cache image %s: %s", image_id, exc)
            return None
        if writer is not None and expected.size is not None:
            try:
                self._make_room(expected.size, protect=image_id)
            except Exception:  # noqa: BLE001 - eviction trouble must not fail the download
                LOG.exception("could not make room for image %s", image_id)
        return writer

    def _fits(self, size: int) -> bool:
        return size <= self.settings.image_cache_max_size

    def _fill(
        self, writer: FillWriter, image_iter: Iterable[bytes], expected: Expected, outcome: _FillOutcome
    ) -> Iterator[bytes]:
        """Yield every chunk while the writer keeps it; publish verified bytes at the end.

        The last chunk is held back until the image is published (or has
        failed verification, which raises instead): a consumer that has every
        byte finds the image cached, and never holds a wrong image whole.
        """
        active: FillWriter | None = writer
        held: bytes | None = None
        try:
            for chunk in image_iter:
                if active is not None:
                    active = self._write_or_drop(active, chunk, expected)
                if held is not None:
                    yield held
                held = chunk
        except BaseException:
            # The source failed or the consumer went away: keep nothing.
            if active is not None:
                active.discard()
            self._count_fill(FillResult.FAILED)
            raise
        finally:
            _close(image_iter)
        if active is None:
            self._count_fill(FillResult.FAILED)
        else:
            try:
                outcome.published = self._finish(active, expected)
            finally:
                self._count_fill(FillResult.COMPLETED if outcome.published else FillResult.FAILED)
        if held is not None:
            yield held

    def _write_or_drop(self, writer: FillWriter, chunk: bytes, expected: Expected) -> FillWriter | None:
        if self._accept_chunk(writer, chunk, expected):
            return writer
        writer.discard()
        return None

    def _finish(self, writer: FillWriter, expected: Expected) -> bool:
        digest = writer.digest()
        problem = mismatch(digest, expected)
        if problem is not None:
            LOG.error("image %s failed verification (%s); moved to invalid/", writer.image_id, problem)
            try:
                writer.invalidate()
            except OSError:
                LOG.exception("could not move image %s to invalid/", writer.image_id)
                writer.discard()
            raise ImageVerificationError(f"image {writer.image_id}: {problem}")
        try:
            writer.sync()  # outside the publish lock: other fills publish meanwhile
            with self.layout.publish_lock():
                if not self._make_room(digest.size, protect=writer.image_id, already_on_disk=True):
                    LOG.info("no room for image %s (%d bytes); not caching it", writer.image_id, digest.size)
                    writer.discard()
                    return False
                writer.publish()
                now = self._clock()
                self.driver.add(
                    CachedImage(
                        image_id=writer.image_id,
                        size=digest.size,
                        hits=0,
                        last_accessed=now,
                        last_modified=now,
                        checksum=digest.checksum,
                        os_hash_algo=digest.os_hash_algo,
                        os_hash_value=digest.os_hash_value,
                    )
                )
            self._release_readers(writer)
            return True
        except Exception:  # noqa: BLE001 - a cache failure never fails the download
            LOG.exception("could not publish image %s", writer.image_id)
            writer.discard()
            return self.layout.exists(writer.image_id)
        finally:
            writer.close()

    @staticmethod
    def _release_readers(writer: FillWriter) -> None:
        """Readers may hand out the last byte: the image is on disk and listed.

        Read-your-writes: a client holding the whole image finds it in
        ``GET /v2/cache`` and can delete it.  Should the mark fail, readers
        finish when the writer lets go of its lock a moment later.
        """
        try:
            writer.mark_verified()
        except OSError:
            LOG.warning("could not mark image %s published; its readers finish at the writer's close",
                        writer.image_id)

    # -- size limits -----------------------------------------------------------
    def _make_room(self, incoming: int, *, protect: str | None = None, already_on_disk: bool = False) -> bool:
        """Evict LRU images so ``incoming`` bytes fit; False (evicting nothing) if they cannot."""
        if not self._fits(incoming):
            return False
        usage = self.layout.disk_usage()
        needed = bytes_to_free(
            cache_size=self.driver.total_size(),
            incoming=incoming,
            max_size=self.settings.image_cache_max_size,
            # Bytes already written to incomplete/ are already gone from the free space.
            disk_free=usage.free + (incoming if already_on_disk else 0),
            min_free=effective_min_free(self.settings, usage.total),
        )
        protected = frozenset({protect}) if protect else frozenset()
        victims = select_victims(((r.image_id, r.size) for r in self.driver.lru()), needed, protected)
        if victims is None:
            return False
        for image_id in victims:
            self.delete_cached_image(image_id)
            LOG.info("evicted image %s to make room", image_id)
        return True

    def prune(self) -> tuple[int, int]:
        """Evict least recently used images until within the size limit: (files, bytes)."""
        with self.layout.publish_lock():
            total = self.driver.total_size()
            excess = total - self.settings.image_cache_max_size
            if excess <= 0:
                return 0, 0
            sizes: dict[str, int] = {}

            def lru_order() -> Iterator[tuple[str, int]]:
                # Read only as far as the eviction goes, remembering what was read.
                for record in self.driver.lru():
                    sizes[record.image_id] = record.size
                    yield record.image_id, record.size

            victims = select_victims(lru_order(), excess)
            if victims is None:  # everything was read and still not enough: evict it all
                victims = list(sizes)
            pruned = bytes_pruned = 0
            for image_id in victims:
                if self.delete_cached_image(image_id):
                    pruned += 1
                    bytes_pruned += sizes[image_id]
            LOG.info("pruned %d images, %d bytes", pruned, bytes_pruned)
            return pruned, bytes_pruned

    # -- housekeeping ----------------------------------------------------------
    def clean(self, stall_time: float | None = None) -> CleanResult:
        """Remove every invalid file, and incomplete files untouched for ``stall_time`` seconds."""
        if stall_time is None:
            stall_time = self.settings.image_cache_stall_time
        invalid = sum(1 for facts in list(self.layout.invalid()) if self.layout.remove_invalid(facts.image_id))
        # Change marks only matter for as long as an authorization answer is memoised.
        self.layout.forget_changes(self._clock() - CHANGE_MARK_LIFETIME)
        return CleanResult(invalid, self._remove_stalled(stall_time))

    def _remove_stalled(self, stall_time: float) -> int:
        """Remove incomplete files untouched for ``stall_time`` that no live writer holds.

        Age alone is not enough: a slow fill (a pausing upstream) keeps its
        lock, and every client streaming it depends on the file.
        """
        untouched_since = self._clock() - stall_time
        stalled = 0
        for facts in list(self.layout.incomplete()):
            if facts.mtime < untouched_since and remove_if_stalled(
                self.layout.incomplete_path(facts.image_id), untouched_since
            ):
                stalled += 1
                LOG.info("removed stalled incomplete file of image %s", facts.image_id)
        return stalled

    def reconcile(self) -> ReconcileResult:
        """Make the index agree with the files after a crash (run at start-up).

        Rows without files are dropped; verified files without rows are adopted
        with their sizes; a file whose size disagrees with its row is moved to
        ``invalid/``; stalled incomplete files no live writer holds are removed.
        """
        with self.layout.publish_lock():
            files = {facts.image_id: facts for facts in self.layout.published()}
            records = {r.image_id: r for r in self.driver.list()}
            dropped = invalidated = 0
            for image_id, record in records.items():
                facts = files.get(image_id)
                if facts is None:
                    dropped += self.driver.remove(image_id)
                elif facts.size != record.size:
                    LOG.error("cached image %s has %d bytes, index says %d; invalidating", image_id, facts.size, record.size)
                    with contextlib.suppress(FileNotFoundError):
                        os.replace(self.layout.path(image_id), self.layout.invalid_path(image_id))
                    self.driver.remove(image_id)
                    invalidated += 1
            orphans = [
                CachedImage(image_id, facts.size, 0, facts.mtime, facts.mtime)
                for image_id, facts in files.items()
                if image_id not in records
            ]
            adopt_many = getattr(self.driver, "add_many", None)
            if adopt_many is not None:
                adopt_many(orphans)
            else:
                for record in orphans:
                    self.driver.add(record)
        stalled = self._remove_stalled(self.settings.image_cache_stall_time)
        result = ReconcileResult(dropped, len(orphans), invalidated, stalled)
        if any(result):
            LOG.warning("reconciled the cache index with its files: %s", result._asdict())
        return result


def _close(iterable: Iterable[bytes]) -> None:
    close = getattr(iterable, "close", None)
    if close is not None:
        with contextlib.suppress(Exception):
            close()
