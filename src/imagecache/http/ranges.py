"""HTTP ``Range`` and ``If-Range`` (RFC 9110 sections 13.1.5 and 14), without I/O.

One rule for every answer the node gives about image data, whichever layer
gives it (the cache's hit path, a miss or a fill follower, a request passed
through to the image service, the embedded image service itself), so that
the answer never depends on whether the image happens to be cached.
:func:`select` is the entry point: given the request's ``Range`` and
``If-Range`` values, the entity's size and its current entity tag, it says
what to send: :class:`Whole` (200), :class:`ByteRange` (206) or
:class:`Unsatisfiable` (416); :func:`response_headers` gives the headers
that go with it.

Validators.  The node issues exactly one validator for image data: a strong
``ETag`` whose opaque tag is the image's checksum (its md5, hex), built by
:func:`entity_tag`, on every 200 and 206 carrying image data.  It issues no
``Last-Modified``.  An image's data never changes once it is active (Glance
refuses a second upload), so the checksum names its bytes exactly, on every
node and in every mode.  Hence, for ``If-Range``:

* a strong entity tag equal to the current ``ETag`` lets the Range be
  evaluated;
* anything else makes the server ignore the Range and send the whole entity
  with 200: a weak tag (``W/"..."``, never usable with If-Range), another
  tag, an HTTP-date (we issue no Last-Modified to compare it with), or a
  value that is neither;
* If-Range without Range is ignored, as RFC 9110 requires.

Range parsing comes in two steps, so that a caller may stop after the first:

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

``Content-MD5`` (the md5 of the body, as Glance sends it) goes only with
whole-entity answers: of a part it would be the wrong digest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "ByteRange",
    "ContentRange",
    "IntRange",
    "RangeSpec",
    "Selection",
    "SuffixRange",
    "Unsatisfiable",
    "Whole",
    "entity_headers",
    "entity_tag",
    "if_range_matches",
    "parse_content_range",
    "parse_range",
    "parse_range_header",
    "resolve",
    "response_headers",
    "select",
    "status_line",
]

# token = 1*tchar (RFC 9110 section 5.6.2)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_INT_RANGE = re.compile(r"([0-9]+)-([0-9]*)")
_SUFFIX_RANGE = re.compile(r"-([0-9]+)")
_OWS = " \t"
# entity-tag = [ weak ] opaque-tag; opaque-tag = DQUOTE *etagc DQUOTE (RFC 9110 8.8.3)
_ETAGC = re.compile(r"[\x21\x23-\x7e\x80-\xff]+")
_STRONG_TAG = re.compile(r'"[\x21\x23-\x7e\x80-\xff]*"')
_CONTENT_RANGE = re.compile(r"bytes[ \t]+([0-9]+)-([0-9]+)/([0-9]+|\*)", re.IGNORECASE)

# Numbers longer than this are larger than any entity we could hold; they are
# kept as a cap so that int() never meets Python's digit limit (CVE-2020-10735).
_MAX_DIGITS = 64
_HUGE: int = 10**_MAX_DIGITS


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

    @property
    def header(self) -> str:
        """The same range as a plain ``Range`` value, for a request passed on."""
        return f"bytes={self.first}-{self.last}"

    @property
    def status(self) -> int:
        return 206


@dataclass(frozen=True)
class Unsatisfiable:
    """A valid range that selects nothing of a ``size``-byte entity (416)."""

    size: int

    @property
    def content_range(self) -> str:
        """The 416 response's ``Content-Range`` value."""
        return f"bytes */{self.size}"

    @property
    def status(self) -> int:
        return 416


@dataclass(frozen=True)
class Whole:
    """The whole ``size``-byte entity (200): no Range, or one to ignore."""

    size: int

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError(f"entity size must not be negative, not {self.size}")

    @property
    def first(self) -> int:
        """Where the body starts (so a body can be built alike for 200 and 206)."""
        return 0

    @property
    def length(self) -> int:
        """Number of bytes sent (the response's Content-Length)."""
        return self.size

    @property
    def status(self) -> int:
        return 200


