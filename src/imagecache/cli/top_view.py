"""One frame of ``imagecache top``: :func:`render`, pure (no I/O, no clock, no terminal).

A frame: the interval's hit ratio, bytes by source, what was not stored
and why, evictions, requests to the origin by reason, the cache's size
against its limit (and a warning when pinned images alone exceed it), the
queue and pins, the central index's nodes with their last heartbeat, and
the fills in progress.  It is plain text lines, never wider than the terminal nor more of them
than fit, whatever the node said (characters that would not take exactly
one cell, control characters above all, are shown as ``?``).  Rates and the interval's hit ratio come
from two snapshots of the node's cumulative counters (:class:`Activity`),
the difference divided by the node's own clock between them, so a slow
network or a busy client never skews them.  A counter that went down (the
node restarted) counts as zero for that interval.
"""

from __future__ import annotations

import datetime
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from imagecache.cli._common import format_size, plural
from imagecache.client.activity import Activity, FillView

__all__ = ["render"]

#: Columns of the fills table: header, width (the name takes what is left).
ID_WIDTH = 8
PROGRESS_WIDTH = 30
RATE_WIDTH = 11
READERS_WIDTH = 7
SOURCE_WIDTH = 6
#: Nodes listed at most (the rest are counted): the fills matter more on a small terminal.
MAX_NODE_LINES = 8
#: The line that says pinned images crowd out everything else.
PINNED_OVER_LIMIT = "WARNING: pinned images alone exceed the cache's limit: nothing else can be cached"


def _delta(now: int, before: int) -> int:
    return max(0, now - before)


def _rate(now: int, before: int, seconds: float) -> float:
    return _delta(now, before) / seconds if seconds > 0 else 0.0


