"""Peer fill on the central index: several nodes (drivers) in one scratch schema, as docs/peer-fill.md says.

Each driver is a node with a ``node_url`` and ``node_site`` of its own; the
database is the real PostgreSQL, its clock the one that decides liveness.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import select, text

from imagecache.cache.drivers.base import CachedImage, FleetEntry, PeerSource
from imagecache.cache.drivers.central import CentralDriver, CentralIndexError
from imagecache.cache.fill import FillWriter
from imagecache.cache.verify_plan import VerifyPlan
from imagecache.db.schema import cluster_fills, fills, nodes
from tests.support.waiting import wait_until

from .pg import engine_for, set_last_seen, table

MakeDriver = Callable[..., CentralDriver]


def new_id() -> str:
    return str(uuid.uuid4())


def node(make_driver: MakeDriver, name: str, site: str = "default", **options: object) -> CentralDriver:
    """A live node ``http://<name>:9292`` in ``site``."""
    driver = make_driver(f"http://{name}:9292", node_site=site, **options)
    driver.heartbeat()
    return driver


def holds(driver: CentralDriver, image_id: str, size: int) -> None:
    driver.add(CachedImage(image_id, size, 0, 1.0, 1.0))


def fills_at(driver: CentralDriver, image_id: str, size: int | None, nbytes: int, *, from_origin: bool = True) -> None:
    """``driver`` is filling ``image_id`` and has ``nbytes`` of it (its progress written at once);
    ``from_origin``: it holds the cluster's claim, as the one node reading the origin does."""
    driver.peers.progress.interval = 0.0
    driver.fill_started(image_id, size)
    if from_origin:
        assert driver.claim_cluster_fill(image_id)
    if nbytes:
        driver.fill_progress(image_id, nbytes)
        wait_until(lambda: _bytes_of(driver, image_id) == nbytes, f"{driver.node_url}'s progress at {nbytes}")


def _bytes_of(driver: CentralDriver, image_id: str) -> int | None:
    with driver.engine().connect() as connection:
        return connection.execute(
            select(fills.c.bytes).join(nodes, nodes.c.id == fills.c.node_id)
            .where(nodes.c.url == driver.node_url, fills.c.image_id == image_id)
        ).scalar_one_or_none()


def urls(sources: list[PeerSource]) -> list[str]:
    return [source.url.split("//")[1].split(":")[0] for source in sources]


# -- peer_sources -------------------------------------------------------------------------------


def test_same_site_first_then_holders_before_fillers_then_most_bytes(make_driver) -> None:
    me = node(make_driver, "me", "eu")
    image_id = new_id()
    near_holder, near_small = (node(make_driver, n, "eu") for n in ("near-holder", "near-small"))
    far_holder, far_filler = node(make_driver, "far-holder", "us"), node(make_driver, "far-filler", "us")
    near_big = node(make_driver, "near-big", "eu")
    holds(near_holder, image_id, 1000)
    holds(far_holder, image_id, 1000)
    holds(near_small, image_id, 100)
    fills_at(near_big, image_id, 1000, 600)  # the cluster's origin reader
    assert me.peer_sources(image_id) == [
        PeerSource("http://near-holder:9292", "eu", False, 1000, 1000),
        PeerSource("http://near-small:9292", "eu", False, 100, 100),
        PeerSource("http://near-big:9292", "eu", True, 1000, 600),
        PeerSource("http://far-holder:9292", "us", False, 1000, 1000),
    ]
    fills_at(far_filler, image_id, None, 900, from_origin=False)
    # Another node sees the same peers from its own site, without itself.
    assert urls(far_holder.peer_sources(image_id)) == ["near-holder", "near-small", "near-big"]
    assert me.peer_sources(new_id()) == []


def test_a_node_filling_from_a_peer_is_no_peer_itself(make_driver) -> None:
    """Only the origin reader's fill is offered: two nodes that missed at once must not wait on each other."""
    me, origin_reader, follower = node(make_driver, "me"), node(make_driver, "origin-reader"), node(make_driver, "f")
    image_id = new_id()
    fills_at(follower, image_id, 10, 5, from_origin=False)
    assert me.peer_sources(image_id) == []
    fills_at(origin_reader, image_id, 10, 3)
    assert urls(me.peer_sources(image_id)) == ["origin-reader"]


def test_a_node_is_never_its_own_peer_and_a_holder_that_also_fills_is_listed_once(make_driver) -> None:
    me, other = node(make_driver, "me"), node(make_driver, "other")
    image_id = new_id()
    holds(me, image_id, 10)
    fills_at(me, image_id, 10, 5)
    assert me.peer_sources(image_id) == []
    assert other.peer_sources(image_id) == [PeerSource("http://me:9292", "default", False, 10, 10)]


