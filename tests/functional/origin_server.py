"""``imagecache serve`` with an origin that misbehaves on purpose, for functional tests.

Usage: ``python origin_server.py ORIGIN [serve options...]`` where ORIGIN is

* ``throttled:BYTES_PER_SECOND``: the embedded image service, its image data
  sent no faster than that (so a fill lasts long enough to join or kill);
* ``corrupt``: the embedded image service with one byte of every image
  download flipped (same length, so only verification can catch it);
* ``metered:PATH``: the embedded image service, writing a line per piece of
  image data it hands out to ``PATH`` (``<time.time()> <bytes>``, taken
  when the reader asks for the piece): the origin's own account of how fast
  it was read;
* ``unbuildable``: a factory that fails as a missing module would, so every
  worker fails to build its app (the master never calls the factory).

Everything else is the real server: gunicorn, workers, the whole pipeline;
only the app at the bottom is wrapped (``imagecache.server.run``'s
``app_factory``, the hook embedders use).  Nothing here is mocked.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from imagecache import images, server
from imagecache.cli import UsageProblem
from imagecache.cli.serve import serve
from imagecache.config import ConfigError, Settings, load_settings

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_IMAGE_FILE = re.compile(r"\A/v1/images/[^/]+\Z|\A/v2/images/[^/]+/file\Z")
SLICE = 256 << 10


def _wrap_downloads(app: WSGIApp, change: Callable[[Iterable[bytes]], Iterator[bytes]]) -> WSGIApp:
    """``app`` with the body of every successful image download passed through ``change``."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "GET" or not _IMAGE_FILE.match(environ.get("PATH_INFO", "")):
            return app(environ, start_response)
        status: list[str] = []

        def capture(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status.append(code)
            return start_response(code, headers, exc_info)

        body = app(environ, capture)
        if status and status[0][:3] in ("200", "206"):
            return _Closing(change(body), body)
        return body

    return wrapped


class _Closing:
    def __init__(self, chunks: Iterator[bytes], original: Iterable[bytes]) -> None:
        self._chunks = chunks
        self._original = original

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        close = getattr(self._original, "close", None)
        if close is not None:
            close()


def throttled(rate: float) -> Callable[[Iterable[bytes]], Iterator[bytes]]:
    def change(body: Iterable[bytes]) -> Iterator[bytes]:
        started, sent = time.monotonic(), 0
        for chunk in body:
            for start in range(0, len(chunk), SLICE):
                piece = chunk[start:start + SLICE]
                sent += len(piece)
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
                yield piece

    return change


def corrupt(body: Iterable[bytes]) -> Iterator[bytes]:
    flipped = False
    for original in body:
        chunk = original
        if not flipped and chunk:
            middle = len(chunk) // 2
            chunk = chunk[:middle] + bytes([chunk[middle] ^ 0xFF]) + chunk[middle + 1:]
            flipped = True
        yield chunk


def metered(log_path: str) -> Callable[[Iterable[bytes]], Iterator[bytes]]:
    def change(body: Iterable[bytes]) -> Iterator[bytes]:
        with open(log_path, "a", encoding="ascii", buffering=1) as log:  # line-buffered: readable at once
            for chunk in body:
                for start in range(0, len(chunk), SLICE):
                    piece = chunk[start:start + SLICE]
                    log.write(f"{time.time():.6f} {len(piece)}\n")
                    yield piece

    return change


def unbuildable(settings: Settings) -> WSGIApp:
    raise ModuleNotFoundError("No module named 'imagecache_missing_dependency'", name="imagecache_missing_dependency")


def origin_factory(spec: str) -> Callable[[Settings], WSGIApp]:
    name, _, arg = spec.partition(":")
    if name == "unbuildable":
        return unbuildable
    if name == "throttled":
        change = throttled(float(arg))
    elif name == "corrupt":
        change = corrupt
    elif name == "metered":
        change = metered(arg)
    else:
        raise SystemExit(f"unknown origin {spec!r}")
    return lambda settings: _wrap_downloads(images.make_app(settings), change)


def main(argv: list[str]) -> None:
    spec, *serve_args = argv
    context = serve.make_context("serve", serve_args)
    flags = dict(context.params)
    config_file = flags.pop("config_file")
    try:
        server.run(load_settings(config_file, os.environ, flags), app_factory=origin_factory(spec))
    except ConfigError as exc:
        raise UsageProblem(str(exc)) from None


if __name__ == "__main__":
    main(sys.argv[1:])
