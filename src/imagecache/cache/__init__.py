"""The cache library: :class:`ImageCache` (in :mod:`~imagecache.cache.core`) and what its callers catch.

Only re-exports, so ``from imagecache.cache import ImageCache, ...`` keeps
working; the parts live in modules of their own.
"""

from imagecache.cache.core import CHANGE_MARK_LIFETIME, CleanResult, ImageCache, ReconcileResult
from imagecache.cache.drivers.base import CachedImage, FleetEntry, PeerSource
from imagecache.cache.errors import (
    CacheError,
    DriverConfigError,
    FillFailed,
    ImageNotCached,
    ImageVerificationError,
    InvalidImageId,
)
from imagecache.cache.flight import FillClaim, FillResult, TailReader
from imagecache.cache.pipeline import Declined

__all__ = [
    "CHANGE_MARK_LIFETIME",
    "CacheError",
    "CachedImage",
    "CleanResult",
    "Declined",
    "DriverConfigError",
    "FillClaim",
    "FillFailed",
    "FillResult",
    "FleetEntry",
    "ImageCache",
    "ImageNotCached",
    "ImageVerificationError",
    "InvalidImageId",
    "PeerSource",
    "ReconcileResult",
    "TailReader",
]
