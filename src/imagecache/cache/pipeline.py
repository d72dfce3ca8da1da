"""The fill pipeline: an image's bytes in, a verified, published file out (or nothing kept).

It sits between the cache's public methods and the parts that do the work
(:mod:`~imagecache.cache.fill` writes and hashes one image,
:mod:`~imagecache.cache.flight` runs a fill in the background for readers
to tail) and decides everything in between: whether an image may be cached
at all, making room for it, stopping a fill that grows too big or meets a
disk error, verifying the result against the image's :class:`Expected`
facts, and publishing it into the files and the index.  Every failure but a
verification mismatch leaves the caller's bytes flowing and nothing kept.

Every fill, whichever way it came in, tells the index it started (with the
expected size), how far it got, and that it ended (:class:`IndexHooks`), so
other nodes can read it while it runs; nothing the index does can fail or
stop a fill.

Pinned images (:mod:`~imagecache.cache.pins`) are never evicted to make
room, and a pinned image is cached even past ``image_cache_max_size`` (never
past ``image_cache_min_free``); pins that cannot be read mean no room is
made, so nothing is cached rather than a pinned image evicted.
"""

from __future__ import annotations

import errno
import functools
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from imagecache.cache.drivers.base import CachedImage, Driver
from imagecache.cache.errors import ImageVerificationError
from imagecache.cache.eviction import room_for, shortfall
from imagecache.cache.fill import FillWriter
from imagecache.cache.flight import FillClaim, FillResult, close_source
from imagecache.cache.hit_flush import HitFlusher
from imagecache.cache.layout import CacheLayout
from imagecache.cache.pins import CachePins
from imagecache.cache.progress import ProgressWatch
from imagecache.cache.verify import Expected
from imagecache.cache.verify_plan import plan_for
from imagecache.config import Settings, effective_min_free

if TYPE_CHECKING:
    from imagecache.metrics import Metrics, PassReason

LOG = logging.getLogger(__name__)


class CacheParts(Protocol):
    """What a fill uses of the cache it fills (:class:`~imagecache.cache.core.ImageCache` has it all).

    Read through the cache at each use, never copied: a cache's driver may be
    replaced after it is built (the xattr fallback, tests).
    """

    @property
    def settings(self) -> Settings: ...

    @property
    def layout(self) -> CacheLayout: ...

    @property
    def driver(self) -> Driver: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def progress(self) -> ProgressWatch: ...

    @property
    def pins(self) -> CachePins: ...

    @property
    def hits(self) -> HitFlusher: ...

    def delete_cached_image(self, image_id: str) -> bool: ...


@dataclass
class _FillOutcome:
    published: bool = False


@dataclass(frozen=True)
class Declined:
    """No fill was claimed: ``reason`` is why the image will not be stored (counted in
    ``imagecache_not_stored_total``), or None when it is cached or someone else is filling it."""

    reason: PassReason | None = None


def reason_of(exc: BaseException) -> PassReason:
    """What a failure to write the cache means for an operator: the disk is full, or the cache is broken."""
    return "disk-full" if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT) else "cache-error"


class IndexHooks:
    """The driver's fill hooks, guarded: a failure is logged (a progress failure once per fill), never raised.

    ``ended`` is called once the writer has let go of its lock, so a slow
    index never keeps readers of a failed fill waiting to learn it failed.
    """

    def __init__(self, cache: CacheParts) -> None:
        self._cache = cache
        self._quiet: set[str] = set()  # fills whose progress failed and was logged

    def started(self, image_id: str, size: int | None) -> None:
        self._quiet.discard(image_id)
        try:
            self._cache.driver.fill_started(image_id, size)
        except Exception as exc:  # noqa: BLE001 - the index must not fail a fill
            LOG.warning("could not record the start of the fill of image %s: %s", image_id, exc)

    def progress(self, image_id: str, nbytes: int) -> None:
        try:
            self._cache.driver.fill_progress(image_id, nbytes)
        except Exception as exc:  # noqa: BLE001 - the index must not fail a fill
            if image_id not in self._quiet:
                self._quiet.add(image_id)
                LOG.warning("could not record the progress of the fill of image %s: %s", image_id, exc)

    def ended(self, image_id: str) -> None:
        self._quiet.discard(image_id)
        try:
            self._cache.driver.fill_ended(image_id)
        except Exception as exc:  # noqa: BLE001 - the index must not fail a fill
            LOG.warning("could not record the end of the fill of image %s: %s", image_id, exc)


