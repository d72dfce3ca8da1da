"""Where the cache keeps its files, and the few operations on them.

The layout is Glance's, so operators' scripts keep working::

    image_cache_dir/
        <image-id>          verified image files (the cache proper)
        incomplete/<id>     fills in progress (or stalled by a crash)
        invalid/<id>        files that failed verification; never served
        queue/<id>          images queued for prefetching
        pinned/<id>         images pinned: never evicted (ours, beside Glance's layout)

Image ids become file names only after :func:`validate_image_id` accepts them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

from imagecache.cache.errors import InvalidImageId

_UUID = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")

#: Name of the lock file that serialises "make room, then publish".
PUBLISH_LOCK = ".publish.lock"


def validate_image_id(image_id: object) -> str:
    """The canonical (lower-case) form of a UUID image id, or InvalidImageId.

    Only the dashed 8-4-4-4-12 hex form is accepted: braces, URNs, bare hex and
    anything with a path separator are refused, so an id can never name a file
    outside the cache directory.
    """
    if not isinstance(image_id, str):
        raise InvalidImageId(f"image id must be a string, not {type(image_id).__name__}")
    canonical = image_id.lower()
    if not _UUID.match(canonical):
        shown = image_id if len(image_id) <= 64 else image_id[:61] + "..."
        raise InvalidImageId(f"invalid image id {shown!r}: not a UUID")
    return canonical


def is_image_id(name: str) -> bool:
    """True when ``name`` is a canonical image id (as files are named)."""
    return bool(_UUID.match(name))


@dataclass(frozen=True)
class FileFacts:
    """What the filesystem says about one cache file."""

    image_id: str
    size: int
    mtime: float


@dataclass(frozen=True)
class DiskUsage:
    total: int
    free: int


class CacheLayout:
    """Paths and file operations of one cache directory."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.incomplete_dir = os.path.join(self.root, "incomplete")
        self.invalid_dir = os.path.join(self.root, "invalid")
        self.queue_dir = os.path.join(self.root, "queue")
        self.pinned_dir = os.path.join(self.root, "pinned")
        #: One empty file per image changed through this node; its mtime is
        #: when.  Hidden: not part of Glance's layout, and scans skip it.
        self.changes_dir = os.path.join(self.root, ".changed")

    def ensure(self) -> None:
        """Create the directories (idempotent, safe for concurrent processes)."""
        for path in (self.root, self.incomplete_dir, self.invalid_dir, self.queue_dir, self.pinned_dir,
                     self.changes_dir):
            os.makedirs(path, exist_ok=True)

    # -- change marks ---------------------------------------------------------
    def mark_changed(self, image_id: str) -> None:
        """Record that the image changed now, for every worker process to see."""
        path = os.path.join(self.changes_dir, validate_image_id(image_id))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            os.utime(fd)
        finally:
            os.close(fd)

    def changed_at(self, image_id: str) -> float | None:
        """When the image was last marked changed (epoch seconds), or None."""
        try:
            return os.stat(os.path.join(self.changes_dir, validate_image_id(image_id))).st_mtime
        except FileNotFoundError:
            return None

    def forget_changes(self, older_than: float) -> int:
        """Remove change marks made before ``older_than`` (epoch seconds)."""
        return sum(
            _unlink(os.path.join(self.changes_dir, facts.image_id))
            for facts in list(self._scan(self.changes_dir))
            if facts.mtime < older_than
        )

    # -- paths (ids are validated here, once) ---------------------------------
    def path(self, image_id: str) -> str:
        return os.path.join(self.root, validate_image_id(image_id))

    def incomplete_path(self, image_id: str) -> str:
        return os.path.join(self.incomplete_dir, validate_image_id(image_id))

    def invalid_path(self, image_id: str) -> str:
        return os.path.join(self.invalid_dir, validate_image_id(image_id))

    def queue_path(self, image_id: str) -> str:
        return os.path.join(self.queue_dir, validate_image_id(image_id))

    def pin_path(self, image_id: str) -> str:
        return os.path.join(self.pinned_dir, validate_image_id(image_id))

    # -- facts ------------------------------------------------------------------
    def exists(self, image_id: str) -> bool:
        return os.path.isfile(self.path(image_id))

    def stat(self, image_id: str) -> FileFacts | None:
        try:
            st = os.stat(self.path(image_id))
        except FileNotFoundError:
            return None
        return FileFacts(validate_image_id(image_id), st.st_size, st.st_mtime)

    def published(self) -> Iterator[FileFacts]:
        """Verified files at the top level (anything not named by an id is ignored)."""
        yield from self._scan(self.root)

    def incomplete(self) -> Iterator[FileFacts]:
        yield from self._scan(self.incomplete_dir)

    def invalid(self) -> Iterator[FileFacts]:
        yield from self._scan(self.invalid_dir)

    @staticmethod
    def _scan(directory: str) -> Iterator[FileFacts]:
        try:
            entries = os.scandir(directory)
        except FileNotFoundError:
            return
        with entries:
            for entry in entries:
                if not is_image_id(entry.name):
                    continue
                try:
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed while we looked
                yield FileFacts(entry.name, st.st_size, st.st_mtime)

    def side_files(self, suffixes: tuple[str, ...]) -> Iterator[tuple[str, str, float]]:
        """``(image_id, path, mtime)`` of the files in ``incomplete/`` named ``<id><suffix>``.

        Fills keep small records beside their file (readers, expected size);
        a writer that crashed leaves them behind for the cleaner.
        """
        try:
            entries = os.scandir(self.incomplete_dir)
        except FileNotFoundError:
            return
        with entries:
            for entry in entries:
                suffix = next((s for s in suffixes if entry.name.endswith(s)), None)
                if suffix is None or not is_image_id(entry.name[: -len(suffix)]):
                    continue
                try:
                    mtime = entry.stat(follow_symlinks=False).st_mtime
                except FileNotFoundError:
                    continue
                yield entry.name[: -len(suffix)], entry.path, mtime

    def disk_usage(self) -> DiskUsage:
        st = os.statvfs(self.root)
        return DiskUsage(total=st.f_blocks * st.f_frsize, free=st.f_bavail * st.f_frsize)

    # -- changes ----------------------------------------------------------------
    def remove(self, image_id: str) -> bool:
        """Unlink the verified file; open readers keep streaming (unlink semantics)."""
        return _unlink(self.path(image_id))

    def remove_incomplete(self, image_id: str) -> bool:
        return _unlink(self.incomplete_path(image_id))

    def remove_invalid(self, image_id: str) -> bool:
        return _unlink(self.invalid_path(image_id))

    def publish(self, image_id: str) -> None:
        """Make an incomplete file the verified one: atomic rename, fsync dir.

        The caller has made the file's data durable first (fsync), so a
        power loss never leaves a published name on unwritten bytes.
        """
        os.rename(self.incomplete_path(image_id), self.path(image_id))
        fsync_dir(self.root)

    def invalidate(self, image_id: str) -> None:
        """Move an incomplete file to ``invalid/`` (replacing an older one)."""
        os.replace(self.incomplete_path(image_id), self.invalid_path(image_id))

    @contextlib.contextmanager
    def publish_lock(self) -> Iterator[None]:
        """Serialise make-room-and-publish across threads and processes."""
        fd = os.open(os.path.join(self.root, PUBLISH_LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock


def names_open_file(path: str, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd``.

    Locks are taken on open files but decisions are about paths: a lock on a
    file that was since renamed or replaced says nothing about the path.
    """
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino)


def fsync_dir(path: str) -> None:
    """Persist a directory entry change (a rename) across a power loss."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: str) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True
