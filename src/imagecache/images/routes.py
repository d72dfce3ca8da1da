"""A route table: path templates and methods to handlers, matched without I/O.

Templates are ``/``-separated literal segments and ``{name}`` placeholders
that capture one non-empty segment.  Routes are tried in order and the first
template that fits the path decides: its handler for the method, or a 405
listing the methods it has.  So ``/v1/images/detail`` placed before
``/v1/images/{image_id}`` is never read as an image id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

H = TypeVar("H")


@dataclass(frozen=True)
class Match(Generic[H]):
    """The route that fits a path: the handler for the method (None: 405)."""

    handler: H | None
    params: Mapping[str, str]
    allowed: tuple[str, ...]


@dataclass(frozen=True)
class _Route(Generic[H]):
    segments: tuple[str, ...]
    methods: Mapping[str, H]

    def params(self, parts: list[str]) -> dict[str, str] | None:
        if len(parts) != len(self.segments):
            return None
        captured: dict[str, str] = {}
        for template, part in zip(self.segments, parts, strict=True):
            if template.startswith("{") and template.endswith("}"):
                if not part:
                    return None
                captured[template[1:-1]] = part
            elif template != part:
                return None
        return captured


def _split(path: str) -> list[str]:
    """Segments of ``path``; an empty path is the root, ``/``."""
    return path.removeprefix("/").split("/")


class RouteTable(Generic[H]):
    """Ordered routes; see the module docstring for the matching rules."""

    def __init__(self, routes: Iterable[tuple[str, Mapping[str, H]]]) -> None:
        self._routes = tuple(_Route(tuple(_split(template)), dict(methods)) for template, methods in routes)

    def match(self, path: str, method: str) -> Match[H] | None:
        """The match for ``method`` on ``path``, or None when no template fits (404)."""
        parts = _split(path)
        for route in self._routes:
            params = route.params(parts)
            if params is None:
                continue
            return Match(route.methods.get(method), params, tuple(sorted(route.methods)))
        return None
