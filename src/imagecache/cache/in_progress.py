"""The fills in progress on this node, read from the cache directory.

What ``GET /v2/cache/activity`` (and ``imagecache top``) shows an operator:
each image whose incomplete file a live writer holds, how far it got (the
file's size), how far it will go (the size record the fill wrote beside it,
:mod:`imagecache.cache.fill_size`), where it reads from (origin or peers,
:mod:`imagecache.cache.fill_source`) and how many clients are streaming it.
Everything comes from the filesystem, so one answer covers every worker
process of the node.

Readers hold shared ``flock`` locks on ``incomplete/<id>.readers``; the
kernel lists every lock in ``/proc/locks``, so counting a file's readers is
counting its shared flock entries there (:func:`shared_flocks`, pure).  Where
``/proc/locks`` cannot be read the count is unknown (None), never guessed.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from imagecache.cache.fill import is_locked
from imagecache.cache.fill_size import recorded_size
from imagecache.cache.fill_source import FillOrigin, recorded_source
from imagecache.cache.layout import CacheLayout, FileFacts
from imagecache.cache.tail import readers_path

__all__ = ["FileKey", "FillInProgress", "fills_in_progress", "shared_flocks"]

PROC_LOCKS = "/proc/locks"

#: (device major, device minor, inode): how ``/proc/locks`` names a file.
FileKey = tuple[int, int, int]


@dataclass(frozen=True)
class FillInProgress:
    """One fill writing on this node now."""

    image_id: str
    bytes: int  # written so far
    expected_size: int | None  # what the image's metadata says, when the fill recorded it
    readers: int | None  # clients streaming it now (None: cannot tell here)
    updated: float  # when the file last grew (epoch seconds)
    source: FillOrigin = "origin"  # where it started reading (:mod:`imagecache.cache.fill_source`)


def shared_flocks(locks: str) -> Counter[FileKey]:
    """How many shared (``READ``) flock locks each file holds, from ``/proc/locks`` text.

    A line reads ``1: FLOCK  ADVISORY  READ  1234 08:01:5678 0 EOF`` (a
    blocked request has ``->`` after its number: it holds nothing and is not
    counted).  Lines that do not parse are skipped.
    """
    counts: Counter[FileKey] = Counter()
    for line in locks.splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK" or fields[3] != "READ":
            continue
        key = _file_key(fields[5])
        if key is not None:
            counts[key] += 1
    return counts


def _file_key(text: str) -> FileKey | None:
    """``08:01:5678`` (hex major and minor, decimal inode) as a key, or None."""
    parts = text.split(":")
    if len(parts) != 3:
        return None
    try:
        return int(parts[0], 16), int(parts[1], 16), int(parts[2], 10)
    except ValueError:
        return None


def _read_locks() -> Counter[FileKey] | None:
    try:
        with open(PROC_LOCKS, encoding="ascii", errors="replace") as fh:
            return shared_flocks(fh.read())
    except OSError:
        return None


def _readers(layout: CacheLayout, image_id: str, locks: Counter[FileKey] | None) -> int | None:
    if locks is None:
        return None
    try:
        st = os.stat(readers_path(layout, image_id))
    except OSError:
        return 0  # no readers file: nobody ever followed this fill
    return locks[(os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)]


def fills_in_progress(layout: CacheLayout, limit: int | None = None) -> list[FillInProgress]:
    """The live fills (a writer holds the incomplete file), largest first; at most ``limit``.

    Files left by a crashed writer (no lock) are not fills: the cleaner's.
    """
    locks = _read_locks()
    fills = [
        FillInProgress(facts.image_id, facts.size, recorded_size(layout, facts.image_id),
                       _readers(layout, facts.image_id, locks), facts.mtime, recorded_source(layout, facts.image_id))
        for facts in _live(layout)
    ]
    fills.sort(key=lambda fill: (-fill.bytes, fill.image_id))
    return fills if limit is None else fills[:limit]


def _live(layout: CacheLayout) -> Iterator[FileFacts]:
    for facts in list(layout.incomplete()):
        try:
            live = is_locked(layout.incomplete_path(facts.image_id))
        except OSError:
            continue  # unreadable: not a fill we can show
        if live:
            yield facts
