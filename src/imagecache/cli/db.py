"""``imagecache db``: the central index's database, as ``glance-manage db`` is Glance's.

* ``upgrade`` brings the schema to this imagecache's head revision (nodes
  refuse to start until it has run: they never change the schema
  themselves); ``--sql`` prints the SQL instead, for a DBA to review.
* ``check`` says whether the schema is at head (exit 1 when not): for
  deployment scripts, before starting nodes.
* ``nodes`` lists every node with its state (live, stale, never seen) and
  what it caches; ``forget-node URL`` deletes a node that is gone for good,
  with its records and queue.
* ``images`` lists every image a node holds or is filling, with those
  nodes (the view ``GET /v2/cache/nodes`` answers), for an operator with
  no node to ask.

The database comes from ``--db-url``, or ``db_url`` in ``--config`` or
``IMAGECACHE_DB_URL``, as for ``imagecache serve``.  Exit status: 0 done,
1 the database failed or refused (or the schema is not at head, for
``check``), 2 usage (no URL, not PostgreSQL).  SQLAlchemy and Alembic are
imported only when a command runs.
"""

from __future__ import annotations

import contextlib
import datetime
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import click

from imagecache.cli._common import (
    CONFIG_HELP,
    UsageProblem,
    confirm_or_stop,
    human_size,
    print_json,
    print_table,
    settings_or_usage,
)
from imagecache.config import Settings

if TYPE_CHECKING:
    from sqlalchemy import URL, Engine

    from imagecache.cache.drivers.base import FleetEntry


def database_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Where the database is: ``--db-url``, or a settings file."""
    for option in reversed(
        [
            click.option("--db-url", metavar="URL",
                         help="The central index: postgresql://user@host/db (default: db_url from --config "
                              "or IMAGECACHE_DB_URL)."),
            click.option("--config", "config_file", type=click.Path(dir_okay=False), help=CONFIG_HELP),
        ]
    ):
        command = option(command)
    return command


def db_settings(config_file: str | None, db_url: str | None) -> Settings:
    """Settings as ``serve`` builds them; a database URL is required."""
    settings = settings_or_usage(config_file, {"db_url": db_url})
    if not settings.db_url:
        raise UsageProblem("no database: give --db-url, or db_url in --config or IMAGECACHE_DB_URL")
    return settings


def parsed_url(settings: Settings) -> URL:
    from imagecache.db.engine import DatabaseURLError, database_url

    assert settings.db_url is not None
    try:
        return database_url(settings.db_url)
    except DatabaseURLError as exc:
        raise UsageProblem(str(exc)) from None


@contextlib.contextmanager
def engine_for(settings: Settings) -> Iterator[Engine]:
    """An engine for one command; a database failure is one line and exit 1."""
    from sqlalchemy.exc import SQLAlchemyError

    from imagecache.db.engine import make_engine, reason, shown
    from imagecache.db.migrate import SchemaError

    url = parsed_url(settings)
    engine = make_engine(url, pool_size=1, max_overflow=0)
    try:
        yield engine
    except SQLAlchemyError as exc:
        raise click.ClickException(f"the central index at {shown(url)} failed: {reason(exc)}") from None
    except SchemaError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()


def require_head(engine: Engine) -> None:
    """Stop (exit 1) unless the schema is the one this code queries."""
    from imagecache.db.engine import shown
    from imagecache.db.migrate import schema_state

    with engine.connect() as connection:
        problem = schema_state(connection).problem(shown(engine.url))
    if problem is not None:
        raise click.ClickException(problem)


@click.group()
def db() -> None:
    """The central index's database (PostgreSQL): schema upgrades, nodes and their images."""


@db.command()
@database_options
@click.option("--sql", "as_sql", is_flag=True, help="Print the SQL of the upgrade instead of running it.")
def upgrade(config_file: str | None, db_url: str | None, as_sql: bool) -> None:
    """Bring the schema to this imagecache's revision (create it on an empty database).

    Run it once per database before starting nodes of a new version: nodes
    refuse to start on a schema that is not at head.  Safe to run again, and
    from several places at once (they take turns on a lock).
    """
    settings = db_settings(config_file, db_url)
    if as_sql:
        from imagecache.db.migrate import upgrade_sql

        upgrade_sql(parsed_url(settings), sys.stdout)
        return
    from imagecache.db.engine import shown
    from imagecache.db.migrate import upgrade as run_upgrade

    with engine_for(settings) as engine:
        before, after = run_upgrade(engine)
    where = shown(engine.url)
    if before.current == after.current:
        click.echo(f"The central index at {where} is already at revision {after.current}.")
    else:
        click.echo(f"Upgraded the central index at {where} from {before.current or 'an empty schema'} "
                   f"to revision {after.current}.")


