"""The central driver beyond the shared contract: nodes, staleness, refusals, the library on top.

The contract itself (every driver's behaviour) runs in
tests/unit/cache/test_driver_contract.py with the central driver in it.
"""

from __future__ import annotations

import datetime
import hashlib
import multiprocessing
import os
import uuid

import pytest
from sqlalchemy import select, text

from imagecache import ImageCache, Settings
from imagecache.cache import DriverConfigError
from imagecache.cache.drivers.base import CachedImage
from imagecache.cache.drivers.central import (
    CentralDriver,
    CentralIndexError,
    heartbeat_interval,
    node_reference,
)
from imagecache.cache.layout import CacheLayout
from imagecache.db.schema import nodes
from tests.support.waiting import wait_until

from .pg import central_settings, engine_for, set_last_seen, with_schema


def new_id() -> str:
    return str(uuid.uuid4())


def record(image_id: str | None = None, size: int = 10, when: float = 100.0) -> CachedImage:
    return CachedImage(image_id or new_id(), size, 0, when, when)


# -- the node's reference URL (no database) -------------------------------------------------


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"node_url": "https://edge-7.example:9292/"}, "https://edge-7.example:9292"),
        ({"bind_host": "10.0.0.7", "bind_port": 9393}, "http://10.0.0.7:9393"),
        ({"bind_host": "::1"}, "http://[::1]:9292"),
        ({"bind_host": "[fd00::7]"}, "http://[fd00::7]:9292"),
        ({}, "http://127.0.0.1:9292"),
    ],
)
def test_node_reference(options: dict[str, object], expected: str) -> None:
    assert node_reference(Settings(**options)) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("wildcard", ["0.0.0.0", "::"])
def test_a_wildcard_bind_address_is_replaced_by_the_host_name(wildcard: str) -> None:
    import socket

    assert node_reference(Settings(bind_host=wildcard)) == f"http://{socket.getfqdn()}:9292"


def test_heartbeats_come_several_times_per_stale_period() -> None:
    assert heartbeat_interval(300) == 100
    assert heartbeat_interval(0.1) == 0.5  # a floor: no busy loop


@pytest.mark.parametrize(
    ("url", "fragment"),
    [("sqlite:///index.db", "needs PostgreSQL"), ("mysql://x@y/z", "needs PostgreSQL"),
     ("::nonsense", "not a database URL")],
)
def test_urls_that_are_not_postgresql_are_refused(tmp_path, url: str, fragment: str) -> None:
    layout = CacheLayout(str(tmp_path / "cache"))
    with pytest.raises(DriverConfigError, match=fragment):
        CentralDriver(layout, central_settings(url, layout))


def test_a_plain_postgresql_url_gets_psycopg(tmp_path) -> None:
    layout = CacheLayout(str(tmp_path / "cache"))
    driver = CentralDriver(layout, central_settings("postgresql://ic:secret@db.example/glance", layout))
    assert driver.url.drivername == "postgresql+psycopg"
    assert "secret" not in repr(driver)


# -- refusing to start ------------------------------------------------------------------------


def test_configure_refuses_a_database_without_the_schema(empty_db_url, tmp_path) -> None:
    layout = CacheLayout(str(tmp_path / "cache"))
    driver = CentralDriver(layout, central_settings(empty_db_url, layout))
    with pytest.raises(DriverConfigError, match="no schema yet: run `imagecache db upgrade`"):
        driver.configure()
    driver.close()


