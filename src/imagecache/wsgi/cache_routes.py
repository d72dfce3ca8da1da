"""Which requests belong to the cache management API: pure matching, no I/O.

The routes are a table of path templates (matched by
:class:`imagecache.http.routes.Routes`), each with the route every allowed
method leads to.  The API owns a few path prefixes (its *namespace*): a path
inside one that fits no template is answered 404 by the API rather than
passed on, so the app behind never sees a malformed cache-management call.
Everything outside the namespace is not ours (``None``).

``PATH_INFO`` arrives percent-decoded, so an encoded traversal such as
``%2e%2e%2f`` is already ``../`` here: it either fits no template (more
segments) or is captured as an id, which the caller validates as a UUID
before it goes near the cache.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from imagecache.http.routes import Routes, WrongMethod, split_path

__all__ = ["TABLE", "Matched", "Route", "RouteResult", "Unrouted", "WrongMethod", "in_namespace", "match", "segments"]


class Route(enum.Enum):
    """Every operation of the API; the comment is the request that names it."""

    CACHE_STATE = "cache-state"  # GET /v2/cache
    CACHE_CLEAR = "cache-clear"  # DELETE /v2/cache
    CACHE_QUEUE = "cache-queue"  # PUT /v2/cache/{id}
    CACHE_DELETE = "cache-delete"  # DELETE /v2/cache/{id}
    CACHE_CLEAN = "cache-clean"  # POST /v2/cache/clean
    CACHE_PRUNE = "cache-prune"  # POST /v2/cache/prune
    CACHE_FLEET = "cache-fleet"  # GET /v2/cache/nodes
    CACHE_NODES = "cache-nodes"  # GET /v2/cache/nodes/{id}
    CACHE_PINS = "cache-pins"  # GET /v2/cache/pins
    CACHE_ACTIVITY = "cache-activity"  # GET /v2/cache/activity
    CACHE_PIN = "cache-pin"  # PUT /v2/cache/{id}/pin
    CACHE_UNPIN = "cache-unpin"  # DELETE /v2/cache/{id}/pin
    LIST_CACHED = "list-cached"  # GET {prefix}/cached_images
    DELETE_ALL_CACHED = "delete-all-cached"  # DELETE {prefix}/cached_images
    DELETE_CACHED = "delete-cached"  # DELETE {prefix}/cached_images/{id}
    LIST_QUEUED = "list-queued"  # GET {prefix}/queued_images
    DELETE_ALL_QUEUED = "delete-all-queued"  # DELETE {prefix}/queued_images
    QUEUE = "queue"  # PUT {prefix}/queued_images/{id}
    DELETE_QUEUED = "delete-queued"  # DELETE {prefix}/queued_images/{id}


#: The placeholder that captures an image id (any one non-empty segment), and its name.
ID_NAME = "id"
ID = f"{{{ID_NAME}}}"

#: Prefixes of the legacy ``glance-cache-manage`` routes.
LEGACY_PREFIXES = ("v1", "v2")

Segments = tuple[str, ...]
Row = tuple[str, Mapping[str, Route]]


def _legacy_rows(prefix: str) -> tuple[Row, ...]:
    return (
        (f"/{prefix}/cached_images", {"GET": Route.LIST_CACHED, "DELETE": Route.DELETE_ALL_CACHED}),
        (f"/{prefix}/cached_images/{ID}", {"DELETE": Route.DELETE_CACHED}),
        (f"/{prefix}/queued_images", {"GET": Route.LIST_QUEUED, "DELETE": Route.DELETE_ALL_QUEUED}),
        (f"/{prefix}/queued_images/{ID}", {"PUT": Route.QUEUE, "DELETE": Route.DELETE_QUEUED}),
    )


#: (template, {method: route}): the first template that fits the path wins,
#: so literal segments (``clean``, ``prune``, ``nodes``, ``pins``, ``activity``) come before ``{id}``.
#: Pins and activity are ours, not Glance's: ``/v2/cache/pins``, ``/v2/cache/activity`` and ``/v2/cache/{id}/pin``
#: fit none of Glance's cache routes (``/v2/cache[/{image_id}]``, whose ids
#: are UUIDs, and ``/v2/cache/nodes/{image_id}``).
TABLE: tuple[Row, ...] = (
    ("/v2/cache", {"GET": Route.CACHE_STATE, "DELETE": Route.CACHE_CLEAR}),
    ("/v2/cache/clean", {"POST": Route.CACHE_CLEAN}),
    ("/v2/cache/prune", {"POST": Route.CACHE_PRUNE}),
    ("/v2/cache/nodes", {"GET": Route.CACHE_FLEET}),
    (f"/v2/cache/nodes/{ID}", {"GET": Route.CACHE_NODES}),
    ("/v2/cache/pins", {"GET": Route.CACHE_PINS}),
    ("/v2/cache/activity", {"GET": Route.CACHE_ACTIVITY}),
    (f"/v2/cache/{ID}", {"PUT": Route.CACHE_QUEUE, "DELETE": Route.CACHE_DELETE}),
    (f"/v2/cache/{ID}/pin", {"PUT": Route.CACHE_PIN, "DELETE": Route.CACHE_UNPIN}),
    *(row for prefix in LEGACY_PREFIXES for row in _legacy_rows(prefix)),
)
_ROUTES: Routes[Route] = Routes(TABLE)

#: Path prefixes the API owns: inside them, an unknown path is a 404 of ours.
NAMESPACES: tuple[Segments, ...] = (
    ("v2", "cache"),
    *((prefix, name) for prefix in LEGACY_PREFIXES for name in ("cached_images", "queued_images")),
)


@dataclass(frozen=True)
class Matched:
    """A route, with the raw (not yet validated) id segment for item routes."""

    route: Route
    image_id: str | None


@dataclass(frozen=True)
class Unrouted:
    """A path inside the API's namespace that names no route: 404."""


#: ``WrongMethod`` (:mod:`imagecache.http.routes`): the path names a route, the
#: method does not; 405 with ``Allow``.
RouteResult = Matched | WrongMethod | Unrouted


def segments(path: str) -> Segments | None:
    """The segments of an absolute path, or None for one that is not absolute."""
    if not path.startswith("/"):
        return None
    return split_path(path)


def in_namespace(parts: Segments) -> bool:
    return any(parts[: len(prefix)] == prefix for prefix in NAMESPACES)


def match(method: str, path: str) -> RouteResult | None:
    """The API's answer to a request line, or None when the path is not ours."""
    parts = segments(path)
    if parts is None or not in_namespace(parts):
        return None
    found = _ROUTES.match(method, path)
    if found is None:
        return Unrouted()
    if isinstance(found, WrongMethod):
        return found
    return Matched(found.handler, found.params.get(ID_NAME))
