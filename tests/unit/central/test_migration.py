"""Migrations 0002 (peer fill) and 0003 (pins) on databases that already hold rows, and the refusals before them."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import text

from imagecache.cache import DriverConfigError
from imagecache.cache.drivers.central import CentralDriver
from imagecache.cache.layout import CacheLayout
from imagecache.db.engine import database_url
from imagecache.db.migrate import head_revision, schema_state, upgrade, upgrade_sql

from .pg import central_settings, engine_for

IMAGE = "11111111-1111-4111-8111-111111111111"


def _at_0001_with_rows(url: str) -> None:
    """A database as 0001 left it, with a node, its record and its queue."""
    engine = engine_for(url)
    try:
        upgrade(engine, "0001")
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO nodes (url, last_seen) VALUES ('http://old:9292', now())"))
            connection.execute(text(
                "INSERT INTO cached_images (node_id, image_id, size, hits, last_accessed, last_modified) "
                f"SELECT id, '{IMAGE}', 42, 3, 1.0, 1.0 FROM nodes"
            ))
            connection.execute(text(f"INSERT INTO queued_images (node_id, image_id) SELECT id, '{IMAGE}' FROM nodes"))
    finally:
        engine.dispose()


def test_a_node_refuses_a_database_still_at_0001(empty_db_url, tmp_path) -> None:
    _at_0001_with_rows(empty_db_url)
    layout = CacheLayout(str(tmp_path / "cache"))
    driver = CentralDriver(layout, central_settings(empty_db_url, layout))
    with pytest.raises(DriverConfigError, match=f"revision 0001, this imagecache needs {head_revision()}: run "
                                                "`imagecache db upgrade`"):
        driver.configure()
    driver.close()


def test_upgrading_from_0001_keeps_every_row_and_puts_old_nodes_in_the_default_site(empty_db_url, tmp_path) -> None:
    _at_0001_with_rows(empty_db_url)
    engine = engine_for(empty_db_url)
    try:
        before, after = upgrade(engine)
        assert (before.current, after.current) == ("0001", head_revision()) and after.at_head
        with engine.connect() as connection:
            assert connection.execute(text("SELECT url, site FROM nodes")).all() == [("http://old:9292", "default")]
            assert connection.execute(text("SELECT image_id, size, hits FROM cached_images")).all() == [
                (IMAGE, 42, 3)
            ]
            assert connection.execute(text("SELECT count(*) FROM queued_images")).scalar_one() == 1
            for table in ("fills", "cluster_fills", "peer_suspects"):
                assert connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0
        # The upgraded database serves the old node as before, and the new tables work.
        layout = CacheLayout(str(tmp_path / "cache"))
        layout.ensure()
        driver = CentralDriver(layout, central_settings(empty_db_url, layout, node_url="http://old:9292",
                                                        node_site="eu-1"))
        driver.configure()
        try:
            assert driver.get(IMAGE).hits == 3 and driver.queued() == [IMAGE]
            driver.heartbeat()
            assert driver.claim_cluster_fill(IMAGE) is True
            with engine.connect() as connection:
                assert connection.execute(text("SELECT site FROM nodes")).scalar_one() == "eu-1"
        finally:
            driver.close()
    finally:
        engine.dispose()


def test_the_indexes_the_queries_need_are_there(db_url) -> None:
    engine = engine_for(db_url)
    try:
        with engine.connect() as connection:
            names = set(connection.execute(text(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
            )).scalars())
            assert schema_state(connection).at_head
    finally:
        engine.dispose()
    assert {"fills_pkey", "fills_image_id", "cluster_fills_pkey", "cluster_fills_node_id",
            "peer_suspects_pkey", "peer_suspects_suspect_id"} <= names


def test_the_sql_for_a_dba_includes_0002(empty_db_url) -> None:
    out = io.StringIO()
    upgrade_sql(database_url(empty_db_url), out)
    sql = out.getvalue()
    assert "ALTER TABLE nodes ADD COLUMN site TEXT DEFAULT 'default' NOT NULL" in sql
    assert "CREATE TABLE fills" in sql and "CREATE TABLE cluster_fills" in sql and "CREATE TABLE peer_suspects" in sql


# -- 0003: pinned images --------------------------------------------------------------------------


def _at_0002_with_rows(url: str) -> None:
    """A database as 0002 left it, serving a node with a record, a queue and a fill in progress."""
    engine = engine_for(url)
    try:
        upgrade(engine, "0002")
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO nodes (url, last_seen, site) VALUES ('http://old:9292', now(), 'eu')"))
            connection.execute(text(
                "INSERT INTO cached_images (node_id, image_id, size, hits, last_accessed, last_modified) "
                f"SELECT id, '{IMAGE}', 42, 3, 1.0, 1.0 FROM nodes"
            ))
            connection.execute(text(f"INSERT INTO queued_images (node_id, image_id) SELECT id, '{IMAGE}' FROM nodes"))
            connection.execute(text(f"INSERT INTO fills (node_id, image_id, size) SELECT id, '{IMAGE}', 42 FROM nodes"))
    finally:
        engine.dispose()


def test_a_node_refuses_a_database_still_at_0002(empty_db_url, tmp_path) -> None:
    _at_0002_with_rows(empty_db_url)
    layout = CacheLayout(str(tmp_path / "cache"))
    driver = CentralDriver(layout, central_settings(empty_db_url, layout))
    with pytest.raises(DriverConfigError, match="revision 0002, this imagecache needs 0003: run `imagecache db"):
        driver.configure()
    driver.close()


def test_upgrading_from_0002_keeps_every_row_and_starts_with_no_pins(empty_db_url, tmp_path) -> None:
    _at_0002_with_rows(empty_db_url)
    engine = engine_for(empty_db_url)
    try:
        before, after = upgrade(engine)
        assert (before.current, after.current) == ("0002", "0003") and after.at_head
        with engine.connect() as connection:
            assert connection.execute(text("SELECT url, site FROM nodes")).all() == [("http://old:9292", "eu")]
            assert connection.execute(text("SELECT image_id, hits FROM cached_images")).all() == [(IMAGE, 3)]
            assert connection.execute(text("SELECT count(*) FROM fills")).scalar_one() == 1
            assert connection.execute(text("SELECT count(*) FROM pinned_images")).scalar_one() == 0
        layout = CacheLayout(str(tmp_path / "cache"))
        layout.ensure()
        driver = CentralDriver(layout, central_settings(empty_db_url, layout, node_url="http://old:9292"))
        driver.configure()
        try:
            assert driver.get(IMAGE).hits == 3 and driver.queued() == [IMAGE]
            assert driver.pin(IMAGE, "manual") is True
            assert driver.pins() == {IMAGE: "manual"}
        finally:
            driver.close()
        # A node forgotten takes its pins with it, as its other rows.
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM nodes"))
            assert connection.execute(text("SELECT count(*) FROM pinned_images")).scalar_one() == 0
    finally:
        engine.dispose()


def test_the_sql_for_a_dba_includes_0003(empty_db_url) -> None:
    out = io.StringIO()
    upgrade_sql(database_url(empty_db_url), out)
    assert "CREATE TABLE pinned_images" in out.getvalue()
