"""A node's ``GET /v2/cache/activity`` answer as typed values (pure: no I/O).

:func:`parse_activity` is lenient where a newer node may say more (unknown
keys are ignored) and strict where a wrong type would mislead an operator:
an answer that is not the activity document at all is None, and the caller
reports it as an invalid response.  Missing or ill-typed numbers in an
otherwise good answer become None or 0, so a view can still be drawn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Activity", "Counters", "FillView", "NodeView", "parse_activity"]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _split(value: Any) -> dict[str, int]:
    if not isinstance(value, Mapping):
        return {}
    return {str(key): number for key, raw in value.items() if (number := _int(raw)) is not None}


def _ids(value: Any) -> tuple[str, ...]:
    return tuple(item for item in value if isinstance(item, str)) if isinstance(value, list) else ()


@dataclass(frozen=True)
class FillView:
    """One fill in progress on the node."""

    image_id: str
    name: str | None = None
    bytes: int = 0
    expected_size: int | None = None
    readers: int | None = None
    source: str = "origin"  # where the fill started reading: origin or peer


@dataclass(frozen=True)
class Counters:
    """The node's cumulative counters (those of ``/metrics``); rates come from two of them."""

    hits: int = 0
    misses: int = 0
    fill_followers: int = 0
    upstream_bytes: int = 0
    peer_bytes: int = 0
    peer_served_bytes: int = 0
    served_bytes: Mapping[str, int] = field(default_factory=dict)
    not_stored: Mapping[str, int] = field(default_factory=dict)
    fills: Mapping[str, int] = field(default_factory=dict)
    evictions: int = 0
    origin_requests: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class NodeView:
    """One node of the central index."""

    url: str
    site: str = ""
    state: str = "?"  # live, stale or never
    last_seen: float | None = None  # the node's last heartbeat (epoch seconds)


@dataclass(frozen=True)
class Activity:
    """What a node is doing, at ``time`` (the node's clock)."""

    time: float
    fills: tuple[FillView, ...] = ()
    counters: Counters = field(default_factory=Counters)
    cache_size: int | None = None
    image_cache_max_size: int | None = None
    queued_images: tuple[str, ...] = ()
    pinned_images: tuple[str, ...] = ()
    pinned_over_limit: bool = False
    nodes: tuple[NodeView, ...] | None = None  # None: the node has no central index (or it did not answer)


def _fill(item: Any) -> FillView | None:
    if not isinstance(item, Mapping) or not isinstance(item.get("image_id"), str):
        return None
    name, source = item.get("name"), item.get("source")
    return FillView(item["image_id"], name if isinstance(name, str) else None, _int(item.get("bytes")) or 0,
                    _int(item.get("expected_size")), _int(item.get("readers")),
                    source if isinstance(source, str) else "origin")


def _node(item: Any) -> NodeView | None:
    if not isinstance(item, Mapping) or not isinstance(item.get("url"), str):
        return None
    site, state = item.get("site"), item.get("state")
    return NodeView(item["url"], site if isinstance(site, str) else "", state if isinstance(state, str) else "?",
                    _number(item.get("last_seen")))


def _nodes(value: Any) -> tuple[NodeView, ...] | None:
    if not isinstance(value, list):
        return None
    return tuple(node for item in value if (node := _node(item)) is not None)


def _counters(data: Any) -> Counters:
    if not isinstance(data, Mapping):
        return Counters()
    plain = {key: _int(data.get(key)) or 0 for key in
             ("hits", "misses", "fill_followers", "upstream_bytes", "peer_bytes", "peer_served_bytes", "evictions")}
    return Counters(**plain, served_bytes=_split(data.get("served_bytes")),
                    not_stored=_split(data.get("not_stored")), fills=_split(data.get("fills")),
                    origin_requests=_split(data.get("origin_requests")))


def parse_activity(data: Any) -> Activity | None:
    """The activity in a decoded JSON answer, or None when it is not one (no time, no list of fills)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("fills"), list):
        return None
    when = _number(data.get("time"))
    if when is None:
        return None
    fills = tuple(fill for item in data["fills"] if (fill := _fill(item)) is not None)
    return Activity(when, fills, _counters(data.get("counters")), _int(data.get("cache_size")),
                    _int(data.get("image_cache_max_size")), _ids(data.get("queued_images")),
                    _ids(data.get("pinned_images")), data.get("pinned_over_limit") is True,
                    _nodes(data.get("nodes")))
