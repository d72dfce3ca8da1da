from imagecache.cache.image_cache import ImageCache  # noqa: F401