#: What to send for a request: the whole entity, one part of it, or 416.
Selection = Whole | ByteRange | Unsatisfiable

_REASONS = {200: "OK", 206: "Partial Content", 416: "Range Not Satisfiable"}


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


# -- validators and If-Range ----------------------------------------------------------


def entity_tag(checksum: object) -> str | None:
    """The strong ``ETag`` the node issues for an image's data: its checksum, quoted.

    None when there is no checksum to build one from (or it could not be an
    opaque tag): such data goes without ETag, and no If-Range matches it.
    """
    if not isinstance(checksum, str) or not _ETAGC.fullmatch(checksum):
        return None
    return f'"{checksum}"'


def if_range_matches(if_range: str, etag: str | None) -> bool:
    """Whether an If-Range value lets the Range be evaluated (RFC 9110 13.1.5).

    Only a strong entity tag equal to ``etag`` does (strong comparison: the
    same opaque tag, neither weak).  A weak tag, an HTTP-date (the node
    issues no Last-Modified) or anything malformed does not.
    """
    value = if_range.strip(_OWS)
    return etag is not None and value == etag and _STRONG_TAG.fullmatch(value) is not None


def select(range_header: str | None, if_range: str | None, size: int, etag: str | None) -> Selection:
    """What to send for a GET of a ``size``-byte entity whose ETag is ``etag``.

    ``range_header`` and ``if_range`` are the request's field values (None
    when absent).  An If-Range that does not match, like a Range to ignore,
    gives :class:`Whole`; If-Range without Range changes nothing.
    """
    whole = Whole(size)
    if range_header is None:
        return whole
    if if_range is not None and not if_range_matches(if_range, etag):
        return whole
    spec = parse_range_header(range_header)
    if spec is None:
        return whole
    return resolve(spec, size)


# -- the answer's status and headers ---------------------------------------------------


def status_line(selection: Selection) -> str:
    """The WSGI status line for ``selection``."""
    return f"{selection.status} {_REASONS[selection.status]}"


def entity_headers(etag: str | None) -> list[tuple[str, str]]:
    """What every 200 and 206 of the entity says: Ranges are served, and its validator."""
    headers = [("Accept-Ranges", "bytes")]
    if etag is not None:
        headers.append(("ETag", etag))
    return headers


def response_headers(
    selection: Selection, etag: str | None, *, content_md5: str | None = None
) -> list[tuple[str, str]]:
    """The range-related headers of the answer for ``selection`` (the caller adds Content-Type).

    200: Accept-Ranges, ETag, Content-MD5 (when given), Content-Length; 206:
    Accept-Ranges, ETag, Content-Range, Content-Length; 416 (whose body is
    empty): Content-Range and Content-Length only.
    """
    if isinstance(selection, Unsatisfiable):
        return [("Content-Range", selection.content_range), ("Content-Length", "0")]
    headers = entity_headers(etag)
    if isinstance(selection, ByteRange):
        headers.append(("Content-Range", selection.content_range))
    elif content_md5:
        headers.append(("Content-MD5", content_md5))
    headers.append(("Content-Length", str(selection.length)))
    return headers


class ContentRange(NamedTuple):
    """A 206's ``Content-Range``: inclusive first..last of size (None: ``*``)."""

    first: int
    last: int
    size: int | None


def parse_content_range(value: str | None) -> ContentRange | None:
    """A response's ``bytes first-last/size`` (to check what an app sent), or None if it is not one."""
    if not value:
        return None
    match = _CONTENT_RANGE.fullmatch(value.strip(_OWS))
    if match is None:
        return None
    first, last, size = match.groups()
    if _digits_greater(first, last):
        return None
    parsed = ContentRange(_number(first), _number(last), None if size == "*" else _number(size))
    if parsed.size is not None and parsed.last >= parsed.size:
        return None
    return parsed