def test_configure_refuses_a_schema_newer_than_the_code(db_url, tmp_path) -> None:
    engine = engine_for(db_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    layout = CacheLayout(str(tmp_path / "cache"))
    driver = CentralDriver(layout, central_settings(db_url, layout))
    with pytest.raises(DriverConfigError, match="revision 9999, which this imagecache does not know"):
        driver.configure()
    driver.close()


def test_configure_refuses_an_unreachable_database(tmp_path) -> None:
    layout = CacheLayout(str(tmp_path / "cache"))
    driver = CentralDriver(layout, central_settings("postgresql://nobody@127.0.0.1:1/none", layout))
    with pytest.raises(DriverConfigError, match=r"cannot use the central index at .*127.0.0.1:1"):
        driver.configure()


def test_the_cache_never_falls_back_to_a_private_index(empty_db_url, tmp_path) -> None:
    settings = central_settings(empty_db_url, CacheLayout(str(tmp_path / "cache")))
    with pytest.raises(DriverConfigError, match="imagecache db upgrade"):
        ImageCache(settings)
    assert not os.path.exists(tmp_path / "cache" / "cache.db")


def test_a_database_lost_after_start_is_a_cache_error(make_driver) -> None:
    driver = make_driver()
    driver.close()
    driver.url = driver.url.set(port=1)
    with pytest.raises(CentralIndexError, match=r"127.0.0.1:1"):
        driver.total_size()


# -- several nodes on one database ------------------------------------------------------------


def test_each_node_sees_only_its_own_records_and_queue(make_driver) -> None:
    a, b = make_driver(), make_driver()
    shared, only_a = new_id(), new_id()
    a.add(record(shared, size=10))
    a.add(record(only_a, size=5))
    b.add(record(shared, size=10))
    b.record_hit(shared, 200.0)
    assert a.ids() == {shared, only_a} and b.ids() == {shared}
    assert (a.total_size(), b.total_size()) == (15, 10)
    assert (a.get(shared).hits, b.get(shared).hits) == (0, 1)
    assert b.get(only_a) is None and b.remove(only_a) is False
    a.queue(only_a)
    assert b.queued() == [] and b.clear_queue() == 0 and a.queued() == [only_a]
    a.remove(shared)
    assert b.get(shared) is not None


def test_cached_nodes_lists_live_nodes_holding_the_image(make_driver) -> None:
    a, b, c = make_driver("http://a:9292"), make_driver("http://b:9292"), make_driver("http://c:9292")
    for driver in (a, b, c):
        driver.heartbeat()
    image_id = new_id()
    assert a.cached_nodes(image_id) == []
    c.add(record(image_id))
    a.add(record(image_id))
    assert b.cached_nodes(image_id) == ["http://a:9292", "http://c:9292"]
    c.remove(image_id)
    assert b.cached_nodes(image_id) == ["http://a:9292"]


def test_stale_and_never_seen_nodes_are_left_out_until_they_beat(make_driver, db_url) -> None:
    live, stale, never = (make_driver(f"http://{n}:9292", node_stale_after=60) for n in ("live", "stale", "never"))
    live.heartbeat()
    stale.heartbeat()
    image_id = new_id()
    for driver in (live, stale, never):
        driver.add(record(image_id))
    set_last_seen(db_url, "http://stale:9292", 61)
    assert live.cached_nodes(image_id) == ["http://live:9292"]
    set_last_seen(db_url, "http://stale:9292", 59)
    assert live.cached_nodes(image_id) == ["http://live:9292", "http://stale:9292"]
    never.heartbeat()
    assert len(live.cached_nodes(image_id)) == 3


def test_a_forgotten_node_registers_again_on_its_next_heartbeat(make_driver, db_url) -> None:
    from imagecache.db.admin import forget_node

    a, b = make_driver("http://a:9292"), make_driver("http://b:9292")
    image_id = new_id()
    a.add(record(image_id))
    a.heartbeat()
    engine = engine_for(db_url)
    assert forget_node(engine, "http://a:9292") == 1
    assert forget_node(engine, "http://a:9292") is None
    engine.dispose()
    assert b.cached_nodes(image_id) == []
    a.heartbeat()
    a.add(record(image_id))
    assert b.cached_nodes(image_id) == ["http://a:9292"]


def test_the_same_node_in_two_processes_shares_its_rows(make_driver) -> None:
    """A forked worker gets an engine of its own, and the parent's keeps working."""
    driver = make_driver()
    image_id = new_id()
    driver.add(record(image_id))
    context = multiprocessing.get_context("fork")
    child = context.Process(target=_hit_in_child, args=(driver, image_id))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    driver.record_hit(image_id, 300.0)
    assert driver.get(image_id).hits == 2


def _hit_in_child(driver: CentralDriver, image_id: str) -> None:
    driver.record_hit(image_id, 200.0)


def test_a_late_hit_never_moves_an_image_back(make_driver) -> None:
    driver = make_driver()
    image_id = new_id()
    driver.add(record(image_id, when=100.0))
    driver.record_hit(image_id, 500.0)
    driver.record_hit(image_id, 400.0)  # a slow request finishing after a faster one
    got = driver.get(image_id)
    assert (got.hits, got.last_accessed) == (2, 500.0)


def test_adopting_keeps_existing_records(make_driver) -> None:
    driver = make_driver()
    known = record(size=7)
    driver.add(known)
    driver.record_hit(known.image_id, 150.0)
    driver.add_many([record(known.image_id, size=7), record(size=3)])
    driver.add_many([])
    assert driver.get(known.image_id).hits == 1 and driver.total_size() == 10


# -- the library on the central index -----------------------------------------------------------


def _data(seed: str, size: int = 50_000) -> bytes:
    block = hashlib.sha256(seed.encode()).digest()
    return (block * (size // len(block) + 1))[:size]


def _fill(cache: ImageCache, image_id: str, data: bytes) -> bool:
    return cache.cache_image_iter(
        image_id, [data], hashlib.md5(data).hexdigest(),
        os_hash_algo="sha512", os_hash_value=hashlib.sha512(data).hexdigest(), size=len(data),
    )


def test_image_cache_fills_evicts_and_answers_across_nodes(make_cache, clock) -> None:
    a = make_cache("node-a", image_cache_max_size=120_000)
    b = make_cache("node-b")
    a.driver.heartbeat()  # type: ignore[attr-defined]
    b.driver.heartbeat()  # type: ignore[attr-defined]
    first, second, third = new_id(), new_id(), new_id()
    assert _fill(a, first, _data("1"))
    clock.advance(10)
    assert _fill(a, second, _data("2"))
    assert _fill(b, first, _data("1"))
    clock.advance(5)
    with a.open_for_read(first):  # a hit: now younger than second
        pass
    assert b.get_cached_nodes(first) == ["http://node-a:9292", "http://node-b:9292"]
    clock.advance(10)
    assert _fill(a, third, _data("3"))  # over 120 kB: the least recently used (second) goes
    assert {r.image_id for r in a.get_cached_images()} == {first, third}
    assert b.get_cached_nodes(second) == []
    assert a.get_hit_count(first) == 1 and b.get_hit_count(first) == 0
    assert a.delete_all_cached_images() == 2
    assert b.get_cached_nodes(first) == ["http://node-b:9292"]


def test_reconcile_adopts_files_and_drops_rows_for_this_node_only(make_cache) -> None:
    a, b = make_cache("node-a"), make_cache("node-b")
    kept, lost = new_id(), new_id()
    assert _fill(a, kept, _data("k")) and _fill(a, lost, _data("l")) and _fill(b, lost, _data("l"))
    os.unlink(a.layout.path(lost))  # a crash between unlink and row removal
    orphan = new_id()
    with open(a.layout.path(orphan), "wb") as fh:
        fh.write(b"x" * 100)
    result = a.reconcile()
    assert (result.rows_dropped, result.files_adopted) == (1, 1)
    assert {r.image_id for r in a.get_cached_images()} == {kept, orphan}
    assert b.driver.get(lost) is not None


def test_the_cache_without_a_central_index_has_no_nodes(tmp_path) -> None:
    cache = ImageCache(Settings(image_cache_dir=str(tmp_path / "cache")))
    assert cache.get_cached_nodes(new_id()) is None
    cache.close()


def test_with_schema_keeps_tests_apart() -> None:
    assert "search_path%3Dmine" in with_schema("postgresql://u@h/db", "mine")


# -- the server's part: registration and heartbeats ---------------------------------------------


def test_the_server_beats_for_a_central_node_only(make_cache, db_url, tmp_path) -> None:
    from imagecache.server import start_heartbeat

    plain = ImageCache(Settings(image_cache_dir=str(tmp_path / "plain")))
    assert start_heartbeat(plain) is None
    plain.close()

    stale_after, node_url = 1.5, "http://beating:9292"
    cache = make_cache("beating", node_stale_after=stale_after)
    image_id = new_id()
    assert _fill(cache, image_id, _data("b"))
    assert cache.get_cached_nodes(image_id) == []  # registered, never seen
    engine = engine_for(db_url)

    def last_seen() -> datetime.datetime | None:
        with engine.connect() as connection:
            return connection.execute(select(nodes.c.last_seen).where(nodes.c.url == node_url)).scalar_one()

    jobs = start_heartbeat(cache)
    try:
        wait_until(lambda: cache.get_cached_nodes(image_id) == [node_url], "a first heartbeat")
        first = last_seen()
        assert first is not None
        # A beat more than node_stale_after after the first, by the database's clock: the first
        # alone would have gone stale by now, so only heartbeats keep it listed.
        wait_until(lambda: (last_seen() - first).total_seconds() > stale_after,
                   f"a heartbeat more than {stale_after} s after the first")
        assert cache.get_cached_nodes(image_id) == [node_url]
    finally:
        engine.dispose()
        assert jobs is not None and jobs.stop()


def test_preflight_refuses_a_schema_not_at_head_in_one_line(empty_db_url, tmp_path) -> None:
    from imagecache.config import ConfigError
    from imagecache.server import preflight

    settings = Settings(data_dir=str(tmp_path), image_cache_driver="central", db_url=empty_db_url)
    with pytest.raises(ConfigError, match="run `imagecache db upgrade`"):
        preflight(settings)


def test_preflight_registers_the_node_as_alive(db_url, tmp_path) -> None:
    from imagecache.db.admin import list_nodes
    from imagecache.server import preflight

    settings = Settings(data_dir=str(tmp_path), image_cache_driver="central", db_url=db_url, bind_port=9999)
    preflight(settings)
    engine = engine_for(db_url)
    assert [(n.url, n.state.value) for n in list_nodes(engine, 300)] == [("http://127.0.0.1:9999", "live")]
    engine.dispose()
