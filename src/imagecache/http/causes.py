"""The message worth showing from an exception chain.

urllib3 wraps a socket error several layers deep (``MaxRetryError`` holding
a ``NewConnectionError`` holding the ``ConnectionRefusedError``), keeping
the cause as ``__cause__``, ``__context__``, a ``reason`` or an argument.
The innermost one says what actually happened.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["chain", "innermost"]


def _inner(error: BaseException) -> BaseException | None:
    """The exception ``error`` wraps, wherever it keeps it, or None."""
    inner = error.__cause__ or error.__context__
    if inner is not None:
        return inner
    reason = getattr(error, "reason", None)
    if isinstance(reason, BaseException):
        return reason
    return next((arg for arg in error.args if isinstance(arg, BaseException)), None)


def chain(error: BaseException) -> Iterator[BaseException]:
    """``error``, then each exception it wraps, outermost first.

    A chain that loops back on itself ends before the first exception seen twice.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = _inner(current)


def innermost(error: BaseException) -> str:
    """The innermost exception's message (its type's name if it has none)."""
    *_, last = chain(error)
    return str(last) or type(last).__name__
