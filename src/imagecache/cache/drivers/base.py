"""The contract every index driver keeps.

A driver holds the *facts* about cached images (size, hits, times, checksums)
and the prefetch queue; the bytes are files managed by
:class:`~imagecache.cache.layout.CacheLayout`.  This split, as in diskcache,
keeps the index replaceable: sqlite on one node, extended attributes on the
files themselves, or PostgreSQL shared by many nodes.

Rules every driver follows:

* ``add`` happens after the file is published, ``remove`` after it is
  unlinked, so a crash leaves at worst a file without a row (adopted at
  start) or a row without a file (dropped at start).
* Methods are safe to call from many threads and many processes at once.
* A driver never touches image bytes and never validates ids: callers pass
  canonical ids (see :func:`~imagecache.cache.layout.validate_image_id`).

Optional features are declared here with a default that does the generic
thing (:meth:`Driver.add_many` loops over :meth:`Driver.add`; an index
without nodes answers :meth:`Driver.cached_nodes` with None and needs no
:meth:`Driver.heartbeat`); a driver overrides what it does better.  Callers
never probe a driver for a method.  The peer-fill methods default to a
node alone: no peers, every cluster claim won, fills not recorded.

Pins are not optional: a driver that could not keep them would let the
cache evict what an operator asked it to keep.  A pin is a mark on an image
id, whether or not the image is cached, kept until it is unpinned; it says
who set it (:data:`MANUAL`, an operator; :data:`PREWARM`, the pre-warm
policy, which takes back only its own pins).
"""

from __future__ import annotations

import abc
import builtins
import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imagecache.db.admin import NodeReport

#: Who pinned an image: an operator (through the API), or the pre-warm policy.
#: A manual pin is never turned into a prewarm one.
MANUAL = "manual"
PREWARM = "prewarm"
PIN_SOURCES = (MANUAL, PREWARM)

#: What the cache listing shows of a cached image, in this order: the
#: columns of a :data:`ListingRow` (:meth:`Driver.listing_rows`).
LISTING_COLUMNS = ("image_id", "hits", "last_accessed", "last_modified", "size")
#: ``(image_id, hits, last_accessed, last_modified, size)``: a cached image as the listing shows it.
ListingRow = tuple[str, int, float, float, int]


@dataclass(frozen=True)
class CachedImage:
    """One cached image as the index records it."""

    image_id: str
    size: int
    hits: int = 0
    last_accessed: float = 0.0
    last_modified: float = 0.0
    checksum: str | None = None
    os_hash_algo: str | None = None
    os_hash_value: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def listing_row(self) -> ListingRow:
        return (self.image_id, self.hits, self.last_accessed, self.last_modified, self.size)


@dataclass(frozen=True)
class PeerSource:
    """A live peer node that holds an image, or is filling it (see docs/peer-fill.md)."""

    url: str  # the peer's node_url
    site: str
    filling: bool  # False: it holds the verified file
    size: int | None
    bytes: int  # on its disk now (the size, when it holds the file)


@dataclass(frozen=True)
class FleetEntry:
    """One node's copy of one image, cached or being filled, for the operator's fleet view."""

    image_id: str
    url: str
    site: str
    filling: bool
    size: int | None
    bytes: int
    live: bool  # heard from within node_stale_after


