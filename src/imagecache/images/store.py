"""Image bytes on the local filesystem: ``<data_dir>/images/<id>``.

An upload streams into a hidden temporary file in the same directory while
md5 (Glance's ``checksum``) and the multihash (``os_hash_algo``) are computed;
only a complete, fsync'd file is renamed into place, so a reader never sees a
partial image under its final name.  File names are image ids, which are
accepted only in canonical UUID form.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

from imagecache.images.model import ImageData, canonical_id

LOG = logging.getLogger(__name__)

_PART_SUFFIX = ".part"


def _hasher(algorithm: str) -> hashlib._Hash:
    if algorithm == "md5":
        return hashlib.md5(usedforsecurity=False)
    return hashlib.new(algorithm)


class _Digests:
    """md5 and the multihash of a stream, the two hashes on two threads.

    hashlib releases the GIL on large buffers, so md5 of one chunk runs in a
    helper thread while the caller hashes it with the multihash and writes it.
    """

    def __init__(self, algorithm: str, pool: ThreadPoolExecutor) -> None:
        self.algorithm = algorithm
        self._md5 = _hasher("md5")
        self._multi = self._md5 if algorithm == "md5" else _hasher(algorithm)
        self._pool = pool
        self._pending: Future[None] | None = None

    def update(self, chunk: bytes) -> None:
        if self._multi is self._md5:
            self._md5.update(chunk)
            return
        self._wait()
        self._pending = self._pool.submit(self._md5.update, chunk)
        self._multi.update(chunk)

    def _wait(self) -> None:
        if self._pending is not None:
            self._pending.result()
            self._pending = None

    def result(self, size: int) -> ImageData:
        self._wait()
        return ImageData(size, self._md5.hexdigest(), self.algorithm, self._multi.hexdigest())


def _fsync_directory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ImageStore:
    """The directory of image files; see the module docstring."""

    def __init__(self, root: str, hashing_algorithm: str) -> None:
        self.root = root
        self.hashing_algorithm = hashing_algorithm
        os.makedirs(root, exist_ok=True)

    def path(self, image_id: str) -> str:
        """The file of ``image_id``; ValueError for anything but a canonical UUID."""
        if canonical_id(image_id) != image_id:
            raise ValueError(f"not a canonical image id: {image_id!r}")
        return os.path.join(self.root, image_id)

    def write(self, image_id: str, chunks: Iterable[bytes]) -> ImageData:
        """Store ``chunks`` as the data of ``image_id``, replacing any previous file.

        Whatever ``chunks`` or the filesystem raise propagates, after the
        temporary file is removed; the final name is only ever a whole file.
        """
        final = self.path(image_id)
        fd, temporary = tempfile.mkstemp(prefix=f".{image_id}.", suffix=_PART_SUFFIX, dir=self.root)
        try:
            with os.fdopen(fd, "wb") as out, ThreadPoolExecutor(1, "image-md5") as pool:
                digests = _Digests(self.hashing_algorithm, pool)
                size = 0
                for chunk in chunks:
                    digests.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                data = digests.result(size)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        _fsync_directory(self.root)
        return data

    def open(self, image_id: str) -> BinaryIO | None:
        """The image's file opened for reading, or None when it has none."""
        try:
            return open(self.path(image_id), "rb")
        except FileNotFoundError:
            return None

    def delete(self, image_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(image_id))

    def remove_stale_parts(self, older_than: float) -> int:
        """Delete temporary files left by uploads that died ``older_than`` seconds ago."""
        removed = 0
        cutoff = time.time() - older_than
        with os.scandir(self.root) as entries:
            for entry in entries:
                if not (entry.name.startswith(".") and entry.name.endswith(_PART_SUFFIX)):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
                        removed += 1
        if removed:
            LOG.info("removed %d stale partial upload(s) from %s", removed, self.root)
        return removed

