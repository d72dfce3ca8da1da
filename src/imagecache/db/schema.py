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
