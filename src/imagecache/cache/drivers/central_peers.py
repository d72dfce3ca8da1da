"""Peer fill on the central index: who holds or fills an image, the cluster's one origin reader, suspects.

:class:`PeerIndex` is the :class:`~imagecache.cache.drivers.central.CentralDriver`'s
part in peer fill (docs/peer-fill.md), for one node.  Decisions:

* **A database failure never fails a download.**  Every call here logs the
  failure in one line and answers as a node alone would: no peers, the
  claim won, nothing recorded.  Winning a claim wrongly costs at worst a
  second read of the image from the origin; losing it wrongly would send
  the node to peers that may not exist, so a failure always wins.
* **PostgreSQL picks the one claimant.**  ``INSERT ... ON CONFLICT
  (image_id) DO UPDATE ... WHERE`` the holder is not live or is this node,
  ``RETURNING``: a row back means this node won.  A stale holder (silent
  for ``node_stale_after`` by the database's clock, or never heard from)
  blocks nobody.
* **Rows follow the files.**  ``fills`` and ``cluster_fills`` rows are
  written when a fill starts and deleted when it ends; the heartbeat
  (:meth:`PeerIndex.tidy`) also deletes the rows of fills no writer on this
  node holds any more (the writer's flock on ``incomplete/<id>``), so a
  crashed worker's rows do not outlive it.  A delete names the row it saw
  (its ``started_at`` or ``claimed_at``), so it never takes the row of a
  fill that started since.
* **Progress is a figure, written in the background**
  (:mod:`~imagecache.cache.drivers.central_progress`), as an upsert: a row
  lost to a race comes back with the next figure.
"""

from __future__ import annotations

import builtins
import datetime
import hashlib
import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection, and_, delete, exists, false, func, literal, select, true, union_all
from sqlalchemy.dialects.postgresql import insert

from imagecache.cache.drivers.base import FleetEntry, PeerSource
from imagecache.cache.drivers.central_progress import PROGRESS_INTERVAL, ProgressWriter
from imagecache.cache.errors import CacheError
from imagecache.cache.fill import is_locked
from imagecache.cache.layout import CacheLayout
from imagecache.db.schema import cached_images, cluster_fills, fills, nodes, peer_suspects

LOG = logging.getLogger(__name__)

#: A transaction on the central index; database failures raise a CacheError.
Begin = Callable[[], AbstractContextManager[Connection]]


def fresh_since(stale_after: float) -> Any:
    """The database's time before which a node's last heartbeat makes it stale."""
    return func.now() - literal(datetime.timedelta(seconds=stale_after))


def _spread(reader: str, url: str) -> bytes:
    """A tie-break of its own for each reading node, so equal peers share a herd between them."""
    return hashlib.blake2b(f"{reader}\n{url}".encode(), digest_size=8).digest()


def order_sources(found: Iterable[PeerSource], site: str, reader: str = "") -> list[PeerSource]:
    """Best first, one entry per peer (its best): same ``site`` first, holders before fillers, most bytes first.

    Peers equal on all three are ordered by a hash of (``reader``, peer URL):
    every reader sees a fixed order, but different readers start at
    different holders instead of all reading from the same one.
    """

    def rank(source: PeerSource) -> tuple[bool, bool, int, bytes, str, bool, int, str]:
        known = source.size is not None
        # Every field takes part, the site last, so entries equal on the rest still have one order
        # whatever order the index answered in.
        return (source.site != site, source.filling, -source.bytes, _spread(reader, source.url), source.url,
                not known, -(source.size or 0), source.site)

    best: dict[str, PeerSource] = {}
    for source in sorted(found, key=rank):
        best.setdefault(source.url, source)
    return list(best.values())


