"""The streamed cache listing is the document the listing always was, byte for byte."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from imagecache.cache import CachedImage
from imagecache.cache.drivers.base import LISTING_COLUMNS
from imagecache.wsgi.cache_listing import BATCH, RECORD_FIELDS, entry, listing_chunks


def listing_before(images: list[CachedImage], pinned: Collection[str], after: dict[str, Any]) -> bytes:
    """The listing as it was built before it was streamed (records, dicts, one document): the oracle."""
    def record(image: CachedImage) -> dict[str, Any]:
        facts = image.to_dict()
        facts["pinned"] = image.image_id in pinned
        return {name: facts[name] for name in RECORD_FIELDS}

    return json.dumps({"cached_images": [record(image) for image in images], **after}).encode("utf-8")


#: Ids as an index could hold them: UUIDs, and any text at all (unicode, quotes, control characters).
ids = st.one_of(st.uuids().map(str), st.text())
finite = st.floats(allow_nan=False)
images = st.builds(
    CachedImage, image_id=ids, size=st.integers(min_value=0, max_value=2**63), hits=st.integers(min_value=0),
    last_accessed=finite, last_modified=finite,
    checksum=st.none() | st.text(), os_hash_algo=st.none() | st.text(), os_hash_value=st.none() | st.text(),
)
afters = st.one_of(
    st.just({}), st.builds(lambda q: {"queued_images": q}, st.lists(st.uuids().map(str) | st.text(), max_size=5)),
)


@given(
    st.lists(images, max_size=3 * BATCH + 5), st.data(), afters,
    st.integers(min_value=1, max_value=5000),
)
def test_the_streamed_document_is_the_old_one_byte_for_byte(
    listed: list[CachedImage], data: st.DataObject, after: dict[str, Any], chunk_size: int,
) -> None:
    known = [image.image_id for image in listed]
    pinned = data.draw(st.sets(st.sampled_from(known) if known else st.nothing()) | st.sets(ids, max_size=3))
    rows = [image.listing_row() for image in listed]

    chunks = list(listing_chunks(rows, pinned, after, chunk_size=chunk_size))

    expected = listing_before(listed, pinned, after)
    assert b"".join(chunks) == expected
    assert json.loads(b"".join(chunks)) == json.loads(expected)
    assert all(chunks)  # no empty chunk: WSGI servers may take one for the end


def test_chunks_are_about_the_chunk_size() -> None:
    rows = [(f"{i:08d}-0000-4000-8000-000000000000", i, 1.5 * i, 2.0 * i, 8 * i) for i in range(5000)]
    chunks = list(listing_chunks(rows, set(), {"queued_images": []}, chunk_size=64 * 1024))
    assert len(chunks) > 5
    for chunk in chunks[:-1]:  # each one at least the size, and at most one batch more
        assert 64 * 1024 <= len(chunk) < 64 * 1024 + 200 * BATCH


def test_an_entry_has_the_record_fields_in_order() -> None:
    shown = entry(("i", 1, 2.0, 3.0, 4), pinned={"i"})
    assert tuple(shown) == RECORD_FIELDS == (*LISTING_COLUMNS, "pinned")
    assert shown == {"image_id": "i", "hits": 1, "last_accessed": 2.0, "last_modified": 3.0, "size": 4,
                     "pinned": True}


def test_an_empty_index_lists_nothing() -> None:
    assert b"".join(listing_chunks([], set(), {"queued_images": ["q"]})) == \
        b'{"cached_images": [], "queued_images": ["q"]}'
