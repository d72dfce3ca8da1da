"""Pinned images as files in ``pinned/``, beside Glance's ``queue/``.

Each pin is a file named by the image id whose content says who pinned it
(``manual`` or ``prewarm``, see :mod:`imagecache.cache.drivers.base`).  Files, like
the queue, so a pin outlives the index it sits beside (a deleted
``cache.db`` loses hit counts, never the operator's pins) and an operator can
see them with ``ls``.
"""

from __future__ import annotations

import contextlib
import os

from imagecache.cache.drivers.base import MANUAL, PIN_SOURCES
from imagecache.cache.layout import CacheLayout, is_image_id


class FilePins:
    def __init__(self, layout: CacheLayout) -> None:
        self._layout = layout

    def add(self, image_id: str, by: str) -> bool:
        """Pin ``image_id``; True when it was not pinned before."""
        path = self._layout.pin_path(image_id)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            if by == MANUAL and self._read(path) != MANUAL:
                self._replace(path, by)  # an operator's pin outranks the policy's
            return False
        try:
            os.write(fd, by.encode())
        finally:
            os.close(fd)
        return True

    def remove(self, image_id: str) -> bool:
        try:
            os.unlink(self._layout.pin_path(image_id))
        except FileNotFoundError:
            return False
        return True

    def all(self) -> dict[str, str]:
        try:
            names = os.listdir(self._layout.pinned_dir)
        except FileNotFoundError:
            return {}
        pins: dict[str, str] = {}
        for name in names:
            if is_image_id(name):
                by = self._read(os.path.join(self._layout.pinned_dir, name))
                if by is not None:
                    pins[name] = by
        return pins

    @staticmethod
    def _read(path: str) -> str | None:
        """Who pinned it; anything unreadable counts as manual (a pin is never lost to a bad file)."""
        try:
            with open(path, "rb") as fh:
                text = fh.read(16).decode("ascii", "replace").strip()
        except FileNotFoundError:
            return None
        except OSError:
            return MANUAL
        return text if text in PIN_SOURCES else MANUAL

    def _replace(self, path: str, by: str) -> None:
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "wb") as fh:
            fh.write(by.encode())
        try:
            os.replace(temporary, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)


class FilePinsMixin:
    """The driver contract's pin methods, for drivers that keep pins in ``pinned/``."""

    _pins: FilePins

    def pin(self, image_id: str, by: str) -> bool:
        return self._pins.add(image_id, by)

    def unpin(self, image_id: str) -> bool:
        return self._pins.remove(image_id)

    def pins(self) -> dict[str, str]:
        return self._pins.all()
