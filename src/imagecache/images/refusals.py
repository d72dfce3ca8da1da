"""A request the service declines, raised where the decision is made.

Parsing, policy checks, listing, the database and body reading raise a
:class:`Refusal` at the check that fails, so the checks run (and refuse) in
the order they are written; :class:`~imagecache.images.app.ImagesApp` turns
it into a response in one place, its entry, as WebOb's ``HTTPException`` is
meant to be used.
"""

from __future__ import annotations

import webob
import webob.exc

Headers = tuple[tuple[str, str], ...]


class Refusal(Exception):
    """An HTTP error status with the short explanation the client sees (and extra headers)."""

    def __init__(self, status: int, message: str, headers: Headers = ()) -> None:
        super().__init__(status, message, headers)
        self.status = status
        self.message = message
        self.headers = headers

    def __str__(self) -> str:
        return f"{self.status} {self.message}"

    def response(self, request: webob.Request) -> webob.Response:
        """Glance-style error body: webob's, text by default, JSON or HTML on request."""
        error_class = webob.exc.status_map.get(self.status, webob.exc.HTTPBadRequest)
        error = error_class(explanation=self.message, headers=list(self.headers))
        return request.get_response(error)


def bad_request(message: str) -> Refusal:
    return Refusal(400, message)


def forbidden(message: str) -> Refusal:
    return Refusal(403, message)


def not_found(message: str) -> Refusal:
    return Refusal(404, message)


def conflict(message: str) -> Refusal:
    return Refusal(409, message)
