"""imagecache: a transparent on-disk LRU cache of VM image data.

The library's public face is :class:`ImageCache`, configured by an explicit
:class:`Settings` object.
"""

from imagecache.cache import ImageCache
from imagecache.config import Settings

__all__ = ["ImageCache", "Settings"]
__version__ = "0.1.0"
