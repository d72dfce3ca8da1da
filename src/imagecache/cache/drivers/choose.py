"""The driver an operator names in ``image_cache_driver``, built but not yet configured."""

from __future__ import annotations

from imagecache.cache.drivers.base import Driver
from imagecache.cache.drivers.sqlite import SqliteDriver
from imagecache.cache.errors import DriverConfigError
from imagecache.cache.layout import CacheLayout
from imagecache.config import Settings


def make_driver(name: str, layout: CacheLayout, settings: Settings) -> Driver:
    """The driver ``name`` names, not yet configured; DriverConfigError for an unknown name.

    One plain branch per driver.  xattr and central are imported only when
    chosen: central needs SQLAlchemy, and a missing install of it is a
    configuration error, not a crash.
    """
    if name == "sqlite":
        return SqliteDriver(layout, settings.image_cache_sqlite_db)
    if name == "xattr":
        from imagecache.cache.drivers.xattr import XattrDriver

        return XattrDriver(layout)
    if name == "central":
        try:
            from imagecache.cache.drivers.central import CentralDriver
        except ImportError as exc:
            raise DriverConfigError(f"the central driver is not available: {exc}") from exc
        return CentralDriver(layout, settings)
    raise DriverConfigError(f"unknown image cache driver {name!r}")
