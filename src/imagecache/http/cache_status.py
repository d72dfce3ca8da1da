"""The ``Cache-Status`` response field (RFC 9211), written in one place and without I/O.

Every image-data answer says how this node handled it, as one member of an
RFC 8941 List::

    Cache-Status: imagecache; hit
    Cache-Status: imagecache; fwd=miss; stored
    Cache-Status: imagecache; fwd=miss; collapsed
    Cache-Status: imagecache; fwd=uri-miss; detail=too-large

Each cache that handled a request adds its member at the end of the list, so
the first member is the cache nearest the origin and the last the one
nearest the user (RFC 9211 section 2).  An answer that comes through from
the image service with a Cache-Status of its own (a Glance behind a cache,
another node in front of its origin) keeps it, and ours goes last.  A value
that is not a valid List is dropped rather than kept: recipients ignore a
field that fails to parse as a whole, which would lose our member too.

:class:`CacheStatus` is one member; :func:`with_status` puts it into a
header list.  ``detail`` is sent as a Token when it is one (``too-large``),
else as a String.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = ["FIELD", "NAME", "CacheStatus", "Fwd", "combine", "is_list", "with_status"]

FIELD = "Cache-Status"
#: This cache's identifier in the list (a Token).
NAME = "imagecache"

#: Why a request went on towards the origin (RFC 9211 section 2.2).
Fwd = Literal["bypass", "method", "uri-miss", "vary-miss", "miss", "request", "stale", "partial"]

#: Longest value from the image service that is kept; a longer one is dropped.
MAX_KEPT = 4096

# RFC 8941 section 3, for the members a cache writes: Tokens, Strings, Integers,
# Decimals and Booleans, bare or as parameters, and Inner Lists of them.  Byte
# Sequences (and RFC 9651's Dates and Display Strings) are left out: a value
# using them is dropped, never kept broken.
_TOKEN = r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*"
_STRING = r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*"'
_NUMBER = r"-?(?:[0-9]{1,12}\.[0-9]{1,3}|[0-9]{1,15})"
_BARE = rf"(?:{_NUMBER}|{_STRING}|{_TOKEN}|\?[01])"
_KEY = r"[a-z*][a-z0-9_\-.*]*"
_PARAMS = rf"(?:; *{_KEY}(?:={_BARE})?)*"
_ITEM = rf"{_BARE}{_PARAMS}"
_INNER = rf"\( *(?:{_ITEM}(?: +{_ITEM})*)? *\){_PARAMS}"
_MEMBER = rf"(?:{_ITEM}|{_INNER})"
_LIST = re.compile(rf"{_MEMBER}(?:[ \t]*,[ \t]*{_MEMBER})*")
_IS_TOKEN = re.compile(_TOKEN)
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


def is_list(value: str) -> bool:
    """Whether ``value`` is a non-empty RFC 8941 List of the kinds above (leading/trailing SP allowed)."""
    return len(value) <= MAX_KEPT and _LIST.fullmatch(value.strip(" ")) is not None


def _bare(value: str) -> str:
    """``value`` as a Token if it is one, else as a String (characters a String cannot hold become ``?``)."""
    if _IS_TOKEN.fullmatch(value):
        return value
    printable = _UNPRINTABLE.sub("?", value)
    return '"' + printable.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class CacheStatus:
    """One cache's member of the list: ``hit``, or ``fwd`` with what followed it.

    RFC 9211: ``hit`` and ``fwd`` exclude each other; ``fwd-status``,
    ``stored`` and ``collapsed`` mean something only with ``fwd``.
    """

    hit: bool = False
    fwd: Fwd | None = None
    fwd_status: int | None = None
    stored: bool = False
    collapsed: bool = False
    detail: str | None = None
    name: str = NAME

    def __post_init__(self) -> None:
        if self.hit == (self.fwd is not None):
            raise ValueError("a Cache-Status member is either a hit or forwarded (fwd), not both or neither")
        if self.hit and (self.stored or self.collapsed or self.fwd_status is not None):
            raise ValueError("stored, collapsed and fwd-status go with fwd only")
        if self.fwd_status is not None and not 100 <= self.fwd_status <= 599:
            raise ValueError(f"not an HTTP status: {self.fwd_status}")
        if not _IS_TOKEN.fullmatch(self.name):
            raise ValueError(f"a cache's name must be a Token: {self.name!r}")

    @property
    def member(self) -> str:
        """This member as RFC 9211 writes it: ``imagecache; fwd=miss; stored``."""
        params = ["hit"] if self.hit else [f"fwd={self.fwd}"]
        if self.fwd_status is not None:
            params.append(f"fwd-status={self.fwd_status}")
        params += [name for name, on in (("stored", self.stored), ("collapsed", self.collapsed)) if on]
        if self.detail is not None:
            params.append(f"detail={_bare(self.detail)}")
        return "; ".join([self.name, *params])


def combine(existing: Iterable[str], status: CacheStatus) -> str:
    """The field value: the valid list the response already had (its field lines joined), then ours."""
    earlier = ", ".join(value.strip(" \t") for value in existing if value.strip(" \t"))
    return f"{earlier}, {status.member}" if earlier and is_list(earlier) else status.member


def with_status(headers: Iterable[tuple[str, str]], status: CacheStatus) -> list[tuple[str, str]]:
    """``headers`` with one Cache-Status field, ours appended to any valid one they carried."""
    kept: list[tuple[str, str]] = []
    existing: list[str] = []
    for name, value in headers:
        if name.lower() == "cache-status":
            existing.append(value)
        else:
            kept.append((name, value))
    return [*kept, (FIELD, combine(existing, status))]
