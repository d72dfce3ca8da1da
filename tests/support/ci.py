"""Tests that cannot run skip and say why, except under ``CI=true``, where they fail.

CI must never pass by skipping what it exists to run (the central index
tests without their PostgreSQL, the packaging test without its wheelhouse).
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def skip_unless_ci(reason: str, what: str) -> NoReturn:
    """Skip with ``reason``; under CI=true fail with it, naming ``what`` must run."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: {what} must run)", pytrace=False)
    pytest.skip(reason)
