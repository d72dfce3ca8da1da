"""The central index: every node's records in one PostgreSQL, each row tagged with its node.

Each node still keeps its image files on its own disk; what moves to the
database is the index (the facts of :class:`CachedImage`) and the prefetch
queue, both per node.  Every method of the driver contract acts on this
node's rows only, so a node's LRU, size, queue and pins are its own; the one
question across nodes is :meth:`CentralDriver.cached_nodes`, which answers
``GET /v2/cache/nodes/{image_id}``.

Decisions:

* **The schema is never changed here.**  :meth:`configure` refuses (a
  DriverConfigError naming ``imagecache db upgrade``) unless the database is
  at this code's head revision, as Glance requires ``glance-manage db sync``.
  Many nodes start at once against one database, possibly with different
  versions during a rolling upgrade, and with a database user that should
  not need DDL rights: a node upgrading on its own would race the others and
  change the schema under nodes still running the old code.
* **Counts are never read-modified-written.**  A batch of hits is one
  transaction of ``UPDATE ... SET hits = hits + n`` (one per image, in id
  order): PostgreSQL serialises updates of a row on its row lock, so
  concurrent batches from any number of workers and nodes are all counted,
  and batches that lock rows in the same order cannot deadlock.
  ``last_accessed`` takes the greater of the two times, so a late hit
  never moves an image back in the LRU.
* **Liveness uses the database's clock.**  A heartbeat sets ``last_seen =
  now()``, and a node is stale when that is more than ``node_stale_after``
  seconds old by the same clock: nodes' clocks are never compared.  Stale
  nodes are left out of :meth:`cached_nodes` (they cannot serve what they
  hold); their rows stay, for the node fixes them when it comes back.
* **Peer fill** (docs/peer-fill.md) is :class:`~imagecache.cache.drivers.central_peers.PeerIndex`'s:
  this node's fills in progress, the cluster's one claim per image on the
  origin, suspect peers.  Its failures are logged and answered as a node
  alone would (no peers, claim won): the index never fails a download.
* **One engine per process.**  gunicorn forks after the master used the
  driver for crash recovery, and a pooled connection must never be shared by
  two processes: a driver used in a new process opens a new engine.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import os
import socket
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from sqlalchemy import Connection, Engine, Row, bindparam, delete, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError

from imagecache.cache.drivers.base import (
    LISTING_COLUMNS,
    MANUAL,
    CachedImage,
    Driver,
    FleetEntry,
    ListingRow,
    PeerSource,
)
from imagecache.cache.drivers.central_peers import PeerIndex, fresh_since
from imagecache.cache.errors import CacheError, DriverConfigError
from imagecache.cache.layout import CacheLayout
from imagecache.config import Settings
from imagecache.db.admin import NodeReport, list_nodes
from imagecache.db.engine import DatabaseURLError, database_url, make_engine, reason, shown
from imagecache.db.migrate import schema_state
from imagecache.db.schema import cached_images, nodes, pinned_images, queued_images

LOG = logging.getLogger(__name__)

#: Heartbeats per ``node_stale_after``: a node goes stale only after missing several.
HEARTBEATS_PER_STALE_PERIOD = 3
#: Rows a listing reads from its server-side cursor at a time.
_LISTING_BATCH = 1024
#: Wildcard bind addresses: they name no node, so the host name stands in.
_WILDCARDS = frozenset({"", "0.0.0.0", "::", "[::]"})

_FACTS = (
    cached_images.c.image_id,
    cached_images.c.size,
    cached_images.c.hits,
    cached_images.c.last_accessed,
    cached_images.c.last_modified,
    cached_images.c.checksum,
    cached_images.c.os_hash_algo,
    cached_images.c.os_hash_value,
)


class CentralIndexError(CacheError):
    """The central index failed an operation (database unreachable, a query refused)."""


def node_reference(settings: Settings) -> str:
    """This node's URL in the index: ``node_url``, or ``http://<host>:<port>``.

    A wildcard bind address (``0.0.0.0``, ``::``) is replaced by the host's
    fully qualified name, since other machines cannot reach a wildcard.
    """
    if settings.node_url:
        return settings.node_url.rstrip("/")
    host = settings.bind_host.strip()
    if host in _WILDCARDS:
        host = socket.getfqdn()
    elif ":" in host.strip("[]"):
        host = f"[{host.strip('[]')}]"
    return f"http://{host}:{settings.bind_port}"


def heartbeat_interval(stale_after: float) -> float:
    """Seconds between heartbeats, so a live node is never taken for stale."""
    return max(0.5, stale_after / HEARTBEATS_PER_STALE_PERIOD)


def _record(row: Row[*tuple[Any, ...]]) -> CachedImage:
    return CachedImage(
        image_id=row.image_id,
        size=int(row.size),
        hits=int(row.hits),
        last_accessed=float(row.last_accessed),
        last_modified=float(row.last_modified),
        checksum=row.checksum,
        os_hash_algo=row.os_hash_algo,
        os_hash_value=row.os_hash_value,
    )


def _order(*, oldest_first: bool) -> builtins.list[Any]:
    """The LRU order of this node's rows (ids break ties, so every listing is in the same order)."""
    columns = (cached_images.c.last_accessed, cached_images.c.last_modified)
    return [*(c.asc() if oldest_first else c.desc() for c in columns), cached_images.c.image_id]


