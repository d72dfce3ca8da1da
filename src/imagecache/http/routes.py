"""Route templates matched against request paths: pure, no I/O.

A template is ``/``-separated segments, each a literal or a ``{name}``
placeholder that captures one non-empty segment (``/v2/cache/{image_id}``).
A path is split the same way, after its leading ``/``, and matched segment
by segment: nothing is normalised, so a trailing slash or a doubled one is
an empty segment that only an empty literal fits (``/v2/cache/`` is not
``/v2/cache``), and both ``""`` and ``"/"`` are the root.

:class:`Routes` holds ordered rows of (template, {method: handler}).  The
first template that fits the path decides: the handler for the method
(:class:`Matched`), or :class:`WrongMethod` with the methods it has (a 405
with ``Allow``); None when no template fits.  So ``/v1/images/detail``
placed before ``/v1/images/{image_id}`` is never read as an image id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Matched", "Routes", "Template", "WrongMethod", "is_placeholder", "split_path"]

H = TypeVar("H")


def split_path(path: str) -> tuple[str, ...]:
    """The segments of ``path`` after its leading ``/`` (the root is one empty segment)."""
    return tuple(path.removeprefix("/").split("/"))


def is_placeholder(segment: str) -> bool:
    """Whether a template segment is ``{name}`` (``{}`` is one too, with an empty name)."""
    return len(segment) >= 2 and segment.startswith("{") and segment.endswith("}")


@dataclass(frozen=True)
class Template:
    """One path template, split into segments."""

    segments: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Template:
        return cls(split_path(text))

    def fit(self, parts: Sequence[str]) -> dict[str, str] | None:
        """The values ``parts`` gives the placeholders, or None when it does not fit."""
        if len(parts) != len(self.segments):
            return None
        captured: dict[str, str] = {}
        for want, got in zip(self.segments, parts, strict=True):
            if is_placeholder(want):
                if not got:
                    return None
                captured[want[1:-1]] = got
            elif want != got:
                return None
        return captured


@dataclass(frozen=True)
class Matched(Generic[H]):
    """The template fits and has the method: its handler and the captured values."""

    handler: H
    params: Mapping[str, str]
    #: Every method of the template, in the order the row lists them.
    allowed: tuple[str, ...]


@dataclass(frozen=True)
class WrongMethod:
    """The template fits, the method is not one of its: 405, ``Allow`` lists these (row order)."""

    allowed: tuple[str, ...]


@dataclass(frozen=True)
class _Row(Generic[H]):
    template: Template
    methods: Mapping[str, H]


class Routes(Generic[H]):
    """Ordered (template, {method: handler}) rows; see the module docstring for the rules."""

    def __init__(self, rows: Iterable[tuple[str, Mapping[str, H]]]) -> None:
        self._rows = tuple(_Row(Template.parse(template), dict(methods)) for template, methods in rows)

    def rows(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Every (template, methods) in matching order: what the API document must describe."""
        return tuple(("/" + "/".join(row.template.segments), tuple(row.methods)) for row in self._rows)

    def match(self, method: str, path: str) -> Matched[H] | WrongMethod | None:
        """What the first template that fits ``path`` says to ``method``; None when none fits."""
        parts = split_path(path)
        for row in self._rows:
            params = row.template.fit(parts)
            if params is None:
                continue
            allowed = tuple(row.methods)
            if method not in row.methods:
                return WrongMethod(allowed)
            return Matched(row.methods[method], params, allowed)
        return None
