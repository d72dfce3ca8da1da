"""A verified file opened once, with the facts its own descriptor gave (one fstat, no path looked up again).

A hit used to look at its file three times: ``isfile`` to decide it was a
hit, ``isfile`` again before reading the index row, ``fstat`` to size the
answer.  Opening the file decides all of it: absent is a miss, and what
``fstat`` says about the descriptor is what will be sent, even if the file
is evicted meanwhile (unlink semantics).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import BinaryIO

from imagecache.cache.layout import CacheLayout


@dataclass(frozen=True)
class OpenedFile:
    """An open cached file and its size and mtime, from its descriptor; the holder closes it."""

    file: BinaryIO
    size: int
    mtime: float

    def close(self) -> None:
        self.file.close()


def open_published(layout: CacheLayout, image_id: str) -> OpenedFile | None:
    """The verified file of ``image_id``, open, or None when it is not cached (not a regular file)."""
    try:
        fh = open(layout.path(image_id), "rb")  # noqa: SIM115 - the caller owns it
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    try:
        facts = os.fstat(fh.fileno())
    except BaseException:
        fh.close()
        raise
    if not stat.S_ISREG(facts.st_mode):
        fh.close()
        return None
    return OpenedFile(fh, facts.st_size, facts.st_mtime)
