"""CacheApp: what every cache job starts from (Glance's ``image_cache.base.CacheApp``).

Glance's jobs build their cache from a global config; ours take explicit
settings, or share a cache someone already opened (the server's workers hand
theirs to the periodic jobs, so one process keeps one set of connections).
A job closes only a cache it opened itself.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from imagecache.cache import ImageCache
from imagecache.config import Settings


class CacheApp:
    """Holds the :class:`ImageCache` a job works on; subclasses implement :meth:`run`."""

    def __init__(self, settings: Settings | None = None, *, cache: ImageCache | None = None) -> None:
        if cache is None:
            if settings is None:
                raise TypeError("a cache job needs settings or a cache")
            cache = ImageCache(settings)
            self._owns_cache = True
        else:
            self._owns_cache = False
        self.cache = cache
        self.settings = settings if settings is not None else cache.settings

    def run(self) -> Any:
        """Do the job once; the result says what was done."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the cache if this job opened it (a shared cache stays open)."""
        if self._owns_cache:
            self._owns_cache = False
            self.cache.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
