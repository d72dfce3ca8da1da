"""Calling a WSGI app in-process as a test client would."""

from __future__ import annotations

from typing import Any

from webob import Request

from imagecache.http.context import RequestContext, set_context


def call(app: Any, method: str, path: str, body: bytes | None = None, content_type: str | None = None,
         headers: dict[str, str] | None = None, project_id: str = "p1") -> Any:
    """One request as an admin of ``project_id``, its body read whole (as a client would)."""
    request = Request.blank(path, method=method, headers=headers or {})
    set_context(request.environ, RequestContext.admin(project_id=project_id))
    if body is not None:
        request.body = body
        request.content_type = content_type
    response = request.get_response(app)
    response.body  # noqa: B018 - read it all, as a client would
    return response
