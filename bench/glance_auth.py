"""A stand-in for keystonemiddleware's ``authtoken`` in front of a real Glance.

Loaded *inside Glance's own venv* (``bench/.glance-venv``) as a paste filter,
so it imports nothing but the standard library.  It does what ``authtoken``
does with ``delay_auth_decision = true``, from a static table instead of
Keystone:

* every identity header a client sent (``X-Identity-Status``, ``X-Roles``,
  ``X-Project-Id``, ``X-User-Id``, ...) is removed, so nobody can claim roles
  by sending headers;
* a known ``X-Auth-Token`` becomes ``X-Identity-Status: Confirmed`` plus the
  token's ``X-Project-Id``, ``X-User-Id`` and ``X-Roles``;
* no token or an unknown one becomes ``X-Identity-Status: Invalid``, and
  Glance's own ``ContextMiddleware`` answers 401 (as behind Keystone).

Glance's ``context`` filter then builds a real, non-admin-unless-``admin``
``RequestContext``, and Glance's default (new-style) policies decide, so a
member's view of a deactivated image is a real 403.

The table is a JSON file named by the filter's ``tokens_file`` option:
``{"<token>": {"project": "p-admin", "roles": ["admin", "member", "reader"],
"user": "u-admin"}, ...}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

#: What keystonemiddleware strips from every request before it sets its own.
_IDENTITY_HEADERS = (
    "HTTP_X_IDENTITY_STATUS", "HTTP_X_SERVICE_IDENTITY_STATUS",
    "HTTP_X_ROLES", "HTTP_X_ROLE", "HTTP_X_SERVICE_ROLES",
    "HTTP_X_PROJECT_ID", "HTTP_X_PROJECT_NAME", "HTTP_X_PROJECT_DOMAIN_ID", "HTTP_X_PROJECT_DOMAIN_NAME",
    "HTTP_X_TENANT_ID", "HTTP_X_TENANT_NAME", "HTTP_X_TENANT",
    "HTTP_X_USER_ID", "HTTP_X_USER_NAME", "HTTP_X_USER", "HTTP_X_USER_DOMAIN_ID", "HTTP_X_USER_DOMAIN_NAME",
    "HTTP_X_DOMAIN_ID", "HTTP_X_DOMAIN_NAME", "HTTP_X_SYSTEM_SCOPE", "HTTP_X_IS_ADMIN_PROJECT",
    "HTTP_X_SERVICE_CATALOG",
)


class StaticTokenAuth:
    """WSGI middleware: X-Auth-Token -> Keystone's identity headers (see module doc)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], tokens: Mapping[str, Mapping[str, Any]]) -> None:
        self.app = app
        self.tokens = dict(tokens)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        for key in _IDENTITY_HEADERS:
            environ.pop(key, None)
        identity = self.tokens.get(environ.get("HTTP_X_AUTH_TOKEN", ""))
        if identity is None:
            environ["HTTP_X_IDENTITY_STATUS"] = "Invalid"
        else:
            environ["HTTP_X_IDENTITY_STATUS"] = "Confirmed"
            environ["HTTP_X_PROJECT_ID"] = str(identity["project"])
            environ["HTTP_X_USER_ID"] = str(identity.get("user") or identity["project"] + "-user")
            environ["HTTP_X_ROLES"] = ",".join(identity["roles"])
        return self.app(environ, start_response)


def load_tokens(path: str) -> dict[str, dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, dict) or not all(
        isinstance(entry, dict) and entry.get("project") and isinstance(entry.get("roles"), list)
        for entry in data.values()
    ):
        raise ValueError(f"{path}: expected {{token: {{project, roles, [user]}}}}")
    return data


def filter_factory(global_conf: Mapping[str, Any], **local_conf: Any) -> Callable[..., StaticTokenAuth]:
    """paste.deploy: ``paste.filter_factory = bench.glance_auth:filter_factory`` with ``tokens_file``."""
    tokens = load_tokens(local_conf["tokens_file"])
    return lambda app: StaticTokenAuth(app, tokens)
