"""Peer fill: each node's site, the fills in progress, the cluster's one origin reader, suspect peers.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _node(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer, sa.ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False)


def upgrade() -> None:
    # Existing nodes are in the default site until their next heartbeat says otherwise.
    op.add_column("nodes", sa.Column("site", sa.Text, nullable=False, server_default="default"))
    op.create_table(
        "fills",
        _node("node_id"),
        sa.Column("image_id", sa.String(36), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=True),
        sa.Column("bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("node_id", "image_id", name="fills_pkey"),
    )
    # peer_sources asks by image, across nodes.
    op.create_index("fills_image_id", "fills", ["image_id"])
    op.create_table(
        "cluster_fills",
        sa.Column("image_id", sa.String(36), nullable=False),
        _node("node_id"),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("image_id", name="cluster_fills_pkey"),
    )
    # A node's own claims (the heartbeat's tidying) and the cascade when a node is forgotten.
    op.create_index("cluster_fills_node_id", "cluster_fills", ["node_id"])
    op.create_table(
        "peer_suspects",
        _node("reporter_id"),
        _node("suspect_id"),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("reporter_id", "suspect_id", name="peer_suspects_pkey"),
    )
    # The cascade when a suspect node is forgotten.
    op.create_index("peer_suspects_suspect_id", "peer_suspects", ["suspect_id"])


def downgrade() -> None:
    op.drop_table("peer_suspects")
    op.drop_table("cluster_fills")
    op.drop_table("fills")
    op.drop_column("nodes", "site")
