"""``imagecache db``: upgrade, check, nodes and forget-node against a scratch schema."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from imagecache.cache.drivers.base import CachedImage, FleetEntry
from imagecache.cli import main
from imagecache.db.engine import database_url
from imagecache.db.migrate import head_revision, schema_state, upgrade

from .pg import engine_for


def db(*args: str, answers: str | None = None, env: dict[str, str] | None = None) -> Result:
    """``imagecache db ARGS``; ``answers`` is what the user types at its prompts."""
    return CliRunner().invoke(main, ["db", *args], input=answers, env=env, catch_exceptions=False)


def test_upgrade_creates_the_schema_then_has_nothing_to_do(empty_db_url) -> None:
    assert db("check", "--db-url", empty_db_url).exit_code == 1
    first = db("upgrade", "--db-url", empty_db_url)
    assert first.exit_code == 0, first.output
    assert f"from an empty schema to revision {head_revision()}" in first.stdout
    again = db("upgrade", "--db-url", empty_db_url)
    assert again.exit_code == 0 and "already at revision" in again.stdout
    checked = db("check", "--db-url", empty_db_url)
    assert checked.exit_code == 0 and "at this imagecache's revision" in checked.stdout


def test_upgrades_at_once_take_turns(empty_db_url) -> None:
    engines = [engine_for(empty_db_url) for _ in range(4)]
    errors: list[BaseException] = []

    def run(engine) -> None:  # type: ignore[no-untyped-def]
        try:
            upgrade(engine)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    with engines[0].connect() as connection:
        assert schema_state(connection).at_head
    for engine in engines:
        engine.dispose()


def test_the_url_may_come_from_a_config_file_or_the_environment(empty_db_url, tmp_path: Path) -> None:
    config = tmp_path / "imagecache.toml"
    config.write_text(f"db_url = '{empty_db_url}'\n")
    assert db("upgrade", "--config", str(config)).exit_code == 0
    assert db("check", env={"IMAGECACHE_DB_URL": empty_db_url}).exit_code == 0


def test_sql_prints_the_upgrade_without_running_it(empty_db_url) -> None:
    result = db("upgrade", "--sql", "--db-url", empty_db_url)
    assert result.exit_code == 0
    assert "CREATE TABLE nodes" in result.stdout and "CREATE TABLE cached_images" in result.stdout
    assert db("check", "--db-url", empty_db_url).exit_code == 1  # nothing was run


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        ([], 2, "no database: give --db-url"),
        (["--db-url", "sqlite:///x.db"], 2, "needs PostgreSQL"),
        (["--db-url", "postgresql://nobody@127.0.0.1:1/none"], 1, "127.0.0.1:1"),
    ],
)
@pytest.mark.parametrize("command", ["upgrade", "check", "nodes", "images"])
def test_problems_are_one_line(command: str, args: list[str], code: int, fragment: str) -> None:
    result = db(command, *args, env={"IMAGECACHE_DB_URL": ""})
    assert result.exit_code == code
    assert len(result.stderr.strip().splitlines()) == 1 and fragment in result.stderr


def test_commands_on_a_schema_not_at_head_say_to_upgrade(empty_db_url) -> None:
    for args in (["nodes"], ["images"], ["forget-node", "http://a:9292", "-f"]):
        result = db(*args, "--db-url", empty_db_url)
        assert result.exit_code == 1 and "imagecache db upgrade" in result.stderr


def test_nodes_lists_states_and_what_each_node_caches(make_driver, db_url) -> None:
    from imagecache.cache.drivers.base import CachedImage

    live = make_driver("http://live:9292", node_site="dcn-west")
    quiet = make_driver("http://quiet:9292")
    live.heartbeat()
    live.add(CachedImage("11111111-1111-4111-8111-111111111111", 3 << 20, 0, 1.0, 1.0))
    live.add(CachedImage("22222222-2222-4222-8222-222222222222", 1 << 20, 0, 1.0, 1.0))
    quiet.add(CachedImage("11111111-1111-4111-8111-111111111111", 3 << 20, 0, 1.0, 1.0))
    listing = db("nodes", "--db-url", db_url, "--json")
    assert listing.exit_code == 0
    assert [(n["url"], n["site"], n["state"], n["cached_images"], n["size"])
            for n in json.loads(listing.stdout)] == [
        ("http://live:9292", "dcn-west", "live", 2, 4 << 20),
        ("http://quiet:9292", "default", "never", 1, 3 << 20),
    ]
    table = db("nodes", "--db-url", db_url)
    assert "http://live:9292" in table.stdout and "4.0 MiB" in table.stdout and "never" in table.stdout
    assert "dcn-west" in table.stdout
    engine = engine_for(db_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE nodes SET last_seen = now() - interval '1 hour' WHERE last_seen IS NOT NULL")
    engine.dispose()
    assert {n["state"] for n in json.loads(db("nodes", "--db-url", db_url, "--json").stdout)} == {"stale", "never"}


def test_no_nodes(db_url) -> None:
    assert db("nodes", "--db-url", db_url).stdout.strip() == "No nodes."


def test_forget_node_asks_first_and_deletes_its_rows(make_driver, db_url) -> None:
    from imagecache.cache.drivers.base import CachedImage

    gone = make_driver("http://gone:9292")
    gone.add(CachedImage("11111111-1111-4111-8111-111111111111", 10, 0, 1.0, 1.0))
    gone.queue("22222222-2222-4222-8222-222222222222")
    declined = db("forget-node", "http://gone:9292", "--db-url", db_url, answers="n\n")
    assert declined.exit_code == 1 and "nothing deleted" in declined.stderr
    done = db("forget-node", "http://gone:9292/", "--db-url", db_url, "--force")
    assert done.exit_code == 0 and "its 1 cached image record" in done.stdout
    engine = engine_for(db_url)
    with engine.connect() as connection:
        counts = [connection.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar_one()
                  for t in ("nodes", "cached_images", "queued_images")]
    engine.dispose()
    assert counts == [0, 0, 0]
    unknown = db("forget-node", "http://gone:9292", "--db-url", db_url, "-f")
    assert unknown.exit_code == 1 and "no node" in unknown.stderr


def test_database_url_keeps_the_schema_option() -> None:
    url = database_url("postgresql://u@h/db?options=-csearch_path%3Dic")
    assert url.query == {"options": "-csearch_path=ic"}


# -- images: every node's copies, from the database --------------------------------------------

FIRST, SECOND = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"


def fleet_tables_here(url: str) -> bool:
    """Whether the head schema has the peer-fill facts (``nodes.site``, ``fills``) and the
    central driver reads them: the index's part of peer fill (docs/peer-fill.md, migration 0002)."""
    from imagecache.cache.drivers.base import Driver
    from imagecache.cache.drivers.central import CentralDriver

    engine = engine_for(url)
    with engine.connect() as connection:
        found = connection.exec_driver_sql(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND ((table_name = 'nodes' AND column_name = 'site') OR (table_name = 'fills' AND column_name = 'bytes'))"
        ).scalar_one()
    engine.dispose()
    return found == 2 and CentralDriver.fleet is not Driver.fleet


