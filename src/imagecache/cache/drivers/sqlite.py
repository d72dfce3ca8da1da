"""The default index: a sqlite database (WAL) inside the cache directory.

The queue and the pins are files beside it: ``queue/`` as in Glance's layout, and ``pinned/``.

One connection per thread (sqlite connections must not be shared), re-opened
after a fork because gunicorn pre-forks its workers.  WAL lets readers and a
writer of different processes proceed together; ``busy_timeout`` makes
concurrent writers wait instead of failing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping

from imagecache.cache.drivers.base import LISTING_COLUMNS, CachedImage, Driver, ListingRow
from imagecache.cache.drivers.file_pins import FilePins, FilePinsMixin
from imagecache.cache.drivers.file_queue import FileQueue, FileQueueMixin
from imagecache.cache.errors import DriverConfigError
from imagecache.cache.layout import CacheLayout

LOG = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS cached_images (
    image_id      TEXT PRIMARY KEY,
    size          INTEGER NOT NULL DEFAULT 0,
    hits          INTEGER NOT NULL DEFAULT 0,
    last_accessed REAL    NOT NULL DEFAULT 0.0,
    last_modified REAL    NOT NULL DEFAULT 0.0,
    checksum      TEXT,
    os_hash_algo  TEXT,
    os_hash_value TEXT
);
CREATE INDEX IF NOT EXISTS cached_images_lru ON cached_images (last_accessed, last_modified);
"""
#: Rows read at a time by lru() and listing_rows().
_LRU_BATCH = 256
_LISTING_BATCH = 1024
_COLUMNS = "image_id, size, hits, last_accessed, last_modified, checksum, os_hash_algo, os_hash_value"
#: Most recently accessed first: list() and listing_rows().
_NEWEST_FIRST = "ORDER BY last_accessed DESC, last_modified DESC, image_id"
BUSY_TIMEOUT_MS = 30_000


class SqliteDriver(FileQueueMixin, FilePinsMixin, Driver):
    name = "sqlite"

    def __init__(self, layout: CacheLayout, db_name: str = "cache.db") -> None:
        self._layout = layout
        self.db_path = os.path.join(layout.root, db_name)
        self._queue = FileQueue(layout)
        self._pins = FilePins(layout)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()

    # -- connections ------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.db_path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _db(self) -> sqlite3.Connection:
        """This thread's connection (a new one in a forked child)."""
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = self._connect()
            self._local.conn, self._local.pid = conn, os.getpid()
            with self._all_lock:
                self._all.append(conn)
        return conn

    def configure(self) -> None:
        try:
            conn = self._db()
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise DriverConfigError(
                    f"{self.db_path} has schema version {version}, newer than this "
                    f"imagecache understands ({SCHEMA_VERSION})"
                )
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise DriverConfigError(f"cannot use sqlite index {self.db_path}: {exc}") from exc

    def close(self) -> None:
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):  # closing is best effort
                conn.close()
        self._local = threading.local()

    # -- cached images ------------------------------------------------------
    def add(self, record: CachedImage) -> None:
        self._db().execute(
            f"INSERT OR REPLACE INTO cached_images ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.image_id,
                record.size,
                record.hits,
                record.last_accessed,
                record.last_modified,
                record.checksum,
                record.os_hash_algo,
                record.os_hash_value,
            ),
        )

    def add_many(self, records: Iterable[CachedImage]) -> None:
        """Adopt many records in one transaction (crash recovery at scale)."""
        rows = [
            (r.image_id, r.size, r.hits, r.last_accessed, r.last_modified, r.checksum, r.os_hash_algo, r.os_hash_value)
            for r in records
        ]
        with self._transaction() as conn:
            conn.executemany(
                f"INSERT OR IGNORE INTO cached_images ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows
            )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on this thread's connection (the write lock taken at once)."""
        conn = self._db()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def get(self, image_id: str) -> CachedImage | None:
        row = self._db().execute(
            f"SELECT {_COLUMNS} FROM cached_images WHERE image_id = ?", (image_id,)
        ).fetchone()
        return CachedImage(*row) if row else None

    def list(self) -> list[CachedImage]:
        rows = self._db().execute(f"SELECT {_COLUMNS} FROM cached_images {_NEWEST_FIRST}").fetchall()
        return [CachedImage(*row) for row in rows]

    def listing_rows(self) -> Iterator[ListingRow]:
        """The listing's columns only, as sqlite's own tuples (REAL and INTEGER affinities give the types),
        read in batches: the listing holds one batch, not every row.  Its snapshot lasts as long as the
        answer (bounded by the send deadline); WAL lets writers go on meanwhile."""
        cursor = self._db().execute(f"SELECT {', '.join(LISTING_COLUMNS)} FROM cached_images {_NEWEST_FIRST}")
        try:
            while rows := cursor.fetchmany(_LISTING_BATCH):
                yield from rows
        finally:
            cursor.close()

    def lru(self) -> Iterator[CachedImage]:
        """Lazily, in batches: eviction reads only as far as it evicts.

        Evicting 1,000 of 100,000 entries spent 80 % of its time loading
        every row when this returned a list.
        """
        cursor = self._db().execute(
            f"SELECT {_COLUMNS} FROM cached_images ORDER BY last_accessed, last_modified, image_id"
        )
        try:
            while rows := cursor.fetchmany(_LRU_BATCH):
                yield from (CachedImage(*row) for row in rows)
        finally:
            cursor.close()  # an unfinished read must not pin the WAL snapshot

    def ids(self) -> set[str]:
        return {row[0] for row in self._db().execute("SELECT image_id FROM cached_images")}

    def remove(self, image_id: str) -> bool:
        cursor = self._db().execute("DELETE FROM cached_images WHERE image_id = ?", (image_id,))
        return cursor.rowcount > 0

    def record_hits(self, batch: Mapping[str, tuple[int, float]]) -> None:
        """One write transaction for the whole batch: the write lock is taken once, not once per hit."""
        rows = [(count, float(when), image_id) for image_id, (count, when) in sorted(batch.items())]
        if not rows:
            return
        with self._transaction() as conn:
            conn.executemany(
                "UPDATE cached_images SET hits = hits + ?, last_accessed = max(last_accessed, ?) WHERE image_id = ?",
                rows,
            )

    def total_size(self) -> int:
        return int(self._db().execute("SELECT COALESCE(SUM(size), 0) FROM cached_images").fetchone()[0])
