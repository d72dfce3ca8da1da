"""The file store: atomic writes, digests, safe names, stale partial uploads."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagecache.images.model import new_id
from imagecache.images.store import ImageStore


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(str(tmp_path / "images"), "sha512")


@settings(max_examples=30, deadline=None)
@given(chunks=st.lists(st.binary(max_size=3000), max_size=6), algorithm=st.sampled_from(["sha256", "sha512", "md5"]))
def test_write_digests_match_hashlib(
    tmp_path_factory: pytest.TempPathFactory, chunks: list[bytes], algorithm: str
) -> None:
    store = ImageStore(str(tmp_path_factory.mktemp("store")), algorithm)
    image_id = new_id()
    data = store.write(image_id, iter(chunks))
    whole = b"".join(chunks)
    assert data.size == len(whole)
    assert data.checksum == hashlib.md5(whole).hexdigest()
    assert data.os_hash_algo == algorithm
    assert data.os_hash_value == hashlib.new(algorithm, whole).hexdigest()
    assert Path(store.path(image_id)).read_bytes() == whole


def test_failed_write_leaves_nothing(store: ImageStore) -> None:
    def failing() -> Iterator[bytes]:
        yield b"some"
        raise RuntimeError("client went away")

    image_id = new_id()
    with pytest.raises(RuntimeError):
        store.write(image_id, failing())
    assert os.listdir(store.root) == []
    assert store.open(image_id) is None


def test_paths_accept_only_canonical_ids(store: ImageStore) -> None:
    for bad in ("../x", "..", "", new_id().upper(), new_id() + "/", "a" * 36):
        with pytest.raises(ValueError):
            store.path(bad)


def test_open_and_delete(store: ImageStore) -> None:
    image_id = new_id()
    assert store.open(image_id) is None
    store.write(image_id, [b"abc"])
    with store.open(image_id) as file:  # type: ignore[union-attr]
        assert file.read() == b"abc"
    store.delete(image_id)
    store.delete(image_id)
    assert store.open(image_id) is None


def test_remove_stale_parts(store: ImageStore) -> None:
    old = Path(store.root) / f".{new_id()}.abc.part"
    fresh = Path(store.root) / f".{new_id()}.def.part"
    image = Path(store.root) / new_id()
    for path in (old, fresh, image):
        path.write_bytes(b"x")
    past = time.time() - 1000
    os.utime(old, (past, past))
    os.utime(image, (past, past))
    assert store.remove_stale_parts(older_than=500) == 1
    assert not old.exists() and fresh.exists() and image.exists()
