"""http/types re-exports PEP 3333's types; http/context reads and writes the caller's identity."""

from __future__ import annotations

import wsgiref.types

from imagecache.http import types
from imagecache.http.context import ANONYMOUS, ENVIRON_KEY, RequestContext, get_context, set_context


def test_the_wsgi_types_are_wsgiref_s_own() -> None:
    assert types.StartResponse is wsgiref.types.StartResponse
    assert types.WSGIEnvironment is wsgiref.types.WSGIEnvironment
    assert types.WSGIApplication is wsgiref.types.WSGIApplication


def test_a_request_without_a_context_is_anonymous_never_admin() -> None:
    assert get_context({}) is ANONYMOUS and not ANONYMOUS.is_admin
    assert get_context({ENVIRON_KEY: "not a context"}) is ANONYMOUS


def test_set_then_get() -> None:
    environ: dict[str, object] = {}
    admin = RequestContext.admin(project_id="p", auth_token="t")
    set_context(environ, admin)
    assert get_context(environ) is admin and admin.is_admin and admin.roles == ("admin",)
