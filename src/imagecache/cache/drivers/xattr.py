"""An index kept in extended attributes on the cached files themselves.

No database: the files are the index, so it cannot disagree with them.  Each
verified file carries ``user.imagecache.*`` attributes; a file without them
(adopted after a crash) reads as never hit, last accessed at its mtime.
Needs a filesystem with user xattrs; :meth:`XattrDriver.configure` refuses
to work elsewhere and the cache falls back to sqlite.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
from collections.abc import Iterator, Mapping

from imagecache.cache.drivers.base import CachedImage, Driver
from imagecache.cache.drivers.file_pins import FilePins, FilePinsMixin
from imagecache.cache.drivers.file_queue import FileQueue, FileQueueMixin
from imagecache.cache.errors import DriverConfigError
from imagecache.cache.layout import CacheLayout, FileFacts

PREFIX = "user.imagecache."
#: The facts kept in attributes (size is the file's own).
_FIELDS = ("hits", "last_accessed", "last_modified", "checksum", "os_hash_algo", "os_hash_value")
_HIT_LOCK = ".xattr-hits.lock"


class XattrDriver(FileQueueMixin, FilePinsMixin, Driver):
    name = "xattr"

    def __init__(self, layout: CacheLayout) -> None:
        self._layout = layout
        self._queue = FileQueue(layout)
        self._pins = FilePins(layout)
        self._hit_lock = threading.Lock()

    def configure(self) -> None:
        probe = os.path.join(self._layout.incomplete_dir, f".xattr-probe-{os.getpid()}-{threading.get_ident()}")
        try:
            with open(probe, "wb"):
                pass
            os.setxattr(probe, PREFIX + "probe", b"1")
            if os.getxattr(probe, PREFIX + "probe") != b"1":
                raise DriverConfigError("extended attributes do not round-trip")
        except OSError as exc:
            if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
                raise DriverConfigError(
                    f"the filesystem of {self._layout.root} does not support user extended attributes"
                ) from exc
            raise DriverConfigError(f"cannot probe extended attributes in {self._layout.root}: {exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(probe)

    # -- reading and writing attributes ----------------------------------------
    def _read(self, facts: FileFacts) -> CachedImage | None:
        path = os.path.join(self._layout.root, facts.image_id)
        try:
            values = {
                name[len(PREFIX):]: os.getxattr(path, name).decode("utf-8", "replace")
                for name in os.listxattr(path)
                if name.startswith(PREFIX)
            }
        except FileNotFoundError:
            return None
        return CachedImage(
            image_id=facts.image_id,
            size=facts.size,
            hits=_count(values.get("hits")),
            last_accessed=_seconds(values.get("last_accessed")) or facts.mtime,
            last_modified=_seconds(values.get("last_modified")) or facts.mtime,
            checksum=values.get("checksum"),
            os_hash_algo=values.get("os_hash_algo"),
            os_hash_value=values.get("os_hash_value"),
        )

    def _write(self, image_id: str, **values: object) -> None:
        path = self._layout.path(image_id)
        for key, value in values.items():
            name = PREFIX + key
            try:
                if value is None:
                    with contextlib.suppress(OSError):
                        os.removexattr(path, name)
                else:
                    os.setxattr(path, name, repr(value).encode() if isinstance(value, float) else str(value).encode())
            except FileNotFoundError:
                return  # evicted meanwhile: nothing to record

    # -- cached images ------------------------------------------------------
    def add(self, record: CachedImage) -> None:
        self._write(
            record.image_id,
            hits=record.hits,
            last_accessed=float(record.last_accessed),
            last_modified=float(record.last_modified),
            checksum=record.checksum,
            os_hash_algo=record.os_hash_algo,
            os_hash_value=record.os_hash_value,
        )

    def get(self, image_id: str) -> CachedImage | None:
        facts = self._layout.stat(image_id)
        return self._read(facts) if facts else None

    def _records(self) -> Iterator[CachedImage]:
        for facts in self._layout.published():
            record = self._read(facts)
            if record is not None:
                yield record

    def list(self) -> list[CachedImage]:
        return sorted(self._records(), key=lambda r: (-r.last_accessed, -r.last_modified, r.image_id))

    def ids(self) -> set[str]:
        return {facts.image_id for facts in self._layout.published()}

    def remove(self, image_id: str) -> bool:
        """Forget what the file's attributes record; True if it was there to forget.

        The attributes live on the file, so the cache's unlinking (which comes
        first) takes the record with it and this finds nothing: False.  A file
        still in place keeps being a record (as an adopted file does), with
        no hits and its mtime for times.
        """
        path = self._layout.path(image_id)
        if not os.path.isfile(path):
            return False
        self._write(image_id, **dict.fromkeys(_FIELDS))
        return True

    @contextlib.contextmanager
    def _hits_locked(self) -> Iterator[None]:
        """Read-modify-write of a counter, exclusive across threads and processes."""
        with self._hit_lock:
            fd = os.open(os.path.join(self._layout.root, _HIT_LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    def record_hits(self, batch: Mapping[str, tuple[int, float]]) -> None:
        """Every image's counter in one pass under one lock (a read-modify-write per image)."""
        if not batch:
            return
        with self._hits_locked():
            for image_id, (count, when) in batch.items():
                record = self.get(image_id)
                if record is not None:
                    self._write(image_id, hits=record.hits + count,
                                last_accessed=max(record.last_accessed, float(when)))

    def total_size(self) -> int:
        return sum(facts.size for facts in self._layout.published())


def _seconds(raw: str | None) -> float:
    """A time from an attribute; 0.0 when missing or unreadable (the caller falls back to the mtime)."""
    try:
        return float(raw) if raw is not None else 0.0
    except ValueError:
        return 0.0


def _count(raw: str | None) -> int:
    """A counter from an attribute (written as an int, read leniently); 0 when missing or unreadable."""
    try:
        return int(float(raw)) if raw is not None else 0
    except ValueError:
        return 0
