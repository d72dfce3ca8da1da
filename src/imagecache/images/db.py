"""Image metadata in SQLite: ``<data_dir>/images.db``, WAL mode.

One connection per thread, opened on first use and opened again in a forked
child (gunicorn pre-forks after the app may have been built), because a
SQLite connection must not cross a fork.  Read-modify-write changes run in
``BEGIN IMMEDIATE`` transactions, so concurrent requests in any thread or
worker process serialise on the database's write lock and never lose an
update.  Deleted ids are remembered, as in Glance, so an id is never reused
(a cache may still hold bytes under it).  A missing image or a taken id is
refused here (404, 409), where it is found out.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from imagecache.http.context import RequestContext
from imagecache.images.listing import ListQuery
from imagecache.images.model import Image, utcnow
from imagecache.images.refusals import conflict, not_found

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id               TEXT PRIMARY KEY,
    name             TEXT,
    status           TEXT NOT NULL,
    visibility       TEXT NOT NULL,
    protected        INTEGER NOT NULL,
    os_hidden        INTEGER NOT NULL,
    owner            TEXT,
    checksum         TEXT,
    os_hash_algo     TEXT,
    os_hash_value    TEXT,
    size             INTEGER,
    virtual_size     INTEGER,
    min_ram          INTEGER NOT NULL,
    min_disk         INTEGER NOT NULL,
    container_format TEXT,
    disk_format      TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    tags             TEXT NOT NULL,
    properties       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS images_by_created ON images (created_at, id);
CREATE INDEX IF NOT EXISTS images_by_owner ON images (owner);
CREATE TABLE IF NOT EXISTS deleted_images (
    id         TEXT PRIMARY KEY,
    deleted_at TEXT NOT NULL
);
"""

_COLUMNS = (
    "id",
    "name",
    "status",
    "visibility",
    "protected",
    "os_hidden",
    "owner",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "size",
    "virtual_size",
    "min_ram",
    "min_disk",
    "container_format",
    "disk_format",
    "created_at",
    "updated_at",
    "tags",
    "properties",
)
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM images"

#: How NULLs sort: as Glance does, like the column type's empty value.
_SORT_EXPRESSIONS = {
    "name": "COALESCE(name, '')",
    "status": "status",
    "container_format": "COALESCE(container_format, '')",
    "disk_format": "COALESCE(disk_format, '')",
    "size": "COALESCE(size, 0)",
    "id": "id",
    "created_at": "created_at",
    "updated_at": "updated_at",
}
_SORT_DEFAULTS: dict[str, Any] = {"name": "", "container_format": "", "disk_format": "", "size": 0}


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


#: How the columns that are not stored as they are go in and come out: (to SQL, from SQL).
_CODECS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "protected": (int, bool),
    "os_hidden": (int, bool),
    "created_at": (_timestamp, datetime.fromisoformat),
    "updated_at": (_timestamp, datetime.fromisoformat),
    "tags": (lambda tags: _json_text(list(tags)), lambda text: tuple(json.loads(text))),
    "properties": (lambda properties: _json_text(dict(properties)), json.loads),
}
_AS_IS = (lambda value: value, lambda value: value)


def _row_values(image: Image) -> tuple[Any, ...]:
    return tuple(_CODECS.get(column, _AS_IS)[0](getattr(image, column)) for column in _COLUMNS)


def _image(row: sqlite3.Row) -> Image:
    return Image(**{column: _CODECS.get(column, _AS_IS)[1](row[column]) for column in _COLUMNS})


def _stored(conn: sqlite3.Connection, image_id: str) -> Image:
    """The record of ``image_id`` as ``conn`` sees it; 404 when there is none."""
    row = conn.execute(f"{_SELECT} WHERE id = ?", (image_id,)).fetchone()
    if row is None:
        raise not_found(f"No image found with ID {image_id}")
    return _image(row)


def _sort_value(image: Image, key: str) -> Any:
    if key in ("created_at", "updated_at"):
        return _timestamp(getattr(image, key))
    value = getattr(image, key)
    return _SORT_DEFAULTS.get(key) if value is None else value


def _visibility_clause(context: RequestContext, visibility: str | None) -> tuple[list[str], list[Any]]:
    """SQL for :func:`imagecache.images.policy.may_list` (tests keep the two in step)."""
    clauses: list[str] = []
    params: list[Any] = []
    if not context.is_admin:
        clauses.append("(visibility IN ('public', 'community') OR owner = ?)")
        params.append(context.project_id)
    if visibility is None:
        clauses.append("(visibility != 'community' OR owner = ?)")
        params.append(context.project_id)
    elif visibility != "all":
        clauses.append("visibility = ?")
        params.append(visibility)
    return clauses, params


def _filter_clauses(query: ListQuery) -> tuple[list[str], list[Any]]:
    clauses: list[str] = ["os_hidden = ?"]
    params: list[Any] = [int(query.os_hidden)]
    if query.protected is not None:
        clauses.append("protected = ?")
        params.append(int(query.protected))
    for column, values in query.equals.items():  # column names come from listing.EQUALITY_FILTERS
        clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
        params.extend(values)
    if query.size_min is not None:
        clauses.append("size >= ?")
        params.append(query.size_min)
    if query.size_max is not None:
        clauses.append("size <= ?")
        params.append(query.size_max)
    for tag in query.tags:
        clauses.append("EXISTS (SELECT 1 FROM json_each(images.tags) WHERE value = ?)")
        params.append(tag)
    for name, value in query.properties.items():
        clauses.append(
            "EXISTS (SELECT 1 FROM json_each(images.properties) WHERE key = ? AND value = ?)"
        )
        params.extend((name, value))
    return clauses, params