class PeerIndex:
    """One node's part in peer fill: its fills, its claims, its suspects, and what the others have."""

    def __init__(
        self,
        begin: Begin,
        node: Callable[[], int],
        layout: CacheLayout,
        *,
        url: str,
        site: str,
        stale_after: float,
        progress_interval: float = PROGRESS_INTERVAL,
    ) -> None:
        self._begin = begin
        self._node = node
        self.layout = layout
        self.url = url
        self.site = site
        self.stale_after = stale_after
        #: The fills' progress, written in the background.
        self.progress = ProgressWriter(self._write_progress, interval=progress_interval)

    def close(self) -> None:
        self.progress.close()

    def _peer(self, me: int) -> Any:
        """The nodes a fill may read from: live, not this node, not suspect to it."""
        suspect = exists().where(
            peer_suspects.c.reporter_id == me,
            peer_suspects.c.suspect_id == nodes.c.id,
            peer_suspects.c.until > func.now(),
        )
        return and_(nodes.c.id != me, nodes.c.last_seen >= fresh_since(self.stale_after), ~suspect)

    # -- reading from peers ---------------------------------------------------------------
    def sources(self, image_id: str) -> builtins.list[PeerSource]:
        """Live peers holding ``image_id``, or filling it from the origin, best first; [] when the index fails."""
        try:
            me = self._node()
            with self._begin() as connection:
                holders = (
                    select(nodes.c.url, nodes.c.site, false().label("filling"), cached_images.c.size,
                           cached_images.c.size.label("bytes"))
                    .join(cached_images, cached_images.c.node_id == nodes.c.id)
                    .where(cached_images.c.image_id == image_id, self._peer(me))
                )
                # Only the cluster's origin reader is offered while it fills: two nodes that
                # missed at once would otherwise each read the other's empty file until
                # peer_timeout; a node filling from a peer may itself be waiting on one.
                fillers = (
                    select(nodes.c.url, nodes.c.site, true().label("filling"), fills.c.size, fills.c.bytes)
                    .join(fills, fills.c.node_id == nodes.c.id)
                    .join(cluster_fills, (cluster_fills.c.node_id == nodes.c.id)
                          & (cluster_fills.c.image_id == fills.c.image_id))
                    .where(fills.c.image_id == image_id, self._peer(me))
                )
                rows = connection.execute(union_all(holders, fillers)).all()
        except CacheError as exc:
            LOG.warning("no peers for image %s: %s", image_id, exc)
            return []
        found = (
            PeerSource(row.url, row.site, bool(row.filling), None if row.size is None else int(row.size),
                       int(row.bytes))
            for row in rows
        )
        return order_sources(found, self.site, self.url)

    def claim(self, image_id: str) -> bool:
        """Become the cluster's one reader of ``image_id`` from the origin (True), or learn a live node is."""
        try:
            me = self._node()
            with self._begin() as connection:
                live = select(nodes.c.id).where(nodes.c.last_seen >= fresh_since(self.stale_after))
                claiming = insert(cluster_fills).values(image_id=image_id, node_id=me, claimed_at=func.now())
                statement = claiming.on_conflict_do_update(
                    index_elements=[cluster_fills.c.image_id],
                    set_={"node_id": claiming.excluded.node_id, "claimed_at": func.now()},
                    # The one winner: no row yet, or a holder that is this node or not live.
                    where=(cluster_fills.c.node_id == claiming.excluded.node_id)
                    | cluster_fills.c.node_id.not_in(live),
                ).returning(cluster_fills.c.node_id)
                return connection.execute(statement).first() is not None
        except CacheError as exc:
            LOG.warning("claiming the cluster's fill of image %s failed, so this node reads the origin: %s",
                        image_id, exc)
            return True

    def mark_suspect(self, peer_url: str, seconds: float) -> None:
        """Read nothing from ``peer_url`` for ``seconds`` (by the database's clock)."""
        url = peer_url.rstrip("/")
        try:
            me = self._node()
            with self._begin() as connection:
                until = func.now() + literal(datetime.timedelta(seconds=seconds))
                rows = select(literal(me), nodes.c.id, until).where(nodes.c.url == url)
                statement = insert(peer_suspects).from_select(["reporter_id", "suspect_id", "until"], rows)
                statement = statement.on_conflict_do_update(
                    index_elements=[peer_suspects.c.reporter_id, peer_suspects.c.suspect_id],
                    set_={"until": func.greatest(peer_suspects.c.until, statement.excluded.until)},
                )
                marked = connection.execute(statement).rowcount > 0
        except CacheError as exc:
            LOG.warning("could not mark peer %s suspect: %s", url, exc)
            return
        if not marked:
            LOG.warning("could not mark peer %s suspect: the central index does not know it", url)

    # -- this node's fills -------------------------------------------------------------------
    def fill_started(self, image_id: str, size: int | None) -> None:
        try:
            me = self._node()
            with self._begin() as connection:
                statement = insert(fills).values(node_id=me, image_id=image_id, size=size, bytes=0,
                                                 started_at=func.now(), updated_at=func.now())
                connection.execute(statement.on_conflict_do_update(
                    index_elements=[fills.c.node_id, fills.c.image_id],
                    set_={"size": size, "bytes": 0, "started_at": func.now(), "updated_at": func.now()},
                ))
        except CacheError as exc:
            LOG.warning("could not record the fill of image %s (peers will not read it): %s", image_id, exc)
        self.progress.started(image_id, size)

    def fill_progress(self, image_id: str, nbytes: int) -> None:
        self.progress.note(image_id, nbytes)

    def _write_progress(self, image_id: str, size: int | None, nbytes: int) -> None:
        me = self._node()
        with self._begin() as connection:
            statement = insert(fills).values(node_id=me, image_id=image_id, size=size, bytes=nbytes,
                                             updated_at=func.now())
            connection.execute(statement.on_conflict_do_update(
                index_elements=[fills.c.node_id, fills.c.image_id],
                set_={"bytes": nbytes, "updated_at": func.now()},
            ))

    def fill_ended(self, image_id: str) -> None:
        """Delete this node's fill of ``image_id`` and its cluster claim for it."""
        self.progress.forget(image_id)
        try:
            me = self._node()
            with self._begin() as connection:
                connection.execute(delete(fills).where(fills.c.node_id == me, fills.c.image_id == image_id))
                connection.execute(
                    delete(cluster_fills).where(cluster_fills.c.node_id == me, cluster_fills.c.image_id == image_id)
                )
        except CacheError as exc:
            LOG.warning("could not record the end of the fill of image %s (the heartbeat will): %s", image_id, exc)

    def tidy(self) -> None:
        """Delete this node's fills and claims that no writer here holds any more, and its expired suspects.

        The rows are read before the locks are looked at, and deleted only if
        unchanged: a fill takes its lock before it writes its row, so a row
        that names a fill whose lock is free belongs to a fill that is over.
        """
        try:
            me = self._node()
            with self._begin() as connection:
                running = connection.execute(select(fills.c.image_id, fills.c.started_at)
                                             .where(fills.c.node_id == me)).all()
                claimed = connection.execute(select(cluster_fills.c.image_id, cluster_fills.c.claimed_at)
                                             .where(cluster_fills.c.node_id == me)).all()
            over = [(row.image_id, row.started_at) for row in running if not self._writing(row.image_id)]
            unheld = [(row.image_id, row.claimed_at) for row in claimed if not self._writing(row.image_id)]
            with self._begin() as connection:
                for image_id, started_at in over:
                    connection.execute(delete(fills).where(
                        fills.c.node_id == me, fills.c.image_id == image_id, fills.c.started_at == started_at))
                for image_id, claimed_at in unheld:
                    connection.execute(delete(cluster_fills).where(
                        cluster_fills.c.node_id == me, cluster_fills.c.image_id == image_id,
                        cluster_fills.c.claimed_at == claimed_at))
                connection.execute(delete(peer_suspects).where(
                    peer_suspects.c.reporter_id == me, peer_suspects.c.until <= func.now()))
        except CacheError as exc:
            LOG.warning("could not tidy this node's fills in the central index: %s", exc)

    def _writing(self, image_id: str) -> bool:
        try:
            return is_locked(self.layout.incomplete_path(image_id))
        except (OSError, ValueError):
            return False  # no such file, or an id no fill of ours can have

    # -- the operator's view ------------------------------------------------------------------
    def fleet(self) -> builtins.list[FleetEntry]:
        """Every node's cached and filling images; CacheError when the index fails (an operator asked)."""
        live = func.coalesce(nodes.c.last_seen >= fresh_since(self.stale_after), False).label("live")
        cached = select(cached_images.c.image_id, nodes.c.url, nodes.c.site, false().label("filling"),
                        cached_images.c.size, cached_images.c.size.label("bytes"), live
                        ).join(cached_images, cached_images.c.node_id == nodes.c.id)
        filling = select(fills.c.image_id, nodes.c.url, nodes.c.site, true().label("filling"), fills.c.size,
                         fills.c.bytes, live).join(fills, fills.c.node_id == nodes.c.id)
        everything = union_all(cached, filling).subquery()
        statement = select(everything).order_by(everything.c.image_id, everything.c.url, everything.c.filling)
        with self._begin() as connection:
            return [
                FleetEntry(row.image_id, row.url, row.site, bool(row.filling),
                           None if row.size is None else int(row.size), int(row.bytes), bool(row.live))
                for row in connection.execute(statement)
            ]
