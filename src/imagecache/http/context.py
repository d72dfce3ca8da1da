"""Who is calling: the request context shared by every layer of the pipeline.

The auth middleware puts a :class:`RequestContext` into the WSGI environ under
:data:`ENVIRON_KEY`; the image service and the cache filter read it from there.
A request with no context (an app used without the auth middleware) is
treated as anonymous, never as admin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ENVIRON_KEY = "imagecache.context"


@dataclass(frozen=True)
class RequestContext:
    """The caller's identity as the image service needs it."""

    project_id: str | None = None
    roles: tuple[str, ...] = field(default_factory=tuple)
    auth_token: str | None = None
    user_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @classmethod
    def admin(cls, project_id: str | None = None, auth_token: str | None = None) -> RequestContext:
        return cls(project_id=project_id, roles=("admin",), auth_token=auth_token)


ANONYMOUS = RequestContext()


def get_context(environ: Mapping[str, Any]) -> RequestContext:
    """The caller's context, or the anonymous context when none was set."""
    context = environ.get(ENVIRON_KEY)
    return context if isinstance(context, RequestContext) else ANONYMOUS


def set_context(environ: dict[str, Any], context: RequestContext) -> None:
    environ[ENVIRON_KEY] = context
