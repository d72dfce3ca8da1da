"""Errors the cache raises: each one names a failure, none is control flow."""


class CacheError(Exception):
    """Base of every error raised by the cache library."""


class InvalidImageId(CacheError, ValueError):
    """An image id that is not a UUID; it must never become a path."""


class ImageNotCached(CacheError, LookupError):
    """The image has no verified file in the cache."""


class ImageVerificationError(CacheError):
    """The bytes of a fill do not match the image's checksum or multihash.

    Raised to the consumer of a caching iterator so that its response is
    aborted: a client must never receive a complete-looking wrong image.
    """


class DriverConfigError(CacheError):
    """An index driver cannot work here (e.g. no user xattrs on the filesystem)."""
