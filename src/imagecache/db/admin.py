"""What an operator asks of the central index as a whole: its nodes, and forgetting one.

The driver answers for one node; these answer across nodes, for
``imagecache db nodes`` and ``imagecache db forget-node``.
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass

from sqlalchemy import Engine, case, delete, func, literal, select

from imagecache.db.schema import cached_images, nodes


class NodeState(enum.Enum):
    LIVE = "live"  # heard from within node_stale_after
    STALE = "stale"  # silent longer: left out of GET /v2/cache/nodes/{id}
    NEVER = "never"  # registered by a tool, never served


@dataclass(frozen=True)
class NodeReport:
    url: str
    site: str
    state: NodeState
    last_seen: datetime.datetime | None
    images: int
    size: int


def list_nodes(engine: Engine, stale_after: float) -> list[NodeReport]:
    """Every node, with its state by the database's clock and what it caches."""
    fresh_since = func.now() - literal(datetime.timedelta(seconds=stale_after))
    state = case(
        (nodes.c.last_seen.is_(None), NodeState.NEVER.value),
        (nodes.c.last_seen >= fresh_since, NodeState.LIVE.value),
        else_=NodeState.STALE.value,
    )
    statement = (
        select(
            nodes.c.url,
            nodes.c.site,
            state.label("state"),
            nodes.c.last_seen,
            func.count(cached_images.c.image_id).label("images"),
            func.coalesce(func.sum(cached_images.c.size), 0).label("size"),
        )
        .outerjoin(cached_images, cached_images.c.node_id == nodes.c.id)
        .group_by(nodes.c.id)
        .order_by(nodes.c.url)
    )
    with engine.connect() as connection:
        return [
            NodeReport(row.url, row.site, NodeState(row.state), row.last_seen, int(row.images), int(row.size))
            for row in connection.execute(statement)
        ]


def forget_node(engine: Engine, url: str) -> int | None:
    """Delete a node and (by cascade) its records and queue; how many records it had, None if unknown."""
    with engine.begin() as connection:
        node_id = connection.execute(select(nodes.c.id).where(nodes.c.url == url)).scalar_one_or_none()
        if node_id is None:
            return None
        count = connection.execute(
            select(func.count()).select_from(cached_images).where(cached_images.c.node_id == node_id)
        ).scalar_one()
        connection.execute(delete(nodes).where(nodes.c.id == node_id))
    return int(count)
