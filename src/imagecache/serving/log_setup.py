"""The node's own log records on stderr, formatted like gunicorn's, so one stream reads as one log."""

from __future__ import annotations

import logging
import sys

__all__ = ["configure_logging"]


def configure_logging(level: str) -> None:
    """Our own log records on stderr, formatted like gunicorn's."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(
            "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s",
            "%Y-%m-%d %H:%M:%S %z",
        )
    )
    logger = logging.getLogger("imagecache")
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
