"""The PostgreSQL the central index's tests use, and a schema of their own for each.

``IMAGECACHE_TEST_DB_URL`` names the server (default: the local one, as
``postgres``, database ``test``).  When nobody answers there, tests skip with
the reason, except under ``CI=true``, where they fail: CI must never pass
by skipping the central index.

Every test (or module) works in a scratch schema, ``ictest_<random>``, made
the connection's ``search_path`` through the URL (libpq's ``options``) and
dropped with everything in it afterwards, so tests never see each other's
rows and leave nothing behind.
"""

from __future__ import annotations

import contextlib
import functools
import os
import uuid
from collections.abc import Iterator

from sqlalchemy import Engine, create_engine, text, update
from sqlalchemy.exc import SQLAlchemyError

from imagecache import Settings
from imagecache.cache.drivers.central import CentralDriver
from imagecache.cache.layout import CacheLayout
from imagecache.db.engine import database_url, make_engine, reason
from imagecache.db.migrate import upgrade
from imagecache.db.schema import nodes
from tests.support.ci import skip_unless_ci

DEFAULT_TEST_DB_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def base_url() -> str:
    return os.environ.get("IMAGECACHE_TEST_DB_URL") or DEFAULT_TEST_DB_URL


@functools.cache
def _probe(url: str) -> str | None:
    """None when PostgreSQL answers at ``url``, else why not (asked once per process)."""
    engine = create_engine(database_url(url), connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return reason(exc)
    finally:
        engine.dispose()
    return None


def require_postgres() -> str:
    """The test database's URL; skips (fails under CI=true) when it does not answer."""
    url = base_url()
    problem = _probe(url)
    if problem is not None:
        skip_unless_ci(f"no PostgreSQL at IMAGECACHE_TEST_DB_URL={url}: {problem}", "the central index tests")
    return url


def with_schema(url: str, schema: str) -> str:
    """``url`` with ``schema`` as the connection's search_path."""
    parsed = database_url(url)
    return parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


@contextlib.contextmanager
def scratch_schema(*, migrated: bool = True) -> Iterator[str]:
    """A URL whose connections live in a fresh schema (at head unless ``migrated=False``); dropped after."""
    base = require_postgres()
    schema = f"ictest_{uuid.uuid4().hex[:12]}"
    admin = create_engine(database_url(base))
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = with_schema(base, schema)
        if migrated:
            migrate(url)
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def migrate(url: str) -> None:
    engine = make_engine(database_url(url), pool_size=1, max_overflow=0)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def engine_for(url: str) -> Engine:
    """A small engine for tests that look at the tables directly."""
    return make_engine(database_url(url), pool_size=2, max_overflow=2)


def set_last_seen(db_url: str, node_url: str, seconds_ago: float | None) -> None:
    """Move a node's last heartbeat into the past, by the database's clock (None: never seen)."""
    value = None if seconds_ago is None else text(f"now() - interval '{seconds_ago} seconds'")
    engine = engine_for(db_url)
    with engine.begin() as connection:
        connection.execute(update(nodes).where(nodes.c.url == node_url).values(last_seen=value))
    engine.dispose()


def table(db_url: str, name: str) -> list[tuple[object, ...]]:
    """Every row of table ``name``, as tuples."""
    engine = engine_for(db_url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(f"SELECT * FROM {name}"))]
    finally:
        engine.dispose()


def central_settings(url: str, layout: CacheLayout, **options: object) -> Settings:
    return Settings(
        data_dir=os.path.dirname(layout.root),
        image_cache_dir=layout.root,
        image_cache_driver="central",
        db_url=url,
        **options,  # type: ignore[arg-type]
    )


class ScratchCentralDriver(CentralDriver):
    """A central driver in a schema of its own, dropped when the driver is closed (tests only)."""

    def __init__(self, layout: CacheLayout) -> None:
        self._schema = scratch_schema()
        url = self._schema.__enter__()
        super().__init__(layout, central_settings(url, layout, node_url=f"http://node-{uuid.uuid4().hex[:8]}:9292"))

    def close(self) -> None:
        super().close()
        self._schema.__exit__(None, None, None)


def central_contract_driver(layout: CacheLayout) -> CentralDriver:
    """DRIVER_FACTORIES' entry for the central driver."""
    return ScratchCentralDriver(layout)
