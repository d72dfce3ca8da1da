"""Schema revisions of the central index: where the database is, and bringing it to head.

Alembic runs from the migrations inside this package (``imagecache.db:migrations``),
never from an ``alembic.ini``.  An upgrade runs in one transaction (PostgreSQL
has transactional DDL) under an advisory lock, so two operators upgrading at
once take turns instead of racing, and a failed migration leaves nothing
half done.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TextIO

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, Engine, func, select

from imagecache.db.engine import shown

SCRIPT_LOCATION = "imagecache.db:migrations"
#: The advisory lock every upgrade takes (any stable 63-bit number).
UPGRADE_LOCK = zlib.crc32(b"imagecache db upgrade")


class SchemaError(RuntimeError):
    """The database's schema is one this imagecache cannot upgrade (newer than its code)."""


def alembic_config(url: URL | None = None, output: TextIO | None = None) -> Config:
    """Alembic's configuration, built in code: the packaged migrations, and ``url`` if given.

    ``output`` receives the SQL of an offline (``sql=True``) run.
    """
    config = Config(output_buffer=output)
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if url is not None:
        # ConfigParser interpolates '%': a percent-encoded URL must be escaped.
        config.set_main_option("sqlalchemy.url", url.render_as_string(hide_password=False).replace("%", "%%"))
    return config


def head_revision() -> str:
    """The revision this imagecache's code expects."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the packaged migrations have no head"
    return head


def known_revisions() -> set[str]:
    return {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


@dataclass(frozen=True)
class SchemaState:
    """Where a database's schema is, compared with this code."""

    current: str | None
    head: str
    known: bool

    @property
    def at_head(self) -> bool:
        return self.current == self.head

    def problem(self, where: str) -> str | None:
        """What an operator must do before a node can use the database; None when nothing."""
        if self.at_head:
            return None
        if self.current is None:
            return f"the central index at {where} has no schema yet: run `imagecache db upgrade`"
        if not self.known:
            return (
                f"the central index at {where} is at schema revision {self.current}, which this "
                f"imagecache does not know (it expects {self.head}): upgrade imagecache on this node"
            )
        return (
            f"the central index at {where} is at schema revision {self.current}, this imagecache "
            f"needs {self.head}: run `imagecache db upgrade`"
        )


def schema_state(connection: Connection) -> SchemaState:
    current = MigrationContext.configure(connection).get_current_revision()
    return SchemaState(current, head_revision(), current is None or current in known_revisions())


def upgrade(engine: Engine, target: str = "head") -> tuple[SchemaState, SchemaState]:
    """Bring the schema to head (or to ``target``, for tests of a later migration); the states before and after."""
    with engine.begin() as connection:
        connection.execute(select(func.pg_advisory_xact_lock(UPGRADE_LOCK)))
        before = schema_state(connection)
        if before.current is not None and not before.known:
            raise SchemaError(before.problem(shown(engine.url)))
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, target)
        after = schema_state(connection)
    return before, after


def upgrade_sql(url: URL, out: TextIO) -> None:
    """Write the SQL of a full upgrade to ``out`` instead of running it (for a DBA to review)."""
    command.upgrade(alembic_config(url, output=out), "head", sql=True)
