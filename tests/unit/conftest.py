"""Fixtures shared by the unit tests: a settable clock and the fake image service."""

from __future__ import annotations

import pytest

from tests.unit.wsgi.fake_images import FakeImageService


class FakeClock:
    """A settable wall clock, so LRU and stall tests need no sleeping."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service() -> FakeImageService:
    """The fake image app the cache filters and the prefetcher read from."""
    return FakeImageService()
