"""UpstreamApp: a streaming reverse proxy to an upstream image API (edge mode).

Every request it gets goes to ``base_url`` as it came (method, raw path and
query, end-to-end headers, body), and the upstream's answer comes back as it
is (status, end-to-end headers, body): redirects are passed on, not
followed.  Bodies stream both ways in chunks of at most 1 MiB, so a
multi-GB image upload or download never sits in memory.

What the proxy says itself:

* a 502 (the upstream cannot be reached: refused, no such host, TLS failed,
  connection dropped before an answer) or a 504 (no connection or no answer
  in time), with a JSON body shaped like the server's other errors and the
  header ``X-Imagecache-Upstream-Error: unreachable|timeout``, so the cache
  filter tells them from an upstream's own 502, 503 or 504;
* a 400 when the client's own request body breaks off during the upload.

A body that breaks off in the middle raises :class:`UpstreamBodyError` out
of the response iterator: the client sees a broken transfer, never a short
body that looks complete.

The parts, one job each: ``app`` (the WSGI app, its pool, retries and
its own 502/504), ``request`` (what goes upstream), ``response`` (what
comes back), ``forwarding`` (what both directions share), ``base_url``
(checking the upstream's URL).
"""

from imagecache.http.errors import UPSTREAM_ERROR_HEADER
from imagecache.upstream.app import UpstreamApp
from imagecache.upstream.forwarding import CHUNK_SIZE, HOP_BY_HOP, VIA_PSEUDONYM
from imagecache.upstream.request import ClientBodyError, request_body, request_headers, request_path
from imagecache.upstream.response import DRAIN_LIMIT, UpstreamBody, UpstreamBodyError, response_headers

__all__ = [
    "CHUNK_SIZE",
    "DRAIN_LIMIT",
    "HOP_BY_HOP",
    "UPSTREAM_ERROR_HEADER",
    "VIA_PSEUDONYM",
    "ClientBodyError",
    "UpstreamApp",
    "UpstreamBody",
    "UpstreamBodyError",
    "request_body",
    "request_headers",
    "request_path",
    "response_headers",
]