@pytest.fixture
def fake_fleet(monkeypatch: pytest.MonkeyPatch) -> list[FleetEntry]:
    """The central driver's fleet query, faked: the index's peer-fill tables and their query are
    built beside this command and may not be in this tree yet.  The test below this one reads
    the real tables whenever they are here."""
    from imagecache.cache.drivers.central import CentralDriver

    entries: list[FleetEntry] = []
    monkeypatch.setattr(CentralDriver, "fleet", lambda self: list(entries))
    return entries


def test_images_is_the_fleet_view_with_this_configurations_site_first(db_url, fake_fleet, tmp_path: Path) -> None:
    fake_fleet.extend([
        FleetEntry(SECOND, "http://c.west:9292", "west", True, None, 512, True),
        FleetEntry(FIRST, "http://a.east:9292", "east", False, 3 << 20, 3 << 20, True),
        FleetEntry(FIRST, "http://z.west:9292", "west", True, 3 << 20, 1 << 20, True),
        FleetEntry(FIRST, "http://b.west:9292", "west", False, 3 << 20, 3 << 20, False),
    ])
    config = tmp_path / "node.toml"
    config.write_text(f"db_url = '{db_url}'\nnode_site = 'west'\n")
    listing = db("images", "--config", str(config), "--json")
    assert listing.exit_code == 0, listing.output
    assert [(image["image_id"], [(n["url"], n["state"], n["bytes"], n["live"]) for n in image["nodes"]])
            for image in json.loads(listing.stdout)] == [
        (FIRST, [("http://b.west:9292", "cached", 3 << 20, False), ("http://z.west:9292", "filling", 1 << 20, True),
                 ("http://a.east:9292", "cached", 3 << 20, True)]),
        (SECOND, [("http://c.west:9292", "filling", 512, True)]),
    ]
    table = db("images", "--config", str(config))
    assert table.exit_code == 0 and table.stderr == ""
    assert [line.split() for line in table.stdout.splitlines()[2:]] == [
        [FIRST, "http://b.west:9292", "west", "stale", "cached", "3.0", "MiB"],
        [FIRST, "http://z.west:9292", "west", "live", "filling", "1.0", "MiB", "of", "3.0", "MiB", "(33", "%)"],
        [FIRST, "http://a.east:9292", "east", "live", "cached", "3.0", "MiB"],
        [SECOND, "http://c.west:9292", "west", "live", "filling", "512", "B", "of", "unknown", "size"],
    ]
    # Without a site of its own, the configuration is at site "default": east and west sort by URL.
    plain = json.loads(db("images", "--db-url", db_url, "--json").stdout)
    assert [n["url"] for n in plain[0]["nodes"]] == ["http://a.east:9292", "http://b.west:9292", "http://z.west:9292"]


