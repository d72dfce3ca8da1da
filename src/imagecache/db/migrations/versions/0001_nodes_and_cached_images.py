"""Nodes, the images each node caches, and each node's prefetch queue.

Revision ID: 0001
Revises:
Create Date: 2025-03-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("url", name="nodes_url_key"),
    )
    op.create_table(
        "cached_images",
        sa.Column("node_id", sa.Integer, sa.ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
        sa.Column("image_id", sa.String(36), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("hits", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_accessed", sa.Double, nullable=False),
        sa.Column("last_modified", sa.Double, nullable=False),
        sa.Column("checksum", sa.Text),
        sa.Column("os_hash_algo", sa.Text),
        sa.Column("os_hash_value", sa.Text),
        sa.PrimaryKeyConstraint("node_id", "image_id", name="cached_images_pkey"),
    )
    op.create_index("cached_images_image_id", "cached_images", ["image_id"])
    op.create_index("cached_images_lru", "cached_images", ["node_id", "last_accessed", "last_modified"])
    op.create_table(
        "queued_images",
        sa.Column("node_id", sa.Integer, sa.ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
        sa.Column("image_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("node_id", "image_id", name="queued_images_pkey"),
    )
    op.create_index("queued_images_order", "queued_images", ["node_id", "seq"])


def downgrade() -> None:
    op.drop_table("queued_images")
    op.drop_table("cached_images")
    op.drop_table("nodes")
