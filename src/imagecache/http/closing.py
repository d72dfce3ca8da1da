"""Closing what a WSGI app returned, whatever it is, without letting closing fail.

PEP 3333: whoever gets an app's iterable must call its ``close()`` if it has
one, iterated or not, and that is how a proxied body gives its connection
back.  A failure to close is no failure of the request being answered.
"""

from __future__ import annotations

import logging

__all__ = ["quiet_close"]

LOG = logging.getLogger(__name__)


def quiet_close(iterable: object) -> None:
    """Call ``iterable.close()`` if it has one; a failure is logged at debug level, never raised."""
    close = getattr(iterable, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception:
        LOG.debug("closing %r failed", iterable, exc_info=True)
