"""Database URLs and engines for the central index (PostgreSQL through psycopg 3).

Operators write ``postgresql://user@host/db`` as libpq and Glance do; the
driver part (``+psycopg``) is ours to add.  Any other database is refused:
the index relies on PostgreSQL's upserts, advisory locks and transactional
DDL.  A schema other than ``public`` is chosen with libpq's ``options``::

    postgresql://imagecache@db.example/glance?options=-csearch_path%3Dimagecache
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import URL, Engine, create_engine, make_url
from sqlalchemy.exc import ArgumentError, StatementError

#: Seconds to wait for the database to accept a connection.
CONNECT_TIMEOUT = 10
#: Connections per process kept open: gthread workers run 8 request threads
#: plus fills; more than this wait for a free one (up to POOL_TIMEOUT).
POOL_SIZE = 5
MAX_OVERFLOW = 10
POOL_TIMEOUT = 30
DRIVER = "postgresql+psycopg"
_ACCEPTED = ("postgresql", "postgres", "postgresql+psycopg")


class DatabaseURLError(ValueError):
    """A URL that names no usable PostgreSQL."""


def database_url(text: str) -> URL:
    """``text`` as a SQLAlchemy URL for psycopg 3; DatabaseURLError when it cannot be one."""
    try:
        url = make_url(text)
    except (ArgumentError, ValueError) as exc:
        raise DatabaseURLError(f"db_url {text!r} is not a database URL: {exc}") from None
    if url.drivername not in _ACCEPTED:
        raise DatabaseURLError(
            f"db_url must name PostgreSQL (postgresql://...), not {url.drivername!r}: "
            "the central index needs PostgreSQL"
        )
    return url.set(drivername=DRIVER)


def shown(url: URL) -> str:
    """The URL for messages and logs: never the password."""
    return url.render_as_string(hide_password=True)


def make_engine(url: URL, **options: Any) -> Engine:
    """An engine with a small pool that checks connections before use.

    ``pool_pre_ping`` lets a node survive a database restart: a dead pooled
    connection is replaced instead of failing the next request.
    """
    settings: dict[str, Any] = {
        "pool_pre_ping": True,
        "pool_size": POOL_SIZE,
        "max_overflow": MAX_OVERFLOW,
        "pool_timeout": POOL_TIMEOUT,
        "connect_args": {"connect_timeout": CONNECT_TIMEOUT, "application_name": "imagecache"},
    }
    settings.update(options)
    return create_engine(url, **settings)


def reason(exc: BaseException) -> str:
    """The database's own words for a failure, on one line (without SQLAlchemy's boilerplate)."""
    inner = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
    text = str(inner).strip() or type(inner).__name__
    return " ".join(text.split("\n")[0].split())
