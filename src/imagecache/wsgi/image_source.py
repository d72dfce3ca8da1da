"""Ask the image app behind a filter about an image, as a given caller.

The cache never decides on its own who may see an image: it asks the app it
sits in front of (the embedded image service, or the upstream proxy) with the
caller's own credentials, so hits are authorized exactly like misses in both
modes (the embedded service may answer in process:
:mod:`imagecache.wsgi.metadata_source`).  The same sub-requests give the
management API and the prefetcher the image's status, checksums and data.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from webob import Request, Response

from imagecache.http.context import ENVIRON_KEY, RequestContext
from imagecache.http.errors import UPSTREAM_ERROR_HEADER
from imagecache.http.types import WSGIApplication
from imagecache.wsgi.bodies import CountingBody
from imagecache.wsgi.metadata_source import ImageMeta, MetadataSource, SubRequestMetadata, sub_environ

__all__ = ["UPSTREAM_ERROR_HEADER", "ChangeLog", "ImageMeta", "ImageSource", "sub_environ", "upstream_failed"]

LOG = logging.getLogger(__name__)


def upstream_failed(response: Response) -> bool:
    """Whether ``response`` says the upstream could not be reached (not that it answered)."""
    return UPSTREAM_ERROR_HEADER in response.headers


class ChangeLog(Protocol):
    """Where "this image changed" is recorded so that every worker process sees it."""

    def mark_changed(self, image_id: str) -> None: ...

    def changed_at(self, image_id: str) -> float | None: ...


#: A memoised answer fetched this close before a change mark counts as older
#: than it: file timestamps come from a coarser clock than time.time().
_MARK_SLACK = 0.05


class ImageSource:
    """Sub-requests to the image app: metadata (with a short TTL memo) and data.

    The memo is per process; ``changes`` (the cache directory's change marks)
    lets a change made through one worker void the other workers' memos too.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        memo_ttl: float = 0.0,
        memo_size: int = 4096,
        clock: Callable[[], float] = time.monotonic,
        changes: ChangeLog | None = None,
        wall_clock: Callable[[], float] = time.time,
        metadata: MetadataSource | None = None,
    ) -> None:
        self.app = app
        #: How metadata is fetched: the sub-request unless the wiring knows better (embedded mode).
        self._metadata = metadata if metadata is not None else SubRequestMetadata(app)
        self._memo_ttl = memo_ttl
        self._memo_size = memo_size
        # key -> (monotonic time, wall time, answer) of the fetch
        self._memo: dict[tuple[Any, str], tuple[float, float, ImageMeta]] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._changes = changes
        self._wall_clock = wall_clock

    def metadata(self, environ: Mapping[str, Any], image_id: str) -> ImageMeta:
        """``GET /v2/images/{id}`` as the caller of ``environ``."""
        key = (_identity(environ), image_id)
        if self._memo_ttl > 0:
            with self._lock:
                hit = self._memo.get(key)
            fresh = hit is not None and self._clock() - hit[0] < self._memo_ttl
            if hit is not None and fresh and not self._changed_since(image_id, hit[1]):
                return hit[2]
        wall = self._wall_clock()
        meta = self._metadata.fetch(environ, image_id)
        if self._memo_ttl > 0 and meta.status in (200, 401, 403, 404):
            with self._lock:
                if len(self._memo) >= self._memo_size:
                    self._memo.clear()  # bounded: a rare full reset beats unbounded growth
                self._memo[key] = (self._clock(), wall, meta)
        return meta

    def _changed_since(self, image_id: str, fetched_at: float) -> bool:
        if self._changes is None:
            return False
        try:
            marked = self._changes.changed_at(image_id)
        except (OSError, ValueError):
            return True  # cannot tell: ask again
        return marked is not None and marked >= fetched_at - _MARK_SLACK

    def forget(self, image_id: str) -> None:
        """Drop memoised answers for an image (after it changed or was deleted), in every worker."""
        with self._lock:
            for key in [k for k in self._memo if k[1] == image_id]:
                del self._memo[key]
        if self._changes is not None:
            try:
                self._changes.mark_changed(image_id)
            except (OSError, ValueError):
                LOG.warning("could not mark image %s as changed for the other workers", image_id, exc_info=True)

    def call(
        self, environ: Mapping[str, Any], method: str, path: str, *, context: RequestContext | None = None
    ) -> Response:
        """Any small sub-request (HEAD, metadata) as the caller; the body is read whole."""
        request = Request.blank(path, environ=sub_environ(environ, context=context), method=method)
        return request.get_response(self.app)

    def data(
        self, environ: Mapping[str, Any], image_id: str, *, start: int = 0
    ) -> tuple[int, Mapping[str, str], Iterator[bytes]]:
        """``GET /v2/images/{id}/file`` as the caller: (status, headers, body iterator).

        ``start`` > 0 asks for the bytes from that offset on (``Range:
        bytes=start-``); the app may still answer 200 with the whole image.
        The body is streamed, never buffered; the caller must exhaust or close it.
        """
        request = Request.blank(f"/v2/images/{image_id}/file", environ=sub_environ(environ))
        if start > 0:
            request.headers["Range"] = f"bytes={start}-"
        env = request.environ
        captured: dict[str, Any] = {}

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        body = self.app(env, start_response)
        return int(captured["status"].split()[0]), dict(captured["headers"]), CountingBody(body)


def _identity(environ: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a memoised answer is keyed on: the token, else the full context."""
    context = environ.get(ENVIRON_KEY)
    token = environ.get("HTTP_X_AUTH_TOKEN")
    if isinstance(context, RequestContext):
        return (token, context.project_id, context.roles)
    return (token,)
