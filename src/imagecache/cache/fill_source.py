"""Where a fill reads from, on disk beside it: ``incomplete/<id>.source`` says ``peer``.

A fill started from peers (:mod:`imagecache.peers.fills`) writes the mark,
so that ``GET /v2/cache/activity``, answered by any worker process, can tell
an operator which fills spare the origin.  A fill without the mark reads the
origin.  The mark goes with the fill's other records, just before the writer
lets go of its lock (:mod:`imagecache.cache.flight`), and the cleaner sweeps
one a crashed writer left.  Best effort: a mark that cannot be written only
makes the fill look like an origin fill.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Literal

from imagecache.cache.layout import CacheLayout

__all__ = ["SOURCE_SUFFIX", "FillOrigin", "forget_source", "record_peer_source", "recorded_source"]

LOG = logging.getLogger(__name__)

SOURCE_SUFFIX = ".source"
FillOrigin = Literal["origin", "peer"]
_PEER = "peer"


def _path(layout: CacheLayout, image_id: str) -> str:
    return layout.incomplete_path(image_id) + SOURCE_SUFFIX


def record_peer_source(layout: CacheLayout, image_id: str) -> None:
    """Mark the fill of ``image_id`` (the caller holds the writer's lock) as read from peers."""
    try:
        with open(_path(layout, image_id), "w", encoding="ascii") as fh:
            fh.write(_PEER)
    except OSError as exc:
        LOG.debug("cannot mark the fill of image %s as read from peers: %s", image_id, exc)


def recorded_source(layout: CacheLayout, image_id: str) -> FillOrigin:
    """Where the fill of ``image_id`` started reading: ``peer`` when marked, else ``origin``."""
    try:
        with open(_path(layout, image_id), encoding="ascii") as fh:
            return "peer" if fh.read(len(_PEER) + 1) == _PEER else "origin"
    except (OSError, UnicodeDecodeError):
        return "origin"


def forget_source(layout: CacheLayout, image_id: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(_path(layout, image_id))
