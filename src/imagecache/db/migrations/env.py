"""Alembic's environment for the central index.

Run by :mod:`imagecache.db.migrate` (``imagecache db upgrade``), which hands
over a connection already inside its transaction and advisory lock; offline
(``sql=True``) it only needs the URL's dialect.  No ``target_metadata``:
every migration writes its own DDL.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, pool

config = context.config


def run_on(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
elif (shared := config.attributes.get("connection")) is not None:
    run_on(shared)
else:  # a developer's own `alembic` run with sqlalchemy.url set
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool)
    with engine.connect() as connection:
        run_on(connection)
