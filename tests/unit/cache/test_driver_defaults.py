"""The optional features of the driver contract: what a driver gets when it declares none of them.

The cache calls every one of them on every driver (it never probes for a
method), so the defaults must do the generic thing.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Mapping

from hypothesis import given
from hypothesis import strategies as st

from imagecache import ImageCache, Settings
from imagecache.cache.drivers.base import CachedImage, Driver


class DictDriver(Driver):
    """The least a driver must write: the abstract methods, over a dict and a list."""

    name = "dict"

    def __init__(self) -> None:
        self.records: dict[str, CachedImage] = {}
        self.adds: list[str] = []
        self.queue_ids: list[str] = []
        self.pinned: dict[str, str] = {}

    def configure(self) -> None:
        pass

    def add(self, record: CachedImage) -> None:
        self.adds.append(record.image_id)
        self.records[record.image_id] = record

    def get(self, image_id: str) -> CachedImage | None:
        return self.records.get(image_id)

    def list(self) -> list[CachedImage]:
        return sorted(self.records.values(), key=lambda r: -r.last_accessed)

    def remove(self, image_id: str) -> bool:
        return self.records.pop(image_id, None) is not None

    def record_hits(self, batch: Mapping[str, tuple[int, float]]) -> None:
        pass

    def total_size(self) -> int:
        return sum(r.size for r in self.records.values())

    def queue(self, image_id: str) -> bool:
        if image_id in self.queue_ids:
            return False
        self.queue_ids.append(image_id)
        return True

    def is_queued(self, image_id: str) -> bool:
        return image_id in self.queue_ids

    def dequeue(self, image_id: str) -> bool:
        if image_id not in self.queue_ids:
            return False
        self.queue_ids.remove(image_id)
        return True

    def queued(self) -> list[str]:
        return list(self.queue_ids)

    def pin(self, image_id: str, by: str) -> bool:
        new = image_id not in self.pinned
        if new or by == "manual":
            self.pinned[image_id] = by
        return new

    def unpin(self, image_id: str) -> bool:
        return self.pinned.pop(image_id, None) is not None

    def pins(self) -> dict[str, str]:
        return dict(self.pinned)


records = st.builds(
    CachedImage,
    image_id=st.uuids().map(str),
    size=st.integers(min_value=0, max_value=1 << 40),
    last_accessed=st.floats(min_value=0, max_value=1e10),
)


@given(st.lists(records, unique_by=lambda r: r.image_id, max_size=20))
def test_add_many_adds_each_record_in_order(batch: list[CachedImage]) -> None:
    driver = DictDriver()
    driver.add_many(batch)
    assert driver.adds == [r.image_id for r in batch]
    assert all(driver.get(r.image_id) == r for r in batch)
    assert driver.total_size() == sum(r.size for r in batch)


def test_add_many_takes_any_iterable_once() -> None:
    driver = DictDriver()
    batch = [CachedImage(str(uuid.uuid4()), n) for n in range(3)]
    driver.add_many(r for r in batch)
    assert driver.adds == [r.image_id for r in batch]


def test_an_index_without_nodes_needs_no_heartbeat_and_lists_no_nodes() -> None:
    driver = DictDriver()
    assert driver.heartbeat_interval is None
    driver.heartbeat()  # does nothing, and says so by not failing
    assert driver.cached_nodes(str(uuid.uuid4())) is None
    driver.close()  # nothing to release


def test_the_cache_answers_none_for_nodes_when_its_index_has_none(tmp_path) -> None:
    cache = ImageCache(Settings(image_cache_dir=str(tmp_path / "cache")))
    try:
        assert cache.driver.heartbeat_interval is None
        assert cache.get_cached_nodes(str(uuid.uuid4())) is None
    finally:
        cache.close()


def test_reconcile_adopts_orphans_through_the_default_add_many(tmp_path) -> None:
    cache = ImageCache(Settings(image_cache_dir=str(tmp_path / "cache")))
    try:
        cache.driver.close()
        cache.driver = DictDriver()
        orphan = str(uuid.uuid4())
        with open(cache.layout.path(orphan), "wb") as fh:
            fh.write(b"x" * 5)
        assert cache.reconcile().files_adopted == 1
        assert cache.driver.get(orphan) is not None
        assert cache.driver.get(orphan).size == 5
    finally:
        cache.close()


def test_the_cache_and_the_settings_load_without_prometheus_or_sqlalchemy() -> None:
    """Tools that only read settings or the layout do not pay for metrics or the central index."""
    code = (
        "import sys, imagecache.config, imagecache.cache.layout, imagecache.cache\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('prometheus_client', 'sqlalchemy'))\n"
        "print(','.join(heavy))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == ""