def _order(query: ListQuery) -> list[tuple[str, str]]:
    """The requested sort keys, then created_at and id as Glance adds them."""
    keys = list(query.sort)
    default = keys[0][1] if keys else "desc"
    for key in ("created_at", "id"):
        if key not in (k for k, _ in keys):
            keys.append((key, default))
    return keys


def _after_marker(order: list[tuple[str, str]], marker: Image) -> tuple[str, list[Any]]:
    """Keyset pagination: rows strictly after ``marker`` in ``order``."""
    alternatives: list[str] = []
    params: list[Any] = []
    for i, (key, direction) in enumerate(order):
        terms = [f"{_SORT_EXPRESSIONS[k]} = ?" for k, _ in order[:i]]
        params.extend(_sort_value(marker, k) for k, _ in order[:i])
        terms.append(f"{_SORT_EXPRESSIONS[key]} {'<' if direction == 'desc' else '>'} ?")
        params.append(_sort_value(marker, key))
        alternatives.append("(" + " AND ".join(terms) + ")")
    return "(" + " OR ".join(alternatives) + ")", params


class ImageDB:
    """The image table; see the module docstring."""

    def __init__(self, path: str, busy_timeout: float = 30.0) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        self._connection().executescript(f"BEGIN IMMEDIATE;{_SCHEMA}COMMIT;")

    # -- connections ------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _connection(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            # First use in this thread, or a fork copied the parent's: never reuse it.
            local.conn = self._connect()
            local.pid = os.getpid()
        conn: sqlite3.Connection = local.conn
        return conn

    def close(self) -> None:
        """Close this thread's connection (others close with their threads)."""
        local = self._local
        if getattr(local, "pid", None) == os.getpid():
            local.conn.close()
        local.pid = None
        local.conn = None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- reads ------------------------------------------------------------------------

    def get(self, image_id: str) -> Image | None:
        row = self._connection().execute(f"{_SELECT} WHERE id = ?", (image_id,)).fetchone()
        return None if row is None else _image(row)

    def list(
        self, context: RequestContext, query: ListQuery, marker: Image | None = None
    ) -> tuple[list[Image], bool]:
        """One page of the images ``context`` may list, and whether more follow."""
        clauses, params = _visibility_clause(context, query.visibility)
        more_clauses, more_params = _filter_clauses(query)
        clauses += more_clauses
        params += more_params
        order = _order(query)
        if marker is not None:
            clause, marker_params = _after_marker(order, marker)
            clauses.append(clause)
            params += marker_params
        sql = (
            f"{_SELECT} WHERE {' AND '.join(clauses)} ORDER BY "
            + ", ".join(f"{_SORT_EXPRESSIONS[key]} {direction.upper()}" for key, direction in order)
            + " LIMIT ?"
        )
        rows = self._connection().execute(sql, (*params, query.limit + 1)).fetchall()
        images = [_image(row) for row in rows[: query.limit]]
        return images, len(rows) > query.limit

    # -- writes -----------------------------------------------------------------------

    def insert(self, image: Image) -> Image:
        """Add a new image and return it; 409 when its id is or ever was taken."""
        taken = conflict(f"Image with identifier {image.id} already exists!")
        with self._transaction() as conn:
            if conn.execute("SELECT 1 FROM deleted_images WHERE id = ?", (image.id,)).fetchone():
                raise taken
            try:
                conn.execute(
                    f"INSERT INTO images ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                    _row_values(image),
                )
            except sqlite3.IntegrityError:
                raise taken from None
        return image

    def modify(self, image_id: str, change: Callable[[Image], Image]) -> Image:
        """Apply ``change`` to the current record atomically, and return the result.

        ``change`` gets the image as stored and returns the new image (written
        if it differs), or raises (a refusal), which leaves the record as it
        was.  404 when there is no such image.
        """
        with self._transaction() as conn:
            current = _stored(conn, image_id)
            result = change(current)
            if result != current:
                if result.id != current.id:
                    raise ValueError("an image's id cannot change")
                assignments = ", ".join(f"{column} = ?" for column in _COLUMNS[1:])
                conn.execute(
                    f"UPDATE images SET {assignments} WHERE id = ?",
                    (*_row_values(result)[1:], image_id),
                )
            return result

    def delete(self, image_id: str, check: Callable[[Image], None]) -> Image:
        """Delete an image unless ``check`` (given the stored record) raises (a refusal).

        Returns the deleted image; 404 when there is no such image.
        """
        with self._transaction() as conn:
            current = _stored(conn, image_id)
            check(current)
            conn.execute("DELETE FROM images WHERE id = ?", (image_id,))
            conn.execute(
                "INSERT OR REPLACE INTO deleted_images (id, deleted_at) VALUES (?, ?)",
                (image_id, _timestamp(utcnow())),
            )
            return current
