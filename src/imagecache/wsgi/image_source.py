"""Ask the image app behind a filter about an image, as a given caller.

The cache never decides on its own who may see an image: it asks the app it
sits in front of (the embedded image service, or the upstream proxy) with the
caller's own credentials, so hits are authorized exactly like misses in both
modes.  The same sub-requests give the management API and the prefetcher the
image's status, checksums and data.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from webob import Request, Response

from imagecache.http.context import ENVIRON_KEY, RequestContext, get_context, set_context
from imagecache.http.errors import UPSTREAM_ERROR_HEADER
from imagecache.http.types import WSGIApplication
from imagecache.wsgi.bodies import CountingBody

LOG = logging.getLogger(__name__)

#: Request headers a sub-request carries over from the caller's request.
_FORWARDED = ("HTTP_X_AUTH_TOKEN", "HTTP_X_PROJECT_ID", "HTTP_X_TENANT_ID", "HTTP_X_ROLES", "HTTP_X_IDENTITY_STATUS")
_BASE = ("HTTP_HOST", "SERVER_NAME", "SERVER_PORT", "wsgi.url_scheme", "SCRIPT_NAME")


def upstream_failed(response: Response) -> bool:
    """Whether ``response`` says the upstream could not be reached (not that it answered)."""
    return UPSTREAM_ERROR_HEADER in response.headers


@dataclass(frozen=True)
class ImageMeta:
    """The answer to "what is this image, for this caller?"."""

    status: int  # the HTTP status the app answered
    image: Mapping[str, Any] | None  # the image's JSON when status is 200
    response: Response  # the app's response, to pass on as it is when not 200

    @property
    def found(self) -> bool:
        return self.status == 200 and self.image is not None


def sub_environ(environ: Mapping[str, Any], *, context: RequestContext | None = None) -> dict[str, Any]:
    """The parts of the caller's environ a sub-request keeps (identity, host)."""
    base = {key: environ[key] for key in _FORWARDED + _BASE if key in environ}
    set_context(base, context if context is not None else get_context(environ))
    return base


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
    ) -> None:
        self.app = app
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
        meta = self._fetch_metadata(environ, image_id)
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

    def _fetch_metadata(self, environ: Mapping[str, Any], image_id: str) -> ImageMeta:
        request = Request.blank(f"/v2/images/{image_id}", environ=sub_environ(environ))
        request.headers["Accept"] = "application/json"
        response = request.get_response(self.app)
        image = None
        if response.status_code == 200:
            try:
                body = json.loads(response.body)
            except ValueError:
                body = None
            image = body if isinstance(body, dict) else None
        return ImageMeta(response.status_code, image, response)

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
