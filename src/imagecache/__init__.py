"""imagecache: a transparent on-disk LRU cache of VM image data.

The library's public face is :class:`ImageCache`, configured by an explicit
:class:`Settings` object.

Both are imported on first use (PEP 562), not with the package: a program
that needs only ``imagecache.config`` or the command line's ``--help`` does
not pay for the cache and its metrics.
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imagecache.cache import ImageCache
    from imagecache.config import Settings

__all__ = ["ImageCache", "Settings"]

#: The distribution whose metadata holds the version.
DISTRIBUTION = "imagecache"
#: The version of a checkout that is not installed (PEP 440: sorts before any release).
UNKNOWN_VERSION = "0+unknown"

#: Where each public name lives: imported when first asked for.
_PUBLIC = {
    "ImageCache": "imagecache.cache",
    "Settings": "imagecache.config",
}


@functools.cache
def installed_version() -> str:
    """The installed distribution's version, or :data:`UNKNOWN_VERSION` when there is none."""
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return UNKNOWN_VERSION


def __getattr__(name: str) -> Any:
    if name == "__version__":
        return installed_version()
    home = _PUBLIC.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, "__version__"})
