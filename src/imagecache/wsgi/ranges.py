"""HTTP ``Range`` request headers (RFC 9110, section 14), without I/O.

Two steps, so that callers that do not yet know the entity size (a cache
filter deciding whether a request is a partial one) can stop after the first:

* :func:`parse_range_header` turns header text into a :data:`RangeSpec`
  (``bytes=a-b``, ``bytes=a-`` or ``bytes=-n``), or ``None`` when the header
  must be ignored;
* :func:`resolve` applies a spec to an entity of ``size`` bytes and gives a
  :class:`ByteRange` (serve 206) or :class:`Unsatisfiable` (serve 416).

:func:`parse_range` does both.  ``None`` always means "ignore the header and
send the whole entity with 200", which RFC 9110 allows a server to do with any
Range header.  We use that freedom for:

* headers that are not valid ``ranges-specifier`` syntax (including
  ``first > last`` and characters outside the grammar);
* range units other than ``bytes``;
* more than one range (``bytes=0-1,5-6``): we do not produce
  ``multipart/byteranges`` bodies, and serving the full entity is the
  behaviour the RFC offers for exactly that case.

Whitespace: the field value may carry leading and trailing SP/HTAB, and list
elements may be surrounded by optional whitespace and be empty
(``bytes=0-1,`` is one range), as RFC 9110 section 5.6.1 requires recipients
to accept.  No whitespace is allowed inside a range-spec or around ``=``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "ByteRange",
    "IntRange",
    "RangeSpec",
    "SuffixRange",
    "Unsatisfiable",
    "parse_range",
    "parse_range_header",
    "resolve",
]

# token = 1*tchar (RFC 9110 section 5.6.2)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_INT_RANGE = re.compile(r"([0-9]+)-([0-9]*)")
_SUFFIX_RANGE = re.compile(r"-([0-9]+)")
_OWS = " \t"

# Numbers longer than this are larger than any entity we could hold; they are
# kept as a cap so that int() never meets Python's digit limit (CVE-2020-10735).
_MAX_DIGITS = 64
_HUGE = 10**_MAX_DIGITS


@dataclass(frozen=True)
class IntRange:
    """``first-last`` or ``first-`` (``last`` is None): positions, inclusive."""

    first: int
    last: int | None = None


@dataclass(frozen=True)
class SuffixRange:
    """``-length``: the final ``length`` bytes."""

    length: int


RangeSpec = IntRange | SuffixRange


@dataclass(frozen=True)
class ByteRange:
    """A satisfiable range: inclusive ``first``..``last`` of ``size`` bytes."""

    first: int
    last: int
    size: int

    def __post_init__(self) -> None:
        if not 0 <= self.first <= self.last < self.size:
            raise ValueError(f"not a range of a {self.size}-byte entity: {self.first}-{self.last}")

    @property
    def length(self) -> int:
        """Number of bytes selected (the response's Content-Length)."""
        return self.last - self.first + 1

    @property
    def content_range(self) -> str:
        """The 206 response's ``Content-Range`` value."""
        return f"bytes {self.first}-{self.last}/{self.size}"

    def as_slice(self) -> slice:
        """The same bytes as a Python slice of the entity."""
        return slice(self.first, self.last + 1)


@dataclass(frozen=True)
class Unsatisfiable:
    """A valid range that selects nothing of a ``size``-byte entity (416)."""

    size: int

    @property
    def content_range(self) -> str:
        """The 416 response's ``Content-Range`` value."""
        return f"bytes */{self.size}"


def _number(digits: str) -> int:
    significant = digits.lstrip("0")
    if len(significant) > _MAX_DIGITS:
        return _HUGE
    return int(significant or "0")


def _digits_greater(a: str, b: str) -> bool:
    """Compare two digit strings numerically without converting them."""
    a, b = a.lstrip("0"), b.lstrip("0")
    return (len(a), a) > (len(b), b)


def _parse_spec(text: str) -> RangeSpec | None:
    match = _INT_RANGE.fullmatch(text)
    if match:
        first, last = match.groups()
        if not last:
            return IntRange(_number(first))
        if _digits_greater(first, last):
            return None  # RFC 9110 14.1.1: first-pos > last-pos is invalid
        return IntRange(_number(first), _number(last))
    match = _SUFFIX_RANGE.fullmatch(text)
    if match:
        return SuffixRange(_number(match.group(1)))
    return None


def parse_range_header(header: str | None) -> RangeSpec | None:
    """The single byte range a Range header asks for, or None to ignore it."""
    if not header:
        return None
    unit, sep, range_set = header.strip(_OWS).partition("=")
    if not sep or not _TOKEN.fullmatch(unit) or unit.lower() != "bytes":
        return None
    elements = [element.strip(_OWS) for element in range_set.split(",")]
    specs = [element for element in elements if element]
    if len(specs) != 1:
        return None  # no range at all, or several: serve the whole entity
    return _parse_spec(specs[0])


def resolve(spec: RangeSpec, size: int) -> ByteRange | Unsatisfiable:
    """Apply ``spec`` to an entity of ``size`` bytes (RFC 9110 14.1.2-3).

    An empty entity satisfies no range: no ``Content-Range`` can describe a
    part of it, so every range of it is answered with 416.
    """
    if size < 0:
        raise ValueError(f"entity size must not be negative, not {size}")
    if size == 0:
        return Unsatisfiable(size)
    if isinstance(spec, SuffixRange):
        if spec.length == 0:
            return Unsatisfiable(size)
        return ByteRange(max(0, size - spec.length), size - 1, size)
    if spec.first >= size:
        return Unsatisfiable(size)
    last = size - 1 if spec.last is None else min(spec.last, size - 1)
    return ByteRange(spec.first, last, size)


def parse_range(header: str | None, size: int) -> ByteRange | Unsatisfiable | None:
    """What to send for ``header`` on a ``size``-byte entity.

    ``ByteRange``: 206 with its ``content_range``; ``Unsatisfiable``: 416 with
    its ``content_range``; ``None``: ignore the header, 200 with everything.
    """
    spec = parse_range_header(header)
    if spec is None:
        return None
    return resolve(spec, size)
