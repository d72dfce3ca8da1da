"""The WSGI types every layer names, in one place: PEP 3333's, as ``wsgiref.types`` spells them.

Re-exported rather than redeclared, so a middleware, an app and the server
agree on one meaning of "start_response" and "environ" and the type checker
can hold them to it.
"""

from __future__ import annotations

from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["StartResponse", "WSGIApplication", "WSGIEnvironment"]
