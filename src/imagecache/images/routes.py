"""The image service's route table: path templates and methods to handlers.

Matching is :class:`imagecache.http.routes.Routes` (templates of literal
segments and ``{name}`` placeholders, the first template that fits the path
decides); this table answers in the shape the app dispatches on, with the
allowed methods sorted for its ``Allow`` header.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from imagecache.http.routes import Routes, WrongMethod

H = TypeVar("H")


@dataclass(frozen=True)
class Match(Generic[H]):
    """The route that fits a path: the handler for the method (None: 405)."""

    handler: H | None
    params: Mapping[str, str]
    allowed: tuple[str, ...]


class RouteTable(Generic[H]):
    """Ordered routes; the first template that fits the path decides (see :mod:`imagecache.http.routes`)."""

    def __init__(self, routes: Iterable[tuple[str, Mapping[str, H]]]) -> None:
        self._routes: Routes[H] = Routes(routes)

    def rows(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Every (template, methods), in matching order."""
        return self._routes.rows()

    def match(self, path: str, method: str) -> Match[H] | None:
        """The match for ``method`` on ``path``, or None when no template fits (404)."""
        found = self._routes.match(method, path)
        if found is None:
            return None
        allowed = tuple(sorted(found.allowed))
        if isinstance(found, WrongMethod):
            return Match(None, {}, allowed)
        return Match(found.handler, found.params, allowed)
