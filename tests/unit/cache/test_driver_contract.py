"""The contract every index driver keeps; each driver runs this same suite.

A new driver is added to ``DRIVER_FACTORIES`` (the central driver adds itself
when PostgreSQL is reachable) and must pass unchanged.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator

import pytest

from imagecache.cache.drivers.base import CachedImage, Driver
from imagecache.cache.drivers.sqlite import SqliteDriver
from imagecache.cache.drivers.xattr import XattrDriver
from imagecache.cache.layout import CacheLayout
from tests.unit.central.pg import central_contract_driver


def _publish(layout: CacheLayout, image_id: str, size: int) -> None:
    """Put a file where a verified image would be (drivers index published files)."""
    with open(layout.path(image_id), "wb") as fh:
        fh.write(b"\0" * size)


DRIVER_FACTORIES: dict[str, Callable[[CacheLayout], Driver]] = {
    "sqlite": SqliteDriver,
    "xattr": XattrDriver,
    # PostgreSQL at IMAGECACHE_TEST_DB_URL, a scratch schema per test (skips without one, fails under CI=true).
    "central": central_contract_driver,
}


@pytest.fixture(params=[pytest.param(name, marks=pytest.mark.postgres) if name == "central" else name
                        for name in sorted(DRIVER_FACTORIES)])
def env(request, tmp_path) -> Iterator[tuple[Driver, CacheLayout]]:
    layout = CacheLayout(str(tmp_path / "cache"))
    layout.ensure()
    driver = DRIVER_FACTORIES[request.param](layout)
    driver.configure()
    yield driver, layout
    driver.close()


def record(layout: CacheLayout, size: int = 10, accessed: float = 100.0, **kw) -> CachedImage:
    image_id = kw.pop("image_id", str(uuid.uuid4()))
    _publish(layout, image_id, size)
    return CachedImage(image_id=image_id, size=size, last_accessed=accessed, last_modified=accessed, **kw)


def test_add_then_get_round_trips_every_fact(env):
    driver, layout = env
    rec = record(layout, size=1234, accessed=42.5, hits=3,
                 checksum="c" * 32, os_hash_algo="sha512", os_hash_value="f" * 128)
    driver.add(rec)
    assert driver.get(rec.image_id) == rec


def test_get_unknown_is_none(env):
    driver, _ = env
    assert driver.get(str(uuid.uuid4())) is None


def test_list_is_most_recent_first_and_lru_is_the_reverse(env):
    driver, layout = env
    recs = [record(layout, accessed=t) for t in (300.0, 100.0, 200.0)]
    for rec in recs:
        driver.add(rec)
    assert [r.last_accessed for r in driver.list()] == [300.0, 200.0, 100.0]
    assert [r.last_accessed for r in driver.lru()] == [100.0, 200.0, 300.0]
    assert driver.ids() == {r.image_id for r in recs}


def test_listing_rows_are_the_listed_records_columns_in_the_same_order(env):
    driver, layout = env
    # Ties on last_accessed, then on last_modified: the id decides, in every driver.
    recs = [record(layout, size=7 * i, accessed=float(1 + i % 3), hits=i, checksum="c" * 32) for i in range(12)]
    recs.append(CachedImage(record(layout, size=3).image_id, size=3, hits=2**33, last_accessed=1.0, last_modified=0.25))
    for rec in recs:
        driver.add(rec)
    rows = list(driver.listing_rows())
    assert rows == [r.listing_row() for r in driver.list()]
    assert [type(value) for value in rows[0]] == [str, int, float, float, int]
    assert sorted(rows) == sorted(r.listing_row() for r in recs)


def test_record_hit_counts_and_refreshes_access_time(env):
    driver, layout = env
    rec = record(layout, accessed=100.0)
    driver.add(rec)
    driver.record_hit(rec.image_id, 500.0)
    driver.record_hit(rec.image_id, 600.0)
    got = driver.get(rec.image_id)
    assert (got.hits, got.last_accessed, got.last_modified) == (2, 600.0, 100.0)


def test_record_hit_on_unknown_image_is_harmless(env):
    driver, _ = env
    driver.record_hit(str(uuid.uuid4()), 1.0)


def test_record_hits_applies_a_whole_batch_and_skips_images_gone_meanwhile(env):
    driver, layout = env
    recs = [record(layout, accessed=100.0) for _ in range(3)]
    for rec in recs:
        driver.add(rec)
    gone = str(uuid.uuid4())
    driver.record_hits({recs[0].image_id: (5, 700.0), recs[1].image_id: (1, 300.0), gone: (9, 900.0)})
    driver.record_hits({recs[0].image_id: (2, 650.0), recs[1].image_id: (3, 50.0)})  # times never go back
    assert [(r.hits, r.last_accessed) for r in map(driver.get, (r.image_id for r in recs))] == [
        (7, 700.0), (4, 300.0), (0, 100.0)]
    assert driver.get(gone) is None
    driver.record_hits({})  # an empty batch writes nothing and fails nothing
    assert [r.image_id for r in driver.lru()] == [recs[2].image_id, recs[1].image_id, recs[0].image_id]


def test_total_size_sums_records(env):
    driver, layout = env
    assert driver.total_size() == 0
    for size in (10, 20, 30):
        driver.add(record(layout, size=size))
    assert driver.total_size() == 60


def test_remove_forgets_the_image(env):
    driver, layout = env
    rec, kept = record(layout, size=10), record(layout, size=20)
    driver.add(rec)
    driver.add(kept)
    driver.remove(rec.image_id)
    layout.remove(rec.image_id)  # the cache unlinks the file too
    # The row is gone from every way of reading the index, and only that row.
    assert driver.get(rec.image_id) is None
    assert driver.ids() == {kept.image_id}
    assert [r.image_id for r in driver.list()] == [kept.image_id]
    assert [r.image_id for r in driver.lru()] == [kept.image_id]
    assert driver.get(kept.image_id) == kept
    assert driver.total_size() == 20


def test_remove_says_whether_there_was_a_record(env):
    driver, layout = env
    rec = record(layout)
    driver.add(rec)
    assert driver.remove(rec.image_id) is True
    layout.remove(rec.image_id)
    assert driver.remove(rec.image_id) is False  # nothing left to forget
    assert driver.remove(str(uuid.uuid4())) is False  # never recorded


def test_add_many_records_every_image(env):
    driver, layout = env
    recs = [record(layout, size=size, accessed=float(size), checksum="c" * 32) for size in (5, 6, 7)]
    driver.add_many(recs)
    driver.add_many([])
    assert [driver.get(r.image_id) for r in recs] == recs
    assert driver.total_size() == 18


def test_an_index_lists_the_nodes_of_an_image_only_if_it_has_nodes(env):
    driver, layout = env
    rec = record(layout)
    driver.add(rec)
    driver.heartbeat()  # a no-op for an index without nodes; this node is alive for one with them
    nodes = driver.cached_nodes(rec.image_id)
    if driver.heartbeat_interval is None:
        assert nodes is None
    else:
        assert driver.heartbeat_interval > 0
        assert nodes is not None and len(nodes) == 1  # this node, which just beat
        assert driver.cached_nodes(str(uuid.uuid4())) == []


def test_queue_is_ordered_oldest_first_and_refuses_duplicates(env):
    driver, _ = env
    ids = [str(uuid.uuid4()) for _ in range(20)]
    for image_id in ids:
        assert driver.queue(image_id) is True
    assert driver.queue(ids[3]) is False
    assert driver.queued() == ids
    assert driver.is_queued(ids[0]) and not driver.is_queued(str(uuid.uuid4()))


def test_dequeue_and_clear_queue(env):
    driver, _ = env
    ids = [str(uuid.uuid4()) for _ in range(3)]
    for image_id in ids:
        driver.queue(image_id)
    assert driver.dequeue(ids[1]) is True
    assert driver.dequeue(ids[1]) is False
    assert driver.queued() == [ids[0], ids[2]]
    assert driver.clear_queue() == 2
    assert driver.queued() == []


def test_concurrent_hits_from_threads_are_all_counted(env):
    driver, layout = env
    rec = record(layout)
    driver.add(rec)

    def hit_many() -> None:
        for n in range(25):
            driver.record_hit(rec.image_id, float(n))

    threads = [threading.Thread(target=hit_many) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert driver.get(rec.image_id).hits == 200


# -- peer fill (docs/peer-fill.md): every driver answers; a node alone has no peers --------------


def test_a_node_alone_has_no_peers_and_wins_every_claim(env):
    driver, layout = env
    driver.heartbeat()
    rec = record(layout)
    driver.add(rec)
    for image_id in (rec.image_id, str(uuid.uuid4())):
        assert driver.peer_sources(image_id) == []  # never itself
        assert driver.claim_cluster_fill(image_id) is True
        assert driver.claim_cluster_fill(image_id) is True  # its own claim, again
        driver.fill_ended(image_id)


def test_the_fill_hooks_take_any_fill_in_any_order(env):
    driver, _ = env
    image_id = str(uuid.uuid4())
    driver.fill_ended(image_id)  # a fill never started: nothing to end
    driver.fill_started(image_id, None)
    driver.fill_started(image_id, 100)  # the image's next fill after a crash
    for nbytes in (10, 20, 100):
        driver.fill_progress(image_id, nbytes)
    driver.fill_ended(image_id)
    driver.fill_ended(image_id)
    driver.mark_suspect("http://nobody.example:9292", 600)  # a peer the index does not know
    assert driver.peer_sources(image_id) == []


def test_the_fleet_is_empty_without_nodes_or_lists_this_nodes_images(env):
    driver, layout = env
    rec = record(layout, size=7)
    driver.add(rec)
    fleet = driver.fleet()
    if driver.heartbeat_interval is None:
        assert fleet == []
    else:
        assert [(entry.image_id, entry.filling, entry.size, entry.bytes) for entry in fleet] == [
            (rec.image_id, False, 7, 7)
        ]


# -- pins: every driver keeps them, cached or not ------------------------------------------


def test_pins_are_kept_whether_or_not_the_image_is_cached(env):
    driver, layout = env
    cached = record(layout)
    driver.add(cached)
    absent = str(uuid.uuid4())
    assert driver.pins() == {}
    assert driver.pin(cached.image_id, "manual") is True
    assert driver.pin(absent, "prewarm") is True
    assert driver.pins() == {cached.image_id: "manual", absent: "prewarm"}
    assert driver.pin(cached.image_id, "manual") is False  # pinned already: kept as it was
    assert driver.pins()[cached.image_id] == "manual"


def test_a_manual_pin_replaces_a_prewarm_one_never_the_reverse(env):
    driver, _ = env
    by_policy, by_operator = str(uuid.uuid4()), str(uuid.uuid4())
    driver.pin(by_policy, "prewarm")
    driver.pin(by_operator, "manual")
    assert driver.pin(by_policy, "manual") is False
    assert driver.pin(by_operator, "prewarm") is False
    assert driver.pins() == {by_policy: "manual", by_operator: "manual"}


def test_unpin_says_whether_there_was_a_pin_and_leaves_the_record(env):
    driver, layout = env
    rec = record(layout)
    driver.add(rec)
    driver.pin(rec.image_id, "manual")
    assert driver.unpin(rec.image_id) is True
    assert driver.unpin(rec.image_id) is False
    assert driver.unpin(str(uuid.uuid4())) is False
    assert driver.pins() == {}
    assert driver.get(rec.image_id) == rec  # the cached image is an ordinary one again


def test_a_pin_outlives_the_record_of_its_image(env):
    """Evicting or deleting a pinned image's copy leaves the pin (the next fill keeps it again)."""
    driver, layout = env
    rec = record(layout)
    driver.add(rec)
    driver.pin(rec.image_id, "manual")
    layout.remove(rec.image_id)
    driver.remove(rec.image_id)
    assert driver.pins() == {rec.image_id: "manual"}


def test_pins_from_threads_at_once_each_land_once(env):
    driver, _ = env
    ids = [str(uuid.uuid4()) for _ in range(10)]
    added: list[bool] = []
    lock = threading.Lock()

    def pin_all() -> None:
        for image_id in ids:
            result = driver.pin(image_id, "prewarm")
            with lock:
                added.append(result)

    threads = [threading.Thread(target=pin_all) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(driver.pins()) == set(ids)
    assert added.count(True) == len(ids)  # each pin was new to exactly one caller
