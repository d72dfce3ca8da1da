"""quiet_close(): close what has a close(), say nothing (but a debug line) when that fails."""

from __future__ import annotations

import logging

import pytest

from imagecache.http.closing import quiet_close


class Body:
    def __init__(self, fails: bool = False) -> None:
        self.closed = 0
        self.fails = fails

    def close(self) -> None:
        self.closed += 1
        if self.fails:
            raise OSError("the connection is gone")


def test_closes_what_has_close() -> None:
    body = Body()
    quiet_close(body)
    assert body.closed == 1


def test_what_has_no_close_is_left_alone() -> None:
    quiet_close([b"a list"])
    quiet_close(None)


def test_a_failing_close_is_logged_at_debug_and_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "imagecache.http.closing")
    body = Body(fails=True)
    quiet_close(body)
    assert body.closed == 1
    [record] = caplog.records
    assert record.levelno == logging.DEBUG and record.exc_info is not None


def test_a_generator_that_never_started_is_closed() -> None:
    def body() -> object:
        yield b"x"

    started = body()
    quiet_close(started)
    with pytest.raises(StopIteration):
        next(started)  # type: ignore[call-overload]
