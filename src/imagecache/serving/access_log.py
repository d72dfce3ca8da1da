"""The access log: gunicorn's default line, written without gunicorn's per-request machinery; or none.

gunicorn builds, for every request, a dict of every atom it knows (each
request and response header, each environ key), wraps it for case-blind
lookups, formats its configurable format against it and goes through
``logging``'s caller lookup: about a sixth of a small cached hit's CPU when
measured.  A node's format is never configured, so :func:`access_line`
writes gunicorn's default one (Apache's combined format:
``h l u t "r" s b "f" "a"``) directly, with the same information, and the
record goes to the access log's handlers without the caller lookup.
``access_log = "off"`` skips it all.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from gunicorn import glogging


def access_line(
    remote: str, user: str, when: str, method: str, uri: str, protocol: str, status: str, sent: int | None,
    referer: str, agent: str,
) -> str:
    """gunicorn's default access-log line, from its atoms, quotes escaped as gunicorn does (pure)."""
    size = "-" if sent is None else str(sent)
    request = _quoted(f"{method} {uri} {protocol}")
    return (f'{_quoted(remote)} - {_quoted(user)} {_quoted(when)} "{request}" {_quoted(status)} {size} '
            f'"{_quoted(referer)}" "{_quoted(agent)}"')


def _quoted(value: str) -> str:
    return value.replace('"', '\\"') if '"' in value else value


class ApacheClock:
    """The log's timestamp (``[02/Dec/2026:15:12:05 +0000]``), formatted once a second."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._last: tuple[int, str] = (-1, "")

    def now(self) -> str:
        second = int(self._clock())
        last = self._last  # one read: another thread may replace it meanwhile
        if last[0] != second:
            last = (second, time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(second)))
            self._last = last
        return last[1]


class NodeLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger: the access log on stderr next to the error log, each line written lean.

    gunicorn sends ``accesslog = "-"`` to stdout; one stream keeps the two
    logs in order and leaves stdout alone.
    """

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self._clock = ApacheClock()
        for handler in self.access_log.handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
                handler.setStream(sys.stderr)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.access_log_enabled or not self.access_log.isEnabledFor(logging.INFO):
            return
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        user = self._get_user(environ) if "HTTP_AUTHORIZATION" in environ else None
        line = access_line(
            environ.get("REMOTE_ADDR", "-"), user or "-", self._clock.now(), environ["REQUEST_METHOD"],
            environ["RAW_URI"], environ["SERVER_PROTOCOL"], str(status), getattr(resp, "sent", None),
            environ.get("HTTP_REFERER", "-"), environ.get("HTTP_USER_AGENT", "-"),
        )
        # Handlers catch their own errors (logging's handleError): a log line never fails a request.
        self.access_log.handle(logging.LogRecord(self.access_log.name, logging.INFO, __file__, 0, line, None, None))
