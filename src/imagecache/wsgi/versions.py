"""Advertise the cache API in front of an upstream that has no cache of its own.

glanceclient checks ``/versions`` for v2.14 before every ``cache-*`` command.
Glance lists v2.14, v2.16 and v2.18 only when it has an image cache; an edge
node serves those APIs itself, so it adds them to the upstream's answer (and
v2.18 becomes CURRENT, as in a Glance with a cache).  Everything else in the
document is the upstream's.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any

from webob import Request

from imagecache.http.types import StartResponse, WSGIApplication, WSGIEnvironment

#: The versions a Glance lists only when it has a cache (glance/api/versions.py).
CACHE_VERSIONS = ("v2.14", "v2.16", "v2.18")
CURRENT = "v2.18"
_PATHS = frozenset({"/", "/versions"})


def with_cache_versions(document: Any) -> Any:
    """The versions document with the cache API versions added (pure; unknown shapes unchanged)."""
    versions = document.get("versions") if isinstance(document, dict) else None
    if not isinstance(versions, list) or not versions:
        return document
    present = {v.get("id") for v in versions if isinstance(v, dict)}
    template = next((v for v in versions if isinstance(v, dict) and str(v.get("id", "")).startswith("v2")), None)
    if template is None or all(version in present for version in CACHE_VERSIONS):
        return document
    added = []
    for version in CACHE_VERSIONS:
        if version not in present:
            entry = copy.deepcopy(template)
            entry["id"] = version
            added.append(entry)
    result = dict(document)
    result["versions"] = [*added, *copy.deepcopy(versions)]
    for entry in result["versions"]:
        if isinstance(entry, dict) and "status" in entry:
            entry["status"] = "CURRENT" if entry.get("id") == CURRENT else (
                "SUPPORTED" if entry["status"] == "CURRENT" else entry["status"]
            )
    return result


class CacheVersions:
    """WSGI filter: the upstream's ``/`` and ``/versions`` with the cache versions added."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD") or environ.get("PATH_INFO", "") not in _PATHS:
            return self.app(environ, start_response)
        request = Request(environ)
        response = request.get_response(self.app)
        if response.status_code in (200, 300) and response.content_type == "application/json":
            try:
                document = json.loads(response.body)
            except ValueError:
                document = None
            changed = with_cache_versions(document)
            if changed is not document:
                response.body = json.dumps(changed).encode()
        return response(environ, start_response)
