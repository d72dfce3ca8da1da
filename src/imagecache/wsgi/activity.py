"""``GET /v2/cache/activity``: what the node is doing right now (``imagecache top`` reads it).

One JSON answer with the fills in progress (:mod:`imagecache.cache.in_progress`,
each named from the image service when it answers), the node's cumulative
counters, the cache's size against its limit, the queue, the pins (and
whether they alone exceed the limit) and, with the central index, every
node with its last heartbeat.

The counters are the very ones ``/metrics`` exposes, read through
:meth:`imagecache.metrics.Metrics.render` (summed over worker processes
there), never counted a second time: a client takes the rates from the
difference of two answers.  Parsing the exposition is :func:`counter_totals`'s
job (pure).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from webob import Request, Response

from imagecache.cache import ImageCache
from imagecache.cache.errors import CacheError
from imagecache.cache.in_progress import FillInProgress, fills_in_progress
from imagecache.wsgi.image_source import ImageSource
from imagecache.wsgi.manage_responses import json_response

__all__ = ["MAX_FILLS", "activity", "counter_totals", "counters_view"]

LOG = logging.getLogger(__name__)

#: At most this many fills are listed (each costs a metadata sub-request for its name).
MAX_FILLS = 50

#: The counters the view needs: API key -> (metric family, label that splits it, or None).
COUNTERS: Mapping[str, tuple[str, str | None]] = {
    "hits": ("imagecache_cache_hits", None),
    "misses": ("imagecache_cache_misses", None),
    "fill_followers": ("imagecache_fill_followers", None),
    "served_bytes": ("imagecache_served_bytes", "source"),
    "upstream_bytes": ("imagecache_upstream_bytes", None),
    "peer_bytes": ("imagecache_peer_bytes", None),
    "peer_served_bytes": ("imagecache_peer_served_bytes", None),
    "not_stored": ("imagecache_not_stored", "reason"),
    "fills": ("imagecache_fills", "result"),
    "evictions": ("imagecache_evictions", None),
    "origin_requests": ("imagecache_origin_requests", "reason"),
}


def counter_totals(exposition: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every counter's ``_total`` samples in Prometheus text, by family and sorted labels."""
    totals: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(exposition):
        if family.type != "counter":
            continue
        samples = totals.setdefault(family.name, {})
        for sample in family.samples:
            if sample.name == family.name + "_total":
                samples[tuple(sorted(sample.labels.items()))] = sample.value
    return totals


def counters_view(totals: Mapping[str, Mapping[tuple[tuple[str, str], ...], float]]) -> dict[str, Any]:
    """The counters of :data:`COUNTERS` as the API shows them: a number, or a number per label value."""
    view: dict[str, Any] = {}
    for key, (family, label) in COUNTERS.items():
        samples = totals.get(family, {})
        if label is None:
            view[key] = int(sum(samples.values()))
        else:
            split: dict[str, int] = {}
            for labels, value in samples.items():
                name = dict(labels).get(label)
                if name is not None:
                    split[name] = split.get(name, 0) + int(value)
            view[key] = split
    return view


def _fill(fill: FillInProgress, name: str | None) -> dict[str, Any]:
    return {"image_id": fill.image_id, "name": name, "bytes": fill.bytes, "expected_size": fill.expected_size,
            "readers": fill.readers, "updated": fill.updated, "source": fill.source}


def _name(source: ImageSource, environ: Mapping[str, Any], image_id: str) -> str | None:
    """The image's name as the caller sees it; None when the image service does not say."""
    meta = source.metadata(environ, image_id)
    name = meta.image.get("name") if meta.status == 200 and meta.image is not None else None
    return name if isinstance(name, str) else None


def _nodes(cache: ImageCache) -> list[dict[str, Any]] | None:
    """The central index's nodes and their last heartbeat; None without one, or when it does not answer."""
    try:
        reports = cache.driver.nodes()
    except CacheError:
        LOG.warning("the central index did not list its nodes for the activity view", exc_info=True)
        return None
    if reports is None:
        return None
    return [{"url": r.url, "site": r.site, "state": r.state.value,
             "last_seen": r.last_seen.timestamp() if r.last_seen else None} for r in reports]


def activity(cache: ImageCache, source: ImageSource, request: Request) -> Response:
    """GET /v2/cache/activity: the fills in progress, the counters, the size, the queue, the pins."""
    fills = fills_in_progress(cache.layout, MAX_FILLS)
    _, exposition = cache.metrics.render()
    return json_response({
        "time": time.time(),
        "fills": [_fill(fill, _name(source, request.environ, fill.image_id)) for fill in fills],
        "counters": counters_view(counter_totals(exposition.decode("utf-8"))),
        "cache_size": cache.get_cache_size(),
        "image_cache_max_size": cache.settings.image_cache_max_size,
        "queued_images": cache.get_queued_images(),
        "pinned_images": sorted(cache.pins.ids()),
        "pinned_over_limit": cache.pins.state().over_limit,
        "nodes": _nodes(cache),
    })
