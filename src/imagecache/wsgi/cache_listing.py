"""The cache listing's JSON document, encoded in chunks: ``GET /v2/cache`` and ``{prefix}/cached_images``.

Built whole, 100,000 entries took 1.2 s to answer and some 60 MiB: a
record object per row, a dict per record, then one document held in
memory at once.  Here the index's rows, read as they are needed
(:meth:`~imagecache.cache.drivers.base.Driver.listing_rows`), become
entries a batch at a time, each batch encoded by one ``json.dumps`` call
(the C encoder), and the document leaves in chunks of about
:data:`CHUNK_SIZE` bytes.  The bytes are exactly those ``json.dumps`` gives
for the whole document, so clients see no change at all.

Pure: no I/O, the rows and the pinned ids are given (the rows are read,
and closed at the end, as they come).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Generator, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any

from imagecache.cache.drivers.base import LISTING_COLUMNS, ListingRow
from imagecache.http.closing import quiet_close

#: Fields of a cached image entry in the API: Glance's (what glanceclient reads),
#: then ``pinned``.  glanceclient reads entries by field name, so a field more
#: is harmless there; a top-level key more in ``GET /v2/cache`` is not (its
#: ``cache-list`` shows every key but ``cached_images`` as queued ids).
RECORD_FIELDS = (*LISTING_COLUMNS, "pinned")
#: About how many bytes each chunk of the document holds.
CHUNK_SIZE = 64 * 1024
#: Entries encoded per ``json.dumps`` call (about 20 KiB of JSON).
BATCH = 128
#: What ``json.dumps`` puts between items and between a key and its value.
_ITEM, _KEY = ", ", ": "


def entry(row: ListingRow, pinned: Collection[str]) -> dict[str, Any]:
    """The one rule of how a cached image appears: Glance's fields and types, and whether it is pinned."""
    image_id, hits, last_accessed, last_modified, size = row
    return {
        "image_id": image_id,
        "hits": hits,
        "last_accessed": last_accessed,
        "last_modified": last_modified,
        "size": size,
        "pinned": image_id in pinned,
    }


def listing_chunks(
    rows: Iterable[ListingRow], pinned: Collection[str], after: Mapping[str, Any] | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Generator[bytes, None, None]:
    """``json.dumps({"cached_images": [entries...], **after})``, UTF-8, in chunks of about ``chunk_size``.

    ``rows`` is closed (when it can be) once the document is done or abandoned: a driver's query ends then.
    """
    try:
        yield from _chunks(rows, pinned, after or {}, chunk_size)
    finally:
        quiet_close(rows)


def _chunks(
    rows: Iterable[ListingRow], pinned: Collection[str], after: Mapping[str, Any], chunk_size: int,
) -> Iterator[bytes]:
    parts: list[str] = ['{"cached_images": [']
    buffered = len(parts[0])
    separator = ""
    for text in _batches(rows, pinned):
        parts += (separator, text)
        buffered += len(text)
        separator = _ITEM
        if buffered >= chunk_size:
            yield "".join(parts).encode("utf-8")
            parts, buffered = [], 0
    parts.append("]")
    for key, value in after.items():
        parts += (_ITEM, json.dumps(key), _KEY, json.dumps(value))
    parts.append("}")
    yield "".join(parts).encode("utf-8")


def _batches(rows: Iterable[ListingRow], pinned: Collection[str]) -> Iterator[str]:
    """The entries of :data:`BATCH` rows at a time, each batch as JSON items without the brackets."""
    source = iter(rows)
    while batch := _take(source):
        yield json.dumps([entry(row, pinned) for row in batch])[1:-1]


def _take(source: Iterator[ListingRow]) -> Sequence[ListingRow]:
    return list(islice(source, BATCH))
