"""Does the upstream accept this caller's token?  Asked once, remembered briefly.

An edge node's cache API is for the node's own admins (its tokens file).
Any other token is not the node's to judge, but it must not be answered as
if it were valid: a token the upstream rejects gets 401, as everywhere else,
and only a valid token of a non-admin gets 403.  The node asks the upstream
with the caller's own token (a small authenticated listing) and memoises the
verdict per token for ``auth_cache_ttl`` seconds, like the hit authorization.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from imagecache.wsgi.image_source import ImageSource, upstream_failed

#: The cheapest call an upstream Glance authenticates (schemas and versions may be open).
PROBE_PATH = "/v2/images?limit=1"
TOKEN_KEY = "HTTP_X_AUTH_TOKEN"


class UpstreamTokenCheck:
    """Memoised "does the upstream reject this token?" answers, bounded in number."""

    def __init__(
        self,
        source: ImageSource,
        *,
        ttl: float,
        size: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._lock = threading.Lock()
        self._memo: dict[bytes, tuple[float, bool]] = {}

    def rejects(self, environ: Mapping[str, Any]) -> bool:
        """True when the upstream answers 401 to the caller's token.

        No token, or an upstream that cannot be reached, is not a rejection
        (the caller is refused anyway; the upstream's silence is not
        remembered).
        """
        token = environ.get(TOKEN_KEY)
        if not token:
            return False
        key = hashlib.sha256(str(token).encode("utf-8", "surrogateescape")).digest()
        now = self._clock()
        with self._lock:
            known = self._memo.get(key)
        if known is not None and now - known[0] < self._ttl:
            return known[1]
        answer = self._source.call(environ, "GET", PROBE_PATH)
        if upstream_failed(answer):
            return False
        rejected = answer.status_code == 401
        if self._ttl > 0:
            with self._lock:
                if len(self._memo) >= self._size:
                    self._memo.clear()  # bounded: a rare full reset beats unbounded growth
                self._memo[key] = (now, rejected)
        return rejected
