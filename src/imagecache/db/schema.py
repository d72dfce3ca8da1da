"""The central index's tables, as the driver queries them (SQLAlchemy Core).

This is the schema at the head revision.  Migrations never import it: each
migration spells out its own DDL, so an old migration keeps meaning what it
meant when it was written.

* ``nodes``: one row per cache node, named by its reference URL (how other
  nodes and clients reach it).  ``last_seen`` is the database's clock at the
  node's last heartbeat (NULL: registered by a tool, never served), so nodes
  never compare their own clocks.
* ``cached_images``: the facts of one image cached on one node; the bytes
  are a file on that node's disk.  Times are epoch seconds as floats, as
  every driver reports them, so a record round-trips exactly.
* ``queued_images``: each node's prefetch queue, oldest first by ``seq``.
* ``fills``: the fills in progress on each node (expected size, bytes on
  disk so far), so other nodes can read an image from a node still filling
  it (docs/peer-fill.md).
* ``cluster_fills``: at most one row per image, the node of the cluster
  that reads it from the origin.
* ``peer_suspects``: a peer whose bytes failed a reporter's verification,
  not read from by that reporter until ``until``.
* ``pinned_images``: each node's pins (never evicted there), cached or not,
  and who set each (``manual`` or ``prewarm``).

Deleting a node deletes its rows (``ON DELETE CASCADE``).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
)

metadata = MetaData()

#: Image ids are canonical UUID strings (the cache validates them first).
IMAGE_ID = String(36)

nodes = Table(
    "nodes",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("url", Text, nullable=False, unique=True),
    Column("registered_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_seen", DateTime(timezone=True), nullable=True),
    Column("site", Text, nullable=False, server_default="default"),
)

cached_images = Table(
    "cached_images",
    metadata,
    Column("node_id", Integer, ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True),
    Column("image_id", IMAGE_ID, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("hits", BigInteger, nullable=False, server_default="0"),
    Column("last_accessed", Double, nullable=False),
    Column("last_modified", Double, nullable=False),
    Column("checksum", Text),
    Column("os_hash_algo", Text),
    Column("os_hash_value", Text),
    Index("cached_images_image_id", "image_id"),
    Index("cached_images_lru", "node_id", "last_accessed", "last_modified"),
)

queued_images = Table(
    "queued_images",
    metadata,
    Column("node_id", Integer, ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True),
    Column("image_id", IMAGE_ID, primary_key=True),
    Column("seq", BigInteger, Identity(), nullable=False),
    Column("queued_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("queued_images_order", "node_id", "seq"),
)


def _node(name: str) -> Column[int]:
    return Column(name, Integer, ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True)


fills = Table(
    "fills",
    metadata,
    _node("node_id"),
    Column("image_id", IMAGE_ID, primary_key=True),
    Column("size", BigInteger, nullable=True),
    Column("bytes", BigInteger, nullable=False, server_default="0"),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("fills_image_id", "image_id"),
)

cluster_fills = Table(
    "cluster_fills",
    metadata,
    Column("image_id", IMAGE_ID, primary_key=True),
    Column("node_id", Integer, ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
    Column("claimed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("cluster_fills_node_id", "node_id"),
)

peer_suspects = Table(
    "peer_suspects",
    metadata,
    _node("reporter_id"),
    _node("suspect_id"),
    Column("until", DateTime(timezone=True), nullable=False),
    Index("peer_suspects_suspect_id", "suspect_id"),
)

pinned_images = Table(
    "pinned_images",
    metadata,
    _node("node_id"),
    Column("image_id", IMAGE_ID, primary_key=True),
    Column("pinned_by", Text, nullable=False, server_default="manual"),
    Column("pinned_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
