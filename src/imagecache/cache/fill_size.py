"""A fill's expected size, on disk beside it, for readers that were told nothing.

A follower on this node knows the image's size from the metadata it was
authorized with.  A peer node reading this node's fill is not authorized by
metadata, and the node answers it without asking the image service, yet it
needs the size to send ``Content-Length``, to hold the last byte back until
the image is verified, and to serve a Range.  So a claimed fill writes the
size its metadata gave into ``incomplete/<id>.size``, and removes it just
before the writer lets go of its lock, as it does the readers file: a
finishing fill can never remove the record of the next fill of the image.

Best effort: a record that cannot be written or read is an unknown size,
which readers handle as they always did (the size may be unknown anyway).
An image's data never changes once it is active, so a record left behind by
a writer that crashed still names the right size.
"""

from __future__ import annotations

import contextlib
import logging
import os

from imagecache.cache.layout import CacheLayout

__all__ = ["SIZE_SUFFIX", "forget_size", "record_size", "recorded_size", "size_path"]

LOG = logging.getLogger(__name__)

SIZE_SUFFIX = ".size"
#: Longer than any size could be written (20 digits hold 2**64).
_MAX_RECORD = 32


def size_path(layout: CacheLayout, image_id: str) -> str:
    return layout.incomplete_path(image_id) + SIZE_SUFFIX


def record_size(layout: CacheLayout, image_id: str, size: int | None) -> None:
    """Write ``size`` for the fill of ``image_id`` (the caller holds the writer's lock); None writes nothing.

    Written beside and renamed into place, so a reader sees a whole record or none.
    """
    if size is None:
        return
    path = size_path(layout, image_id)
    partial = path + ".new"  # only the writer's lock holder writes it: one name is enough
    try:
        with open(partial, "w", encoding="ascii") as fh:
            fh.write(str(size))
        os.replace(partial, path)
    except OSError as exc:
        LOG.debug("cannot record the size of the fill of image %s: %s", image_id, exc)
        with contextlib.suppress(OSError):
            os.unlink(partial)


def recorded_size(layout: CacheLayout, image_id: str) -> int | None:
    """The expected size of the fill of ``image_id``, or None when no fill recorded one."""
    try:
        with open(size_path(layout, image_id), encoding="ascii") as fh:
            text = fh.read(_MAX_RECORD)
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() and len(text) < _MAX_RECORD else None


def forget_size(layout: CacheLayout, image_id: str) -> None:
    """Remove the record (the writer, just before it releases its lock)."""
    with contextlib.suppress(OSError):
        os.unlink(size_path(layout, image_id))
