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


class FillFailed(CacheError):
    """The fill a reader was following stopped without publishing.

    Its writer died, ran out of disk, or gave up.  ``offset`` is how many
    bytes the reader had already delivered, so its caller can fetch the rest
    elsewhere (the image app, with a Range) instead of failing the download.
    """

    def __init__(self, image_id: str, offset: int, why: str) -> None:
        super().__init__(f"the fill of image {image_id} stopped after {offset} bytes: {why}")
        self.image_id = image_id
        self.offset = offset
