"""Pinned images: each node's pins, cached or not, and who set them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-16

A new table only: nodes still running 0002's code never read it, so the
schema can be upgraded under them (they refuse to start on it until they
are upgraded too, as on every revision).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pinned_images",
        sa.Column("node_id", sa.Integer, sa.ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
        sa.Column("image_id", sa.String(36), nullable=False),
        sa.Column("pinned_by", sa.Text, nullable=False, server_default="manual"),
        sa.Column("pinned_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("node_id", "image_id", name="pinned_images_pkey"),
    )


def downgrade() -> None:
    op.drop_table("pinned_images")