class FillPipeline:
    """Fills of one cache: a tee, a whole copy, or a claim for a background fill."""

    def __init__(self, cache: CacheParts, clock: Callable[[], float]) -> None:
        self._cache = cache
        self._clock = clock
        self.hooks = IndexHooks(cache)

    # -- the three ways in ---------------------------------------------------------
    def tee(self, image_id: str, source: Iterable[bytes], expected: Expected) -> Iterator[bytes]:
        """Yield ``source``'s chunks while caching them; ImageVerificationError after the last on a mismatch.

        The lock is taken when iteration starts, not when the iterator is
        built, so an iterator that is never consumed holds nothing.
        """
        writer = self._start(image_id, expected)
        if isinstance(writer, Declined):
            try:
                yield from source
            finally:
                close_source(source)
            return
        yield from self._fill(writer, source, expected, _FillOutcome())

    def copy(self, image_id: str, source: Iterable[bytes], expected: Expected) -> bool:
        """Cache all of ``source``; True when published, False when not cacheable.

        Raises ImageVerificationError when the bytes do not match.
        """
        writer = self._start(image_id, expected)
        if isinstance(writer, Declined):
            close_source(source)
            return False
        outcome = _FillOutcome()
        for _ in self._fill(writer, source, expected, outcome):
            pass
        return outcome.published

    def claim(self, image_id: str, expected: Expected) -> FillClaim | Declined:
        """The right to fill ``image_id`` in the background, or why not (cached, being filled, not cacheable)."""
        writer = self._start(image_id, expected)
        if isinstance(writer, Declined):
            return writer
        return FillClaim(
            self._cache.layout,
            writer,
            expected,
            write=self._accept_chunk,
            finish=self._finish,
            on_result=lambda result: self.count(result, writer),
            abandon_after=self._cache.settings.fill_abandon_after,
            progress=self._cache.progress,
            ended=functools.partial(self.hooks.ended, image_id),
        )

    def count(self, result: FillResult, writer: FillWriter) -> None:
        """Count a fill's end, and why its image was not stored (a stream that broke, if nothing else said)."""
        metrics = self._cache.metrics
        metrics.fills.labels(result=result.value).inc()
        if result is FillResult.ABANDONED:
            metrics.count_not_stored("abandoned")
        elif result is not FillResult.COMPLETED:
            metrics.count_not_stored(writer.not_stored or "origin-error")

    # -- the steps -----------------------------------------------------------------
    def _start(self, image_id: str, expected: Expected) -> FillWriter | Declined:
        """A writer for the image, or why there is none: it must not (or cannot) be cached, or someone has it."""
        try:
            pinned = image_id in self._cache.pins.ids()
        except Exception as exc:  # noqa: BLE001 - without the pins nothing may be evicted: do not cache
            LOG.warning("cannot cache image %s: the pins cannot be read: %s", image_id, exc)
            return self._decline("cache-error")
        if expected.size is not None and not pinned and not self._fits(expected.size):
            LOG.info("image %s (%d bytes) will not be cached: larger than the cache allows", image_id, expected.size)
            return self._decline("too-large")
        plan = plan_for(expected, self._cache.settings.image_cache_verify)
        try:
            writer = FillWriter.acquire(self._cache.layout, image_id, plan)
        except OSError as exc:
            LOG.warning("cannot cache image %s: %s", image_id, exc)
            return self._decline(reason_of(exc))
        if writer is None:
            return Declined()
        # A pinned image is bounded by its own size only (and by the disk).
        writer.limit = expected.size if pinned else _smaller(expected.size, self._cache.settings.image_cache_max_size)
        self.hooks.started(image_id, expected.size)
        if expected.size is not None:
            try:
                self._make_room(expected.size, image_id)
            except Exception:
                LOG.exception("could not make room for image %s", image_id)
        return writer

    def _decline(self, reason: PassReason) -> Declined:
        self._cache.metrics.count_not_stored(reason)
        return Declined(reason)

    def _fits(self, size: int) -> bool:
        return size <= self._cache.settings.image_cache_max_size

    def _accept_chunk(self, writer: FillWriter, chunk: bytes, expected: Expected) -> bool:
        """Write ``chunk``; False (writing nothing) once the fill cannot go on."""
        if writer.limit is not None and writer.size + len(chunk) > writer.limit:
            LOG.info("image %s grew past %d bytes; not caching it", writer.image_id, writer.limit)
            # Past its own size, the bytes are not the image's: they would fail verification.
            writer.not_stored = "verify-failed" if writer.limit == expected.size else "too-large"
            return False
        try:
            writer.write(chunk)
        except Exception as exc:  # noqa: BLE001 - disk full, EIO, ...: the download goes on
            LOG.warning("stopped caching image %s: %s", writer.image_id, exc)
            writer.not_stored = reason_of(exc)
            return False
        self.hooks.progress(writer.image_id, writer.size)
        return True

    def _fill(
        self, writer: FillWriter, source: Iterable[bytes], expected: Expected, outcome: _FillOutcome
    ) -> Iterator[bytes]:
        """Yield every chunk while the writer keeps it; publish verified bytes at the end.

        The last chunk is held back until the image is published (or has
        failed verification, which raises instead): a consumer that has every
        byte finds the image cached, and never holds a wrong image whole.
        """
        active: FillWriter | None = writer
        held: bytes | None = None
        try:
            try:
                for chunk in source:
                    if active is not None:
                        active = self._write_or_drop(active, chunk, expected)
                    if held is not None:
                        yield held
                    held = chunk
            except BaseException as exc:
                # The source failed or the consumer went away: keep nothing.
                if active is not None:
                    active.discard()
                if isinstance(exc, GeneratorExit) and writer.not_stored is None:
                    writer.not_stored = "abandoned"
                self.count(FillResult.FAILED, writer)
                raise
            finally:
                close_source(source)
            if active is None:
                self.count(FillResult.FAILED, writer)
            else:
                try:
                    outcome.published = self._finish(active, expected)
                finally:
                    self.count(FillResult.COMPLETED if outcome.published else FillResult.FAILED, writer)
        finally:
            if active is not None:  # a dropped writer's fill was reported ended when it was dropped
                self.hooks.ended(writer.image_id)
        if held is not None:
            yield held

    def _write_or_drop(self, writer: FillWriter, chunk: bytes, expected: Expected) -> FillWriter | None:
        """The writer while it keeps the chunks; None once the fill stopped (the stream goes on without it)."""
        if self._accept_chunk(writer, chunk, expected):
            return writer
        writer.discard()
        self.hooks.ended(writer.image_id)
        return None

    def _finish(self, writer: FillWriter, expected: Expected) -> bool:
        """Verify, make durable, make room, publish and index; ImageVerificationError on a mismatch."""
        digest = writer.digest()
        problem = writer.plan.mismatch(digest.size, digest.hexdigests)
        if problem is not None:
            LOG.error("image %s failed verification (%s); moved to invalid/", writer.image_id, problem)
            writer.not_stored = "verify-failed"
            try:
                writer.invalidate()
            except OSError:
                LOG.exception("could not move image %s to invalid/", writer.image_id)
                writer.discard()
            raise ImageVerificationError(f"image {writer.image_id}: {problem}")
        layout = self._cache.layout
        try:
            writer.sync()  # outside the publish lock: other fills publish meanwhile
            with layout.publish_lock():
                if not self._make_room(digest.size, writer.image_id, already_on_disk=True):
                    LOG.info("no room for image %s (%d bytes); not caching it", writer.image_id, digest.size)
                    writer.not_stored = "no-room"
                    writer.discard()
                    return False
                writer.publish()
                now = self._clock()
                recorded = writer.plan.recorded(digest.hexdigests)
                self._cache.driver.add(
                    CachedImage(
                        image_id=writer.image_id,
                        size=digest.size,
                        hits=0,
                        last_accessed=now,
                        last_modified=now,
                        checksum=recorded.checksum,
                        os_hash_algo=recorded.os_hash_algo,
                        os_hash_value=recorded.os_hash_value,
                    )
                )
            _release_readers(writer)
        except Exception as exc:
            LOG.exception("could not publish image %s", writer.image_id)
            writer.not_stored = reason_of(exc)
            writer.discard()
            return layout.exists(writer.image_id)
        finally:
            writer.close()
        self._pinned_published(writer.image_id)
        return True

    def _pinned_published(self, image_id: str) -> None:
        """A pinned image's bytes count against the limit now: say so if pins alone exceed it."""
        try:
            if image_id in self._cache.pins.ids():
                self._cache.pins.check()
        except Exception as exc:  # noqa: BLE001 - the image is cached; the word on the pins can wait
            LOG.warning("could not check the pins after publishing image %s: %s", image_id, exc)

    def _make_room(self, incoming: int, image_id: str, *, already_on_disk: bool = False) -> bool:
        """Evict unpinned LRU images so ``incoming`` bytes of ``image_id`` fit; False (evicting nothing) if not."""
        cache = self._cache
        pinned = cache.pins.ids()
        keep = image_id in pinned
        if not keep and not self._fits(incoming):
            return False
        usage = cache.layout.disk_usage()
        short = shortfall(
            cache_size=cache.driver.total_size(),
            incoming=incoming,
            max_size=cache.settings.image_cache_max_size,
            # Bytes already written to incomplete/ are already gone from the free space.
            disk_free=usage.free + (incoming if already_on_disk else 0),
            min_free=effective_min_free(cache.settings, usage.total),
        )
        cache.hits.flush()  # evict by the LRU order with this process's latest hits in it
        victims = room_for(((r.image_id, r.size) for r in cache.driver.lru()), short, pinned | {image_id}, pinned=keep)
        if victims is None:
            return False
        for victim in victims:
            cache.delete_cached_image(victim)
            LOG.info("evicted image %s to make room", victim)
        return True


def _smaller(size: int | None, limit: int) -> int:
    return limit if size is None else min(size, limit)


def _release_readers(writer: FillWriter) -> None:
    """Readers may hand out the last byte: the image is on disk and listed.

    Read-your-writes: a client holding the whole image finds it in
    ``GET /v2/cache`` and can delete it.  Should the mark fail, readers
    finish when the writer lets go of its lock a moment later.
    """
    try:
        writer.mark_verified()
    except OSError:
        LOG.warning("could not mark image %s published; its readers finish at the writer's close", writer.image_id)