class Driver(abc.ABC):
    """Index of cached images plus the prefetch queue."""

    #: The name operators use in ``image_cache_driver``.
    name: str = ""

    @abc.abstractmethod
    def configure(self) -> None:
        """Prepare storage; raise DriverConfigError if this driver cannot work here."""

    def close(self) -> None:
        """Release connections (the driver may be used again afterwards)."""
        return None

    # -- cached images ------------------------------------------------------
    @abc.abstractmethod
    def add(self, record: CachedImage) -> None:
        """Record a newly published image (replacing any earlier record)."""

    def add_many(self, records: Iterable[CachedImage]) -> None:
        """Record many images the index has no record of (crash recovery adopts files in one go).

        One :meth:`add` each; a driver with transactions adds them in one.
        """
        for record in records:
            self.add(record)

    @abc.abstractmethod
    def get(self, image_id: str) -> CachedImage | None:
        """The record of one image, or None."""

    @abc.abstractmethod
    def list(self) -> builtins.list[CachedImage]:
        """Every record, most recently accessed first."""

    def listing_rows(self) -> Iterator[ListingRow]:
        """Every record as the listing shows it (:data:`LISTING_COLUMNS`), in :meth:`list`'s order.

        The listing of 100,000 entries spent most of its time building
        records only to take them apart again, and its memory holding them:
        a driver with a query selects just these columns, as tuples, and
        yields them as it reads them.  The query runs at the first row; the
        caller reads while it answers and closes the iterator when done
        (or gone), which ends the query.
        """
        yield from (record.listing_row() for record in self.list())

    @abc.abstractmethod
    def remove(self, image_id: str) -> bool:
        """Forget one image; True if there was a record, False if there was none."""

    def record_hit(self, image_id: str, when: float) -> None:
        """Count one completed read and move the image to the LRU's young end (a batch of one)."""
        self.record_hits({image_id: (1, when)})

    @abc.abstractmethod
    def record_hits(self, batch: Mapping[str, tuple[int, float]]) -> None:
        """Add each image's hits and move it to its latest access time, in one transaction.

        ``batch`` maps image id -> (hits, latest access time) (:mod:`~imagecache.cache.hit_batch`).
        A time never moves an image back in the LRU (the later of the two stays), and an image
        without a record (evicted meanwhile) is skipped silently.
        """

    @abc.abstractmethod
    def total_size(self) -> int:
        """Sum of the sizes of all recorded images."""

    def lru(self) -> Iterable[CachedImage]:
        """Records from least to most recently accessed (eviction order)."""
        return sorted(self.list(), key=lambda r: (r.last_accessed, r.last_modified, r.image_id))

    def ids(self) -> set[str]:
        return {r.image_id for r in self.list()}

    # -- the prefetch queue ---------------------------------------------------
    @abc.abstractmethod
    def queue(self, image_id: str) -> bool:
        """Queue an image for prefetching; False if it was queued already."""

    @abc.abstractmethod
    def is_queued(self, image_id: str) -> bool: ...

    @abc.abstractmethod
    def dequeue(self, image_id: str) -> bool:
        """Remove from the queue; True if it was queued."""

    @abc.abstractmethod
    def queued(self) -> builtins.list[str]:
        """Queued ids, oldest first."""

    def clear_queue(self) -> int:
        """Empty the queue; how many entries were removed."""
        return sum(1 for image_id in self.queued() if self.dequeue(image_id))

    # -- pins ---------------------------------------------------------------------
    @abc.abstractmethod
    def pin(self, image_id: str, by: str) -> bool:
        """Pin ``image_id`` (cached or not) on behalf of ``by`` (one of :data:`PIN_SOURCES`).

        True when it was not pinned before.  Pinning again keeps the pin; a
        :data:`MANUAL` pin replaces a :data:`PREWARM` one, never the reverse.
        """

    @abc.abstractmethod
    def unpin(self, image_id: str) -> bool:
        """Remove the pin; True if there was one."""

    @abc.abstractmethod
    def pins(self) -> dict[str, str]:
        """Every pinned id and who pinned it."""

    # -- nodes (an index shared by several nodes) ---------------------------------
    #: Seconds between the :meth:`heartbeat` calls the server must make; None
    #: when the index has no nodes, so nothing needs to beat.
    heartbeat_interval: float | None = None

    def heartbeat(self) -> None:
        """Tell the index this node is alive (nothing to do for an index without nodes)."""
        return None

    def cached_nodes(self, image_id: str) -> builtins.list[str] | None:
        """The live nodes caching ``image_id``, as reference URLs; None when the index has no nodes."""
        return None

    # -- peer fill (an index that knows the other nodes; docs/peer-fill.md) -----------
    def peer_sources(self, image_id: str) -> builtins.list[PeerSource]:
        """Live peers (not this node, not suspect to it) holding or filling ``image_id``, best first:
        same site first, holders before fillers, most bytes first.  None known here."""
        return []

    def claim_cluster_fill(self, image_id: str) -> bool:
        """Become the one node of the cluster that reads ``image_id`` from the origin (True),
        or learn that a live node already is (False).  Alone, a node always is."""
        return True

    def fill_started(self, image_id: str, size: int | None) -> None:
        """A fill of ``image_id`` began on this node (so peers may read it while it runs)."""
        return None

    def fill_progress(self, image_id: str, nbytes: int) -> None:
        """``nbytes`` of the fill are on disk; cheap to call often (it records at most once a second)."""
        return None

    def fill_ended(self, image_id: str) -> None:
        """The fill ended, whatever its result; this node's cluster claim for the image goes too."""
        return None

    def mark_suspect(self, peer_url: str, seconds: float) -> None:
        """Read nothing from ``peer_url`` for ``seconds``: it sent bytes that failed verification."""
        return None

    def fleet(self) -> builtins.list[FleetEntry]:
        """Every node's cached and filling images; empty when the index has no nodes."""
        return []

    def nodes(self) -> builtins.list[NodeReport] | None:
        """Every node of the index with its last heartbeat; None when the index has no nodes."""
        return None
