"""The one way a test waits: for a condition, with a deadline.

A test never sleeps and then asserts: on a shared machine "a moment later"
can be seconds.  It waits for what it needs to be true, polling with a
short back-off, and fails with a message that says what never happened
(and, when given, what was seen last).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Long enough for a busy 2-core machine, short enough to fail a hung test.
DEFAULT_TIMEOUT = 30.0


class WaitTimeout(AssertionError):
    """The condition did not hold before the deadline."""


def wait_until(
    condition: Callable[[], T],
    what: str = "the condition",
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.005,
    max_interval: float = 0.1,
    describe: Callable[[], object] | None = None,
) -> T:
    """Poll ``condition`` until it returns something truthy, and return that.

    Raises :class:`WaitTimeout` (an AssertionError) naming ``what`` after
    ``timeout`` seconds; ``describe()``, if given, is added to the message
    (a log tail, the last listing).
    """
    deadline = time.monotonic() + timeout
    delay = interval
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            detail = f": {describe()}" if describe is not None else ""
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what}{detail}")
        time.sleep(delay)
        delay = min(delay * 2, max_interval)