def _split_delta(now: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    return {key: _delta(value, before.get(key, 0)) for key, value in now.items()}


def _per_second(amount: float) -> str:
    return f"{format_size(int(amount))}/s"


def _progress(fill: FillView) -> str:
    done = format_size(fill.bytes)
    if fill.expected_size is None:
        return f"{done} / ?"
    share = fill.bytes * 100 // fill.expected_size if fill.expected_size > 0 else 100
    return f"{done} / {format_size(fill.expected_size)} {min(share, 100)}%"


def _cell(text: str, width: int) -> str:
    return text[:width].ljust(width)


def _fill_line(fill: FillView, rate: float | None, name_width: int) -> str:
    readers = "?" if fill.readers is None else str(fill.readers)
    shown_rate = "-" if rate is None else _per_second(rate)
    return " ".join((
        _cell(fill.image_id[:ID_WIDTH], ID_WIDTH),
        _cell(fill.name or "", name_width),
        _cell(_progress(fill), PROGRESS_WIDTH),
        shown_rate[:RATE_WIDTH].rjust(RATE_WIDTH),
        readers[:READERS_WIDTH].rjust(READERS_WIDTH),
        _cell(fill.source, SOURCE_WIDTH),
    )).rstrip()


@dataclass(frozen=True)
class _Interval:
    """What the counters say about the interval between two snapshots (or since start, with one)."""

    label: str
    seconds: float  # 0: totals since start, not rates
    hits: int
    misses: int
    followers: int
    served: dict[str, int]
    peer: int
    not_stored: dict[str, int]
    evictions: int
    origin: dict[str, int]  # requests to the origin, by reason
    ended: dict[str, int]  # fills that ended, by result (failures among them)

    def amount(self, value: int) -> str:
        return _per_second(value / self.seconds) if self.seconds > 0 else format_size(value)


def _interval(now: Activity, before: Activity | None) -> _Interval:
    counters = now.counters
    seconds = now.time - before.time if before is not None else 0.0
    if before is None or seconds <= 0:
        return _Interval("since start", 0.0, counters.hits, counters.misses, counters.fill_followers,
                         dict(counters.served_bytes), counters.peer_bytes, dict(counters.not_stored),
                         counters.evictions, dict(counters.origin_requests), dict(counters.fills))
    old = before.counters
    return _Interval(
        f"last {seconds:.1f} s", seconds, _delta(counters.hits, old.hits), _delta(counters.misses, old.misses),
        _delta(counters.fill_followers, old.fill_followers), _split_delta(counters.served_bytes, old.served_bytes),
        _delta(counters.peer_bytes, old.peer_bytes), _split_delta(counters.not_stored, old.not_stored),
        _delta(counters.evictions, old.evictions), _split_delta(counters.origin_requests, old.origin_requests),
        _split_delta(counters.fills, old.fills),
    )


def _summary(now: Activity, before: Activity | None) -> list[str]:
    span = _interval(now, before)
    total = span.hits + span.misses
    ratio = f"{span.hits * 100 / total:.1f}%" if total else "-"
    misses = f"{span.misses} miss" + ("" if span.misses == 1 else "es")
    by_source = ", ".join(f"{source} {span.amount(value)}" for source, value in sorted(span.served.items()))
    reasons = _counts(span.not_stored)
    return [
        f"{span.label}: hit ratio {ratio} ({plural(span.hits, 'hit')}, {misses}, "
        f"{plural(span.followers, 'collapsed follower')})",
        f"served {span.amount(sum(span.served.values()))}" + (f" ({by_source})" if by_source else "")
        + f"; received from peers {span.amount(span.peer)}",
        f"not stored: {reasons or 'none'}; evicted {span.evictions}",
        f"to the origin: {_counts(span.origin) or 'none'}; fills ended: {_counts(span.ended) or 'none'}",
    ]


def _counts(split: Mapping[str, int]) -> str:
    return ", ".join(f"{key} {count}" for key, count in sorted(split.items()) if count)


def _cache_line(now: Activity) -> str:
    size = "?" if now.cache_size is None else format_size(now.cache_size)
    limit = "?" if now.image_cache_max_size is None else format_size(now.image_cache_max_size)
    share = ""
    if now.cache_size is not None and now.image_cache_max_size:
        share = f" ({now.cache_size * 100 // now.image_cache_max_size}%)"
    return f"cache {size} of {limit}{share}; {len(now.queued_images)} queued, {len(now.pinned_images)} pinned"


def _node_lines(now: Activity) -> list[str]:
    """The central index's nodes, live first, with how long ago each was heard from (none without an index)."""
    if now.nodes is None:
        return []
    states = {state: sum(node.state == state for node in now.nodes) for state in ("live", "stale", "never")}
    lines = [f"nodes: {len(now.nodes)} (" + ", ".join(f"{n} {state}" for state, n in states.items() if n) + ")"
             if now.nodes else "nodes: none"]
    shown = sorted(now.nodes, key=lambda node: (node.state != "live", node.url))[:MAX_NODE_LINES]
    for node in shown:
        heard = "never" if node.last_seen is None else f"{max(0.0, now.time - node.last_seen):.0f} s ago"
        lines.append(f"  {node.state:<5} {node.site[:16]:<16} heard {heard:<10} {node.url}")
    if len(now.nodes) > len(shown):
        lines.append(f"  ... {len(now.nodes) - len(shown)} more")
    return lines


def _ids_line(label: str, ids: tuple[str, ...]) -> str:
    return f"{label}: " + (" ".join(image_id[:ID_WIDTH] for image_id in ids) if ids else "none")


def _fill_rates(now: Activity, before: Activity | None) -> dict[str, float]:
    """Bytes per second of each fill seen in both snapshots."""
    if before is None or now.time <= before.time:
        return {}
    earlier = {fill.image_id: fill.bytes for fill in before.fills}
    return {fill.image_id: _rate(fill.bytes, earlier[fill.image_id], now.time - before.time)
            for fill in now.fills if fill.image_id in earlier}


def _clock(when: float) -> str:
    try:
        return datetime.datetime.fromtimestamp(when, datetime.UTC).strftime("%H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return "?"


def render(snapshot: Activity, previous: Activity | None, width: int, height: int, title: str = "") -> list[str]:
    """The frame for ``snapshot`` (rates against ``previous``): at most ``height`` lines of at most ``width``."""
    if width <= 0 or height <= 0:
        return []
    head = f"imagecache top {title}".rstrip() + f"  {_clock(snapshot.time)}"
    warning = [PINNED_OVER_LIMIT] if snapshot.pinned_over_limit else []
    lines = [head, *warning, *_summary(snapshot, previous), _cache_line(snapshot),
             _ids_line("queued", snapshot.queued_images), _ids_line("pinned", snapshot.pinned_images),
             *_node_lines(snapshot), "", f"fills in progress: {len(snapshot.fills)}"]
    name_width = max(4, width - (ID_WIDTH + PROGRESS_WIDTH + RATE_WIDTH + READERS_WIDTH + SOURCE_WIDTH + 5))
    if snapshot.fills:
        lines.append(_fill_header(name_width))
    rates = _fill_rates(snapshot, previous)
    room = height - len(lines)
    fills = snapshot.fills
    if len(fills) > room > 0:
        fills = fills[: room - 1]
    lines.extend(_fill_line(fill, rates.get(fill.image_id), name_width) for fill in fills)
    if len(fills) < len(snapshot.fills) and room > 0:
        lines.append(f"... {len(snapshot.fills) - len(fills)} more")
    return [_fit(line, width) for line in lines[:height]]


def _shown(char: str) -> str:
    """``char`` when it takes one terminal cell as it is, else ``?``.

    What a node says (an image's name) must never move the cursor, clear the
    screen or take two cells where one was counted.
    """
    if not char.isprintable() or unicodedata.combining(char) or unicodedata.east_asian_width(char) in "WF":
        return "?"
    return char


def _fit(line: str, width: int) -> str:
    """``line`` as at most ``width`` one-cell characters."""
    return "".join(_shown(char) for char in line[:width])


def _fill_header(name_width: int) -> str:
    return " ".join((_cell("IMAGE", ID_WIDTH), _cell("NAME", name_width), _cell("BYTES / EXPECTED", PROGRESS_WIDTH),
                     "RATE".rjust(RATE_WIDTH), "READERS".rjust(READERS_WIDTH), "SOURCE"))
