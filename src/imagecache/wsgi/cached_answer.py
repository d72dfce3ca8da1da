"""The answer a cache hit sends: a cached file (whole, a Range, or 416) with the image's headers.

Apart from the filter, which decides whether a hit may be served at all;
this only says how an open, authorized file goes out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from webob import Request

from imagecache.cache.opened import OpenedFile
from imagecache.http import ranges
from imagecache.http.cache_status import CacheStatus, with_status
from imagecache.http.file_body import FileRangeBody
from imagecache.http.types import StartResponse
from imagecache.metrics import Metrics
from imagecache.wsgi import app_data
from imagecache.wsgi.app_data import Representation

OCTET_STREAM = "application/octet-stream"


def send_cached(
    request: Request, opened: OpenedFile, representation: Representation, start_response: StartResponse,
    cache_status: CacheStatus, metrics: Metrics, on_complete: Callable[[], None],
) -> Iterable[bytes]:
    """The answer from ``opened``, which it owns from here on (closed on every path).

    Its size is the one its descriptor gave when it was opened: no second
    look at the file.  ``on_complete`` runs when the whole answer is handed
    over (the hit counted).
    """
    fh = opened.file
    try:
        selected = ranges.select(request.headers.get("Range"), request.headers.get("If-Range"), opened.size,
                                 representation.etag)
    except BaseException:
        fh.close()
        raise
    if isinstance(selected, ranges.Unsatisfiable):
        fh.close()
        return app_data.unsatisfiable(selected, start_response, cache_status)
    metrics.cache_hits.inc()
    start_response(ranges.status_line(selected), with_status([
        ("Content-Type", OCTET_STREAM), *representation.headers,
        *ranges.response_headers(selected, representation.etag, content_md5=representation.md5),
    ], cache_status))
    return FileRangeBody(fh, selected.first, selected.length,
                         on_bytes=metrics.served_bytes.labels(source="cache").inc, on_complete=on_complete)
