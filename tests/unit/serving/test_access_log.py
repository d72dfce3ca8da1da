"""The lean access log writes exactly gunicorn's default line, for any request (hypothesis)."""

from __future__ import annotations

import datetime
import logging
import time
from typing import Any

from gunicorn import glogging
from gunicorn.config import Config
from hypothesis import given, settings
from hypothesis import strategies as st

from imagecache.serving.access_log import ApacheClock, NodeLogger

WHEN = "[02/Dec/2026:15:12:05 +0000]"
TEXT = st.text(st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=30)


class Resp:
    def __init__(self, status: str, sent: int | None) -> None:
        self.status = status
        self.sent = sent
        self.headers = [("Content-Type", "text/plain")]


class Req:
    headers: tuple[tuple[str, str], ...] = (("HOST", "t"),)


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _logger(kind: type[glogging.Logger]) -> tuple[Any, Lines]:
    cfg = Config()
    cfg.set("accesslog", "-")
    logger = kind(cfg)
    lines = Lines()
    logger.access_log.handlers = [lines]
    logger.now = lambda: WHEN
    return logger, lines


@settings(max_examples=200, deadline=None)
@given(
    remote=st.none() | TEXT, method=st.sampled_from(["GET", "HEAD", "PUT", 'X"Y']), uri=TEXT,
    status=st.sampled_from(["200 OK", "206 Partial Content", "404 Not Found", '500 "x"']),
    sent=st.none() | st.integers(min_value=0, max_value=1 << 40), referer=st.none() | TEXT,
    agent=st.none() | TEXT, basic=st.none() | st.sampled_from(["Basic YWxpY2U6cw==", "Basic !!", "Bearer x"]),
)
def test_the_line_is_gunicorns(remote: str | None, method: str, uri: str, status: str, sent: int | None,
                               referer: str | None, agent: str | None, basic: str | None) -> None:
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "RAW_URI": uri, "SERVER_PROTOCOL": "HTTP/1.1",
                               "PATH_INFO": uri, "QUERY_STRING": ""}
    for key, value in (("REMOTE_ADDR", remote), ("HTTP_REFERER", referer), ("HTTP_USER_AGENT", agent),
                       ("HTTP_AUTHORIZATION", basic)):
        if value is not None:
            environ[key] = value
    took = datetime.timedelta(microseconds=1234)
    theirs, their_lines = _logger(glogging.Logger)  # both use logging's one "gunicorn.access": one at a time
    theirs.access(Resp(status, sent), Req(), environ, took)
    ours, our_lines = _logger(NodeLogger)
    ours._clock.now = lambda: WHEN
    ours.access(Resp(status, sent), Req(), environ, took)
    assert our_lines.lines == their_lines.lines
    assert len(our_lines.lines) == 1


def test_off_writes_nothing() -> None:
    cfg = Config()
    cfg.set("accesslog", None)
    logger = NodeLogger(cfg)
    lines = Lines()
    logger.access_log.handlers = [lines]
    logger.access(Resp("200 OK", 1), Req(), {"REQUEST_METHOD": "GET", "RAW_URI": "/", "SERVER_PROTOCOL": "HTTP/1.1"},
                  datetime.timedelta())
    assert lines.lines == []


def test_the_clock_formats_once_a_second_as_gunicorn_does() -> None:
    now = [1_764_688_325.2]
    clock = ApacheClock(lambda: now[0])
    first = clock.now()
    assert first == time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(1_764_688_325))
    now[0] += 0.5
    assert clock.now() is first
    now[0] += 1
    assert clock.now() != first


def test_the_option_turns_gunicorns_access_log_on_or_off() -> None:
    import pytest

    from imagecache.config import ConfigError, Settings
    from imagecache.serving.options import gunicorn_options

    assert gunicorn_options(Settings())["accesslog"] == "-"
    assert gunicorn_options(Settings(access_log="off"))["accesslog"] is None
    with pytest.raises(ConfigError, match=r"^access_log must be one of on, off"):
        Settings(access_log="maybe")