def _values(record: CachedImage) -> dict[str, Any]:
    return {
        "image_id": record.image_id,
        "size": record.size,
        "hits": record.hits,
        "last_accessed": float(record.last_accessed),
        "last_modified": float(record.last_modified),
        "checksum": record.checksum,
        "os_hash_algo": record.os_hash_algo,
        "os_hash_value": record.os_hash_value,
    }


class CentralDriver(Driver):
    """This node's index and queue in a PostgreSQL shared with other nodes."""

    name = "central"

    def __init__(self, layout: CacheLayout, settings: Settings) -> None:
        if not settings.db_url:
            raise DriverConfigError("the central driver needs db_url (postgresql://...)")
        try:
            self.url = database_url(settings.db_url)
        except DatabaseURLError as exc:
            raise DriverConfigError(str(exc)) from None
        self._layout = layout
        self.node_url = node_reference(settings)
        self.stale_after = settings.node_stale_after
        self.site = settings.node_site
        #: Seconds between :meth:`heartbeat` calls the server should make.
        self.heartbeat_interval = heartbeat_interval(settings.node_stale_after)
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._pid = 0
        self._node_id: int | None = None
        self.peers = PeerIndex(self._begin, self._node, layout, url=self.node_url, site=self.site,
                               stale_after=self.stale_after)

    def __repr__(self) -> str:
        return f"<CentralDriver {self.node_url} at {shown(self.url)}>"

    # -- connections ----------------------------------------------------------------
    def engine(self) -> Engine:
        """This process's engine (a new one after a fork)."""
        with self._lock:
            if self._engine is None or self._pid != os.getpid():
                if self._engine is not None:
                    # The parent's pooled connections belong to the parent: leave them be.
                    self._engine.dispose(close=False)
                self._engine = make_engine(self.url)
                self._pid = os.getpid()
            return self._engine

    @contextlib.contextmanager
    def _failures(self) -> Iterator[None]:
        """Database failures inside become CentralIndexError, naming the index."""
        try:
            yield
        except SQLAlchemyError as exc:
            raise CentralIndexError(f"the central index at {shown(self.url)} failed: {reason(exc)}") from exc

    @contextlib.contextmanager
    def _begin(self) -> Iterator[Connection]:  # one transaction, failures translated
        with self._failures(), self.engine().begin() as connection:
            yield connection

    def configure(self) -> None:
        """Check the database is reachable and at this code's schema, and find this node's row."""
        try:
            with self.engine().connect() as connection:
                problem = schema_state(connection).problem(shown(self.url))
        except SQLAlchemyError as exc:
            raise DriverConfigError(f"cannot use the central index at {shown(self.url)}: {reason(exc)}") from None
        if problem is not None:
            raise DriverConfigError(problem)
        try:
            node_id = self._node()
        except CentralIndexError as exc:
            raise DriverConfigError(str(exc)) from None
        LOG.debug("central index at %s: this node is %s (id %d)", shown(self.url), self.node_url, node_id)

    def close(self) -> None:
        self.peers.close()
        with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose(close=self._pid == os.getpid())

    # -- this node ----------------------------------------------------------------------
    def _node(self) -> int:
        """This node's id, registering the node (never seen yet) if it has no row."""
        if self._node_id is None:
            find = select(nodes.c.id).where(nodes.c.url == self.node_url)
            with self._begin() as connection:
                found = connection.execute(find).scalar_one_or_none()
                self._node_id = int(found) if found is not None else self._register(connection, None)
        return self._node_id

    def _register(self, connection: Connection, last_seen: Any) -> int:
        """Insert this node, or find the row another process inserted meanwhile."""
        statement = (
            insert(nodes)
            .values(url=self.node_url, last_seen=last_seen, site=self.site)
            .on_conflict_do_update(
                index_elements=[nodes.c.url],
                set_={"last_seen": func.coalesce(last_seen, nodes.c.last_seen), "site": self.site},
            )
            .returning(nodes.c.id)
        )
        return int(connection.execute(statement).scalar_one())

    def heartbeat(self) -> None:
        """Mark this node alive now (by the database's clock) in its site; registers it if needed.

        An update first: an upsert would draw a new id from the sequence at
        every beat, of every node.  Then the rows of fills this node no
        longer runs are dropped (:meth:`PeerIndex.tidy`).
        """
        beat = (
            update(nodes).where(nodes.c.url == self.node_url)
            .values(last_seen=func.now(), site=self.site).returning(nodes.c.id)
        )
        with self._begin() as connection:
            found = connection.execute(beat).scalar_one_or_none()
            self._node_id = int(found) if found is not None else self._register(connection, func.now())
        self.peers.tidy()

    def cached_nodes(self, image_id: str) -> list[str]:
        """URLs of the live nodes (heard from within ``node_stale_after``) that cache ``image_id``."""
        statement = (
            select(nodes.c.url)
            .join(cached_images, cached_images.c.node_id == nodes.c.id)
            .where(cached_images.c.image_id == image_id, nodes.c.last_seen >= fresh_since(self.stale_after))
            .order_by(nodes.c.url)
        )
        with self._begin() as connection:
            return list(connection.execute(statement).scalars())

    # -- cached images ------------------------------------------------------------------
    def add(self, record: CachedImage) -> None:
        values = _values(record)
        statement = (
            insert(cached_images)
            .values(node_id=self._node(), **values)
        )
        statement = statement.on_conflict_do_update(
            index_elements=[cached_images.c.node_id, cached_images.c.image_id],
            set_={name: statement.excluded[name] for name in values if name != "image_id"},
        )
        with self._begin() as connection:
            connection.execute(statement)

    def add_many(self, records: Iterable[CachedImage]) -> None:
        """Adopt many records in one transaction, keeping any that exist (crash recovery)."""
        node_id = self._node()
        rows = [{"node_id": node_id, **_values(r)} for r in records]
        if not rows:
            return
        with self._begin() as connection:
            connection.execute(insert(cached_images).on_conflict_do_nothing(), rows)

    def _mine(self) -> Any:
        return cached_images.c.node_id == self._node()

    def get(self, image_id: str) -> CachedImage | None:
        statement = select(*_FACTS).where(self._mine(), cached_images.c.image_id == image_id)
        with self._begin() as connection:
            row = connection.execute(statement).first()
        return _record(row) if row is not None else None

    def _ordered(self, *, oldest_first: bool) -> list[CachedImage]:
        statement = select(*_FACTS).where(self._mine()).order_by(*_order(oldest_first=oldest_first))
        with self._begin() as connection:
            return [_record(row) for row in connection.execute(statement)]

    def list(self) -> list[CachedImage]:
        return self._ordered(oldest_first=False)

    def listing_rows(self) -> Iterator[ListingRow]:
        """The listing's columns only, through a server-side cursor: the listing holds a batch, not every row."""
        columns = [cached_images.c[name] for name in LISTING_COLUMNS]
        statement = select(*columns).where(self._mine()).order_by(*_order(oldest_first=False))
        with self._begin() as connection:
            result = connection.execution_options(stream_results=True, yield_per=_LISTING_BATCH).execute(statement)
            for row in result:
                yield tuple(row)

    def lru(self) -> Iterable[CachedImage]:
        return self._ordered(oldest_first=True)

    def ids(self) -> set[str]:
        statement = select(cached_images.c.image_id).where(self._mine())
        with self._begin() as connection:
            return set(connection.execute(statement).scalars())

    def remove(self, image_id: str) -> bool:
        statement = delete(cached_images).where(self._mine(), cached_images.c.image_id == image_id)
        with self._begin() as connection:
            return connection.execute(statement).rowcount > 0

    def record_hits(self, batch: Mapping[str, tuple[int, float]]) -> None:
        """One transaction, one UPDATE per image sent as one executemany; rows are taken in id order,
        so two processes flushing overlapping batches lock them in the same order and never deadlock."""
        rows = [{"hit_id": i, "hit_count": n, "hit_when": float(t)} for i, (n, t) in sorted(batch.items())]
        if not rows:
            return
        statement = (
            update(cached_images)
            .where(self._mine(), cached_images.c.image_id == bindparam("hit_id"))
            .values(
                hits=cached_images.c.hits + bindparam("hit_count"),
                last_accessed=func.greatest(cached_images.c.last_accessed, bindparam("hit_when")),
            )
        )
        with self._begin() as connection:
            connection.execute(statement, rows)

    def total_size(self) -> int:
        statement = select(func.coalesce(func.sum(cached_images.c.size), 0)).where(self._mine())
        with self._begin() as connection:
            return int(connection.execute(statement).scalar_one())

    # -- the prefetch queue -------------------------------------------------------------
    def _queued_here(self) -> Any:
        return queued_images.c.node_id == self._node()

    def queue(self, image_id: str) -> bool:
        statement = (
            insert(queued_images)
            .values(node_id=self._node(), image_id=image_id)
            .on_conflict_do_nothing()
            .returning(queued_images.c.image_id)
        )
        with self._begin() as connection:
            return connection.execute(statement).first() is not None

    def is_queued(self, image_id: str) -> bool:
        statement = select(exists().where(self._queued_here(), queued_images.c.image_id == image_id))
        with self._begin() as connection:
            return bool(connection.execute(statement).scalar_one())

    def dequeue(self, image_id: str) -> bool:
        statement = delete(queued_images).where(self._queued_here(), queued_images.c.image_id == image_id)
        with self._begin() as connection:
            return connection.execute(statement).rowcount > 0

    def queued(self) -> builtins.list[str]:
        statement = select(queued_images.c.image_id).where(self._queued_here()).order_by(queued_images.c.seq)
        with self._begin() as connection:
            return list(connection.execute(statement).scalars())

    def clear_queue(self) -> int:
        statement = delete(queued_images).where(self._queued_here())
        with self._begin() as connection:
            return connection.execute(statement).rowcount

    # -- pins: this node's, like its queue --------------------------------------------------
    def _pinned_here(self, image_id: str) -> Any:
        return (pinned_images.c.node_id == self._node()) & (pinned_images.c.image_id == image_id)

    def pin(self, image_id: str, by: str) -> bool:
        """Insert the pin; if it was there, an operator's pin replaces the policy's (one transaction)."""
        add = (
            insert(pinned_images)
            .values(node_id=self._node(), image_id=image_id, pinned_by=by)
            .on_conflict_do_nothing()
            .returning(pinned_images.c.image_id)
        )
        with self._begin() as connection:
            if connection.execute(add).first() is not None:
                return True
            if by == MANUAL:
                connection.execute(update(pinned_images).where(self._pinned_here(image_id)).values(pinned_by=MANUAL))
            return False

    def unpin(self, image_id: str) -> bool:
        statement = delete(pinned_images).where(self._pinned_here(image_id))
        with self._begin() as connection:
            return connection.execute(statement).rowcount > 0

    def pins(self) -> dict[str, str]:
        statement = select(pinned_images.c.image_id, pinned_images.c.pinned_by).where(
            pinned_images.c.node_id == self._node())
        with self._begin() as connection:
            return {row.image_id: row.pinned_by for row in connection.execute(statement)}

    # -- peer fill (docs/peer-fill.md): see PeerIndex ---------------------------------------
    def peer_sources(self, image_id: str) -> builtins.list[PeerSource]:
        return self.peers.sources(image_id)

    def claim_cluster_fill(self, image_id: str) -> bool:
        return self.peers.claim(image_id)

    def fill_started(self, image_id: str, size: int | None) -> None:
        self.peers.fill_started(image_id, size)

    def fill_progress(self, image_id: str, nbytes: int) -> None:
        self.peers.fill_progress(image_id, nbytes)

    def fill_ended(self, image_id: str) -> None:
        self.peers.fill_ended(image_id)

    def mark_suspect(self, peer_url: str, seconds: float) -> None:
        self.peers.mark_suspect(peer_url, seconds)

    def fleet(self) -> builtins.list[FleetEntry]:
        """Every node's cached and filling images; CentralIndexError when the index fails."""
        return self.peers.fleet()

    def nodes(self) -> builtins.list[NodeReport]:
        """Every node with its state and last heartbeat (``imagecache db nodes``'s query)."""
        with self._failures():
            return list_nodes(self.engine(), self.stale_after)
