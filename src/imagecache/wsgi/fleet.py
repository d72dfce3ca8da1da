"""The fleet view: which node holds or is filling which image, as the API and the CLI show it.

Pure: the driver's :meth:`~imagecache.cache.drivers.base.Driver.fleet`
entries in, the JSON document of ``GET /v2/cache/nodes`` out, so the route
and ``imagecache db images`` (which reads the index itself) show one view in
one order.  Images come sorted by id; each image's nodes come same site as
``site`` first (the nodes a reader there would fill from), then by URL.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from imagecache.cache.drivers.base import FleetEntry

#: A node's copy of an image: the verified file, or a fill in progress.
CACHED = "cached"
FILLING = "filling"


def node_view(entry: FleetEntry) -> dict[str, Any]:
    """One node's copy of one image, in the API's words."""
    return {
        "url": entry.url,
        "site": entry.site,
        "state": FILLING if entry.filling else CACHED,
        "size": entry.size,
        "bytes": entry.bytes,
        "live": entry.live,
    }


def fleet_view(entries: Iterable[FleetEntry], site: str) -> list[dict[str, Any]]:
    """``[{"image_id", "nodes": [...]}]``: images by id, nodes of ``site`` first, then by URL.

    A node listed twice for one image (its file, and a fill the index still
    records) keeps both rows, the cached one first: the view shows what the
    index says, it does not judge it.
    """
    by_image: dict[str, list[FleetEntry]] = {}
    for entry in entries:
        by_image.setdefault(entry.image_id, []).append(entry)

    def order(entry: FleetEntry) -> tuple[bool, str, bool, str, int, int, bool]:
        # Whole, so the view never depends on the order the index answered in.
        return (entry.site != site, entry.url, entry.filling, entry.site, entry.bytes,
                -1 if entry.size is None else entry.size, entry.live)

    return [
        {"image_id": image_id, "nodes": [node_view(entry) for entry in sorted(by_image[image_id], key=order)]}
        for image_id in sorted(by_image)
    ]
