"""A request the service declines, as a value.

Parsing and policy functions return a :class:`Refusal` instead of raising, so
bad input travels as data to the one place that turns it into a response.
"""

from __future__ import annotations

from dataclasses import dataclass

import webob
import webob.exc


@dataclass(frozen=True)
class Refusal:
    """An HTTP error status with the short explanation the client sees."""

    status: int
    message: str
    headers: tuple[tuple[str, str], ...] = ()

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