def test_images_of_an_index_with_nothing_cached(db_url) -> None:
    empty = db("images", "--db-url", db_url)
    assert empty.exit_code == 0 and empty.stdout == "No image is cached or being filled on any node.\n"
    as_json = db("images", "--db-url", db_url, "--json")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) == []


def test_images_when_the_query_fails_is_one_line_and_exit_1(db_url, monkeypatch: pytest.MonkeyPatch) -> None:
    from imagecache.cache.drivers.central import CentralDriver, CentralIndexError

    def failing(self: CentralDriver) -> list[FleetEntry]:
        raise CentralIndexError("the central index at db.example failed: the query was cancelled")

    monkeypatch.setattr(CentralDriver, "fleet", failing)
    result = db("images", "--db-url", db_url, "--json")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == "Error: the central index at db.example failed: the query was cancelled\n"


def test_images_reads_what_the_nodes_wrote(make_driver, db_url) -> None:
    if not fleet_tables_here(db_url):
        pytest.skip("the index's peer-fill tables (nodes.site, fills) and CentralDriver.fleet are not in this tree")
    east, west = make_driver("http://east-1:9292", node_site="east"), make_driver("http://west-1:9292",
                                                                                   node_site="west")
    for node in (east, west):
        node.heartbeat()
    east.add(CachedImage(FIRST, 3 << 20, 0, 1.0, 1.0))
    west.fill_started(FIRST, 3 << 20)
    west.add(CachedImage(SECOND, 1 << 20, 0, 1.0, 1.0))
    engine = engine_for(db_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"UPDATE fills SET bytes = {1 << 20} WHERE image_id = '{FIRST}'")
        connection.exec_driver_sql("UPDATE nodes SET last_seen = now() - interval '1 hour' "
                                   "WHERE url = 'http://east-1:9292'")
    engine.dispose()
    listing = db("images", "--db-url", db_url, "--json", env={"IMAGECACHE_NODE_SITE": "west"})
    assert listing.exit_code == 0, listing.output
    assert json.loads(listing.stdout) == [
        {"image_id": FIRST, "nodes": [
            {"url": "http://west-1:9292", "site": "west", "state": "filling", "size": 3 << 20, "bytes": 1 << 20,
             "live": True},
            {"url": "http://east-1:9292", "site": "east", "state": "cached", "size": 3 << 20, "bytes": 3 << 20,
             "live": False},
        ]},
        {"image_id": SECOND, "nodes": [
            {"url": "http://west-1:9292", "site": "west", "state": "cached", "size": 1 << 20, "bytes": 1 << 20,
             "live": True},
        ]},
    ]
    # The command only reads: no node of its own joined the index.
    assert {r["url"] for r in json.loads(db("nodes", "--db-url", db_url, "--json").stdout)} == {
        "http://east-1:9292", "http://west-1:9292"}