def test_stale_and_never_seen_nodes_are_no_peers(make_driver, db_url) -> None:
    me = node(make_driver, "me", node_stale_after=60)
    stale, never = node(make_driver, "stale", node_stale_after=60), make_driver("http://never:9292")
    image_id = new_id()
    holds(stale, image_id, 10)
    fills_at(never, image_id, 10, 0)
    set_last_seen(db_url, stale.node_url, 61)
    assert me.peer_sources(image_id) == []
    set_last_seen(db_url, stale.node_url, 30)
    set_last_seen(db_url, never.node_url, 0)  # heard from (a heartbeat would also tidy its lockless fill away)
    assert urls(me.peer_sources(image_id)) == ["stale", "never"]


def test_a_suspect_is_no_peer_of_its_reporter_until_its_time_is_up(make_driver, db_url) -> None:
    me, liar, other = node(make_driver, "me"), node(make_driver, "liar"), node(make_driver, "other")
    image_id = new_id()
    holds(liar, image_id, 10)
    holds(other, image_id, 10)
    me.mark_suspect("http://liar:9292/", 600)
    assert urls(me.peer_sources(image_id)) == ["other"]
    assert "liar" in urls(other.peer_sources(image_id))  # only its reporter stops reading from it
    me.mark_suspect("http://liar:9292", 1)  # a shorter mark never shortens one in force
    assert urls(me.peer_sources(image_id)) == ["other"]
    engine = engine_for(db_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE peer_suspects SET until = now() - interval '1 second'"))
    engine.dispose()
    assert sorted(urls(me.peer_sources(image_id))) == ["liar", "other"]
    me.heartbeat()  # expired marks are tidied away
    assert table(db_url, "peer_suspects") == []


def test_marking_an_unknown_peer_is_a_log_line(make_driver, caplog: pytest.LogCaptureFixture) -> None:
    me = node(make_driver, "me")
    with caplog.at_level(logging.WARNING):
        me.mark_suspect("http://nobody:9292", 600)
    assert "does not know it" in caplog.text


# -- the cluster's one claim --------------------------------------------------------------------


def test_one_claim_per_image_until_its_fill_ends(make_driver, db_url) -> None:
    a, b = node(make_driver, "a"), node(make_driver, "b")
    image_id, other_image = new_id(), new_id()
    assert a.claim_cluster_fill(image_id) is True
    assert b.claim_cluster_fill(image_id) is False
    assert a.claim_cluster_fill(image_id) is True  # its own claim again (a second fill after a bad peer)
    assert b.claim_cluster_fill(other_image) is True  # claims are per image
    b.fill_ended(image_id)  # not b's claim: nothing happens to a's
    assert b.claim_cluster_fill(image_id) is False
    a.fill_ended(image_id)
    assert b.claim_cluster_fill(image_id) is True
    assert {row[0] for row in table(db_url, "cluster_fills")} == {image_id, other_image}


def test_a_stale_or_never_seen_holder_blocks_no_claim(make_driver, db_url) -> None:
    a, b = node(make_driver, "a", node_stale_after=60), node(make_driver, "b", node_stale_after=60)
    image_id = new_id()
    assert a.claim_cluster_fill(image_id) is True
    set_last_seen(db_url, a.node_url, 61)
    assert b.claim_cluster_fill(image_id) is True  # taken over from the stale node
    a.heartbeat()  # back, but b holds it now
    assert a.claim_cluster_fill(image_id) is False
    never = make_driver("http://never:9292")
    fresh = new_id()
    assert never.claim_cluster_fill(fresh) is True
    assert a.claim_cluster_fill(fresh) is True


# -- this node's fills --------------------------------------------------------------------------


def test_fill_ended_deletes_this_nodes_fill_and_claim_only(make_driver, db_url) -> None:
    a, b = node(make_driver, "a"), node(make_driver, "b")
    image_id = new_id()
    for driver in (a, b):
        driver.fill_started(image_id, 100)
    assert a.claim_cluster_fill(image_id)
    assert urls(b.peer_sources(image_id)) == ["a"]
    a.fill_ended(image_id)
    assert urls(b.peer_sources(image_id)) == []
    assert table(db_url, "cluster_fills") == []
    assert len(table(db_url, "fills")) == 1, "b's fill is untouched"
    assert b.claim_cluster_fill(image_id)  # b reads the origin now: it is a's peer
    assert urls(a.peer_sources(image_id)) == ["b"]
    a.fill_ended(image_id)  # twice is harmless


def test_a_new_fill_of_an_image_starts_from_zero(make_driver) -> None:
    a, b = node(make_driver, "a"), node(make_driver, "b")
    image_id = new_id()
    fills_at(a, image_id, 100, 70)
    a.fill_started(image_id, 200)  # the image's next fill on a (say, after a failed one)
    assert b.peer_sources(image_id) == [PeerSource("http://a:9292", "default", True, 200, 0)]


def test_progress_is_written_at_most_once_an_interval_and_its_latest_figure_lands(make_driver) -> None:
    a = node(make_driver, "a")
    writer = a.peers.progress
    writer.interval = 0.25
    image_id = new_id()
    a.fill_started(image_id, None)
    started = time.monotonic()
    nbytes = 0
    while time.monotonic() - started < 1.0:
        nbytes += 4096
        a.fill_progress(image_id, nbytes)  # the fill thread's call: after every chunk
    elapsed = time.monotonic() - started
    # The row written at the start counts: every later write waits an interval after the one before.
    assert 1 <= writer.writes <= elapsed / writer.interval + 1
    wait_until(lambda: _bytes_of(a, image_id) == nbytes, "the latest figure in the index")
    assert nbytes > 1000 * writer.writes  # thousands of calls, a handful of writes


def test_the_heartbeat_drops_fills_and_claims_no_writer_here_holds(make_driver, db_url) -> None:
    a, b = node(make_driver, "a"), node(make_driver, "b")
    running, crashed = new_id(), new_id()
    writer = FillWriter.acquire(a.peers.layout, running, VerifyPlan(None, ()))  # a live fill: its writer's lock is held
    assert writer is not None
    try:
        for image_id in (running, crashed):
            a.fill_started(image_id, 10)
            assert a.claim_cluster_fill(image_id)
        # crashed's worker died without fill_ended: its rows stay until a's next heartbeat.
        assert sorted(urls(b.peer_sources(crashed))) == ["a"] and not b.claim_cluster_fill(crashed)
        a.heartbeat()
        assert urls(b.peer_sources(crashed)) == [] and b.claim_cluster_fill(crashed)
        assert urls(b.peer_sources(running)) == ["a"] and not b.claim_cluster_fill(running)
    finally:
        writer.discard()
    a.heartbeat()
    assert urls(b.peer_sources(running)) == []
    assert [row[0] for row in table(db_url, "cluster_fills")] == [crashed]  # b's claim stays


def test_the_heartbeat_records_the_nodes_site(make_driver, db_url) -> None:
    node(make_driver, "a", "eu-west")
    engine = engine_for(db_url)
    with engine.connect() as connection:
        assert connection.execute(select(nodes.c.site).where(nodes.c.url == "http://a:9292")).scalar_one() == "eu-west"
    engine.dispose()


# -- the fleet ----------------------------------------------------------------------------------


def test_the_fleet_lists_every_nodes_cached_and_filling_images(make_driver, db_url) -> None:
    a, b = node(make_driver, "a", "eu", node_stale_after=60), node(make_driver, "b", "us", node_stale_after=60)
    first, second = sorted([new_id(), new_id()])
    holds(a, first, 10)
    fills_at(b, first, 10, 4)
    fills_at(a, second, None, 0)
    set_last_seen(db_url, b.node_url, 61)
    assert a.fleet() == b.fleet() == [
        FleetEntry(first, "http://a:9292", "eu", False, 10, 10, True),
        FleetEntry(first, "http://b:9292", "us", True, 10, 4, False),
        FleetEntry(second, "http://a:9292", "eu", True, None, 0, True),
    ]


# -- a database that fails ----------------------------------------------------------------------


def test_a_failing_index_means_no_peers_and_a_claim_won(make_driver, caplog: pytest.LogCaptureFixture) -> None:
    driver = node(make_driver, "a")
    image_id = new_id()
    driver.close()
    driver.url = driver.url.set(port=1)
    with caplog.at_level(logging.WARNING):
        assert driver.peer_sources(image_id) == []
        assert driver.claim_cluster_fill(image_id) is True  # at worst a second read of the origin
        driver.fill_started(image_id, 10)
        driver.fill_progress(image_id, 5)
        driver.fill_ended(image_id)
        driver.mark_suspect("http://b:9292", 600)
        driver.peers.tidy()
    assert len(caplog.records) >= 6
    assert all(len(record.getMessage().splitlines()) == 1 for record in caplog.records)
    with pytest.raises(CentralIndexError):
        driver.fleet()  # an operator asked: the failure is the answer


def test_the_rows_go_when_a_node_is_forgotten(make_driver, db_url) -> None:
    from imagecache.db.admin import forget_node

    a, b = node(make_driver, "a"), node(make_driver, "b")
    image_id = new_id()
    a.fill_started(image_id, 10)
    assert a.claim_cluster_fill(image_id)
    b.mark_suspect(a.node_url, 600)
    a.mark_suspect(b.node_url, 600)
    engine = engine_for(db_url)
    assert forget_node(engine, a.node_url) == 0
    with engine.connect() as connection:
        assert connection.execute(select(cluster_fills)).all() == []
    engine.dispose()
    assert table(db_url, "fills") == [] and table(db_url, "peer_suspects") == []