@db.command()
@database_options
def check(config_file: str | None, db_url: str | None) -> None:
    """Exit 0 when the schema is at this imagecache's revision, 1 (saying what to do) when not."""
    from imagecache.db.engine import shown

    settings = db_settings(config_file, db_url)
    with engine_for(settings) as engine:
        require_head(engine)
    click.echo(f"The central index at {shown(engine.url)} is at this imagecache's revision.")


def _when(moment: datetime.datetime | None) -> str:
    return "never" if moment is None else moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


@db.command()
@database_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout, for scripts.")
def nodes(config_file: str | None, db_url: str | None, as_json: bool) -> None:
    """List the nodes: live, stale (silent for node_stale_after seconds) or never seen, and what each caches.

    Stale nodes are left out of GET /v2/cache/nodes/{id}; their records stay
    until the node comes back (and reconciles) or is forgotten (forget-node).
    """
    from imagecache.db.admin import list_nodes

    settings = db_settings(config_file, db_url)
    with engine_for(settings) as engine:
        require_head(engine)
        reports = list_nodes(engine, settings.node_stale_after)
    if as_json:
        print_json([
            {"url": r.url, "site": r.site, "state": r.state.value,
             "last_seen": r.last_seen.timestamp() if r.last_seen else None,
             "cached_images": r.images, "size": r.size}
            for r in reports
        ])
        return
    if not reports:
        click.echo("No nodes.")
        return
    print_table(
        [("Node reference URL", "left"), ("Site", "left"), ("State", "left"), ("Last seen", "left"),
         ("Images", "right"), ("Size", "right")],
        [(r.url, r.site, r.state.value, _when(r.last_seen), str(r.images), human_size(r.size)) for r in reports],
    )


def read_fleet(settings: Settings) -> list[FleetEntry]:
    """Every node's copies, by the central driver's own query (the one the nodes' route asks).

    The driver is only read through: it is not configured, so it registers
    no node of its own.  A database failure is one line and exit 1.
    """
    from imagecache.cache.drivers.central import CentralDriver
    from imagecache.cache.errors import CacheError
    from imagecache.cache.layout import CacheLayout

    driver = CentralDriver(CacheLayout(settings.image_cache_dir), settings)
    try:
        return driver.fleet()
    except CacheError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        driver.close()


@db.command()
@database_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout, for scripts.")
def images(config_file: str | None, db_url: str | None, as_json: bool) -> None:
    """List every image a node holds or is filling, with those nodes, their sites and states.

    What GET /v2/cache/nodes answers (imagecache manage list-cached
    --all-nodes), straight from the database: images by id, each image's
    nodes of this configuration's node_site first, then by URL; a fill in
    progress shows its bytes of the image's size; a node silent for
    node_stale_after seconds is "stale" (it serves nothing until it is back).
    """
    from imagecache.cli.fleet import show_fleet
    from imagecache.wsgi.fleet import fleet_view

    settings = db_settings(config_file, db_url)
    with engine_for(settings) as engine:
        require_head(engine)
    show_fleet(fleet_view(read_fleet(settings), settings.node_site), as_json)


@db.command("forget-node")
@click.argument("url")
@database_options
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
def forget_node(url: str, config_file: str | None, db_url: str | None, force: bool) -> None:
    """Delete a node that is gone for good, with its records and its queue.

    Its files are not touched (they are on its own disk).  A node that comes
    back registers again, and adopts its files at start.
    """
    from imagecache.db.admin import forget_node as run_forget

    settings = db_settings(config_file, db_url)
    with engine_for(settings) as engine:
        require_head(engine)
        if not force:
            confirm_or_stop(f"Forget node {url} and its records?")
        count = run_forget(engine, url.rstrip("/"))
    if count is None:
        raise click.ClickException(f"no node {url} in the central index")
    click.echo(f"Forgot node {url} and its {count} cached image record{'s' if count != 1 else ''}.")
