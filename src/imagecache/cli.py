"""The ``imagecache`` command line.

``serve`` runs the node; ``clean``, ``prune`` and ``prefetch`` run one cache
job against a cache directory and exit, as cron jobs do (Glance's
``glance-cache-cleaner``, ``-pruner`` and ``-prefetcher``); ``manage``
(:mod:`imagecache.cli_manage`) manages a node's cache over its API, as
``glance-cache-manage`` did.  Heavy modules
(gunicorn, the cache, the image service) are imported inside the commands,
so ``imagecache --help`` and a cron line start fast.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import TYPE_CHECKING, Any, TypeVar

import click

from imagecache.cli_db import db
from imagecache.cli_manage import manage
from imagecache.config import AUTH_STRATEGIES, DRIVER_NAMES, ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from imagecache.jobs import CacheApp, Prefetcher

    JobT = TypeVar("JobT", bound=CacheApp)

#: Size suffixes are binary, as operators mean them: 1K = 1024 bytes.
_UNITS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}
_SIZE = re.compile(
    r"(?P<number>\d+(?:\.\d*)?|\.\d+)\s*(?:(?P<unit>[kmgtp])(?:i?b)?|b)?",
    re.IGNORECASE,
)


def parse_size(text: str) -> int:
    """Bytes in ``text``: ``1073741824``, ``512M``, ``10G``, ``1.5GiB``, ``100B``.

    Suffixes K, M, G, T, P (optionally followed by ``B`` or ``iB``, any case)
    are powers of 1024.  Fractions round down to whole bytes.
    """
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f"{text!r} is not a size: use bytes or a number with K, M, G, T or P (e.g. 10G)"
        )
    exponent = _UNITS[(match.group("unit") or "").lower()]
    return int(Fraction(match.group("number")) * 1024**exponent)  # exact, unlike floats


class ByteSize(click.ParamType):
    """A click parameter for :func:`parse_size`."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class UsageProblem(click.ClickException):
    """A bad setting or file: one line on stderr, exit status 2 (like click's usage errors)."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


@click.group()
@click.version_option(package_name="imagecache")
def main() -> None:
    """imagecache: an on-disk cache of VM image data."""


main.add_command(manage)
main.add_command(db)


@main.command()
@click.option("--host", "bind_host", metavar="ADDRESS",
              help="Address to listen on (default 127.0.0.1).")
@click.option("--port", "bind_port", type=int, metavar="PORT",
              help="Port to listen on (default 9292).")
@click.option("--workers", type=int, metavar="N", help="Worker processes (default 2).")
@click.option("--data-dir", metavar="DIR", help="Image store and cache root (default ./var).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="TOML settings file (top-level keys or a [DEFAULT] table).")
@click.option("--upstream", "upstream_url", metavar="URL",
              help="Be an edge cache in front of this image API (e.g. http://glance:9292).")
@click.option("--auth", "auth_strategy", type=click.Choice(AUTH_STRATEGIES),
              help="none: everyone is admin; tokens: see --tokens-file.")
@click.option("--tokens-file", type=click.Path(dir_okay=False),
              help="TOML file of tokens for --auth tokens.")
@click.option("--image-cache-max-size", type=ByteSize(),
              help="Cache size limit: bytes, or 512M, 10G, ...")
@click.option("--image-cache-driver", type=click.Choice(DRIVER_NAMES),
              help="Where the cache index lives.")
@click.option("--db-url", metavar="URL",
              help="SQLAlchemy URL of the central index (--image-cache-driver central).")
@click.option("--node-url", metavar="URL", help="This node's URL in the central index.")
@click.option("--threads", type=click.IntRange(min=1), metavar="N",
              help="Request threads per worker (default 64); cached files are sent without one.")
@click.option("--max-connections", type=click.IntRange(min=1), metavar="N",
              help="Client connections the node takes (default 4096); past it: 503 at once.")
@click.option("--client-header-timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Time a client has to send its request header (default 30); then 408.")
@click.option("--send-timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Time a client may read nothing before it is closed (default 60).")
def serve(config_file: str | None, **flags: Any) -> None:
    """Run the image API node (embedded image service + cache).

    Precedence: defaults < --config file < IMAGECACHE_* variables < flags.
    """
    # Imported here: the other commands need no gunicorn.
    try:
        from imagecache import server
    except ImportError as exc:  # gunicorn, WebOb, prometheus_client...: a broken install
        hint = "is imagecache installed with its dependencies?"
        raise click.ClickException(f"cannot start the server: {exc} ({hint})") from None

    try:
        settings = load_settings(config_file, os.environ, flags)
        server.run(settings)
    except ConfigError as exc:
        raise UsageProblem(str(exc)) from None
    except server.StartupError as exc:  # settings fine, install broken: one line, status 1
        raise click.ClickException(str(exc)) from None


# -- the cache jobs, run once --------------------------------------------------

#: The embedded image service's database in the data dir (see imagecache.images.make_app).
IMAGES_DB = "images.db"


def format_size(size: int) -> str:
    """``size`` bytes for a person: binary units, like the sizes operators type."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def job_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Options every job command takes: where the cache is, how to answer."""
    for option in reversed(
        [
            click.option("--config", "config_file", type=click.Path(dir_okay=False),
                         help="TOML settings file (top-level keys or a [DEFAULT] table)."),
            click.option("--data-dir", metavar="DIR", help="Image store and cache root (default ./var)."),
            click.option("--image-cache-dir", metavar="DIR",
                         help="The cache directory (default <data-dir>/image-cache)."),
            click.option("--image-cache-driver", type=click.Choice(DRIVER_NAMES),
                         help="Where the cache index lives (as the server uses it)."),
            click.option("--json", "as_json", is_flag=True, help="Print the result as JSON, for scripts."),
            click.option("-v", "--verbose", is_flag=True, help="Log what is done (on stderr)."),
        ]
    ):
        command = option(command)
    return command


def job_settings(config_file: str | None, flags: dict[str, Any]) -> Settings:
    """Settings as ``serve`` builds them: defaults < file < IMAGECACHE_* < flags."""
    try:
        return load_settings(config_file, os.environ, flags)
    except ConfigError as exc:
        raise UsageProblem(str(exc)) from None


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record comes (rich's live
    display redirects it, so log lines land above the progress bars)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


@contextlib.contextmanager
def logging_to_stderr(verbose: bool) -> Iterator[None]:
    """The jobs' log on stderr while a command runs: warnings (why an image failed), or all with -v.

    Undone afterwards: a command leaves no handler behind in the process
    (tests run many commands in one).
    """
    logger = logging.getLogger("imagecache")
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("imagecache: %(levelname)s: %(message)s"))
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def open_job(settings: Settings, build: Callable[[], JobT]) -> JobT:
    """Build a job; a cache dir or index it cannot use is a usage problem (exit 2)."""
    import sqlite3

    from imagecache.cache import DriverConfigError

    try:
        return build()
    except (ConfigError, DriverConfigError) as exc:
        raise UsageProblem(str(exc)) from None
    except (OSError, sqlite3.Error) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UsageProblem(f"cannot use image cache dir {settings.image_cache_dir}: {reason}") from None


@contextlib.contextmanager
def job_failures() -> Iterator[None]:
    """A job that fails while it runs: one line and exit status 1, not a traceback."""
    import sqlite3

    from imagecache.cache import CacheError

    try:
        yield
    except (OSError, sqlite3.Error, CacheError) as exc:
        raise click.ClickException(" ".join(str(exc).split())) from None


def report(as_json: bool, document: dict[str, Any], line: str) -> None:
    click.echo(json.dumps(document) if as_json else line)


@main.command()
@job_options
@click.option("--stall-time", "image_cache_stall_time", type=click.IntRange(min=0), metavar="SECONDS",
              help="Remove incomplete files untouched this long (default image_cache_stall_time, 86400).")
def clean(config_file: str | None, as_json: bool, verbose: bool, **flags: Any) -> None:
    """Remove invalid files and stalled fills.

    Invalid files failed verification; a fill is stalled when nobody wrote
    it for --stall-time seconds.  A fill a live writer still holds is never
    removed, however old.
    """
    from imagecache.jobs import Cleaner

    settings = job_settings(config_file, flags)
    with logging_to_stderr(verbose), open_job(settings, lambda: Cleaner(settings)) as cleaner, job_failures():
        result = cleaner.run()
    files = "file" if result.stalled_removed == 1 else "files"
    report(
        as_json,
        {"invalid_removed": result.invalid_removed, "stalled_removed": result.stalled_removed},
        f"removed {result.invalid_removed} invalid and {result.stalled_removed} stalled {files}",
    )


@main.command()
@job_options
@click.option("--image-cache-max-size", type=ByteSize(),
              help="Prune down to this size: bytes, or 512M, 10G, ... (default image_cache_max_size).")
def prune(config_file: str | None, as_json: bool, verbose: bool, **flags: Any) -> None:
    """Evict least recently used images down to the size limit."""
    from imagecache.jobs import Pruner

    settings = job_settings(config_file, flags)
    with logging_to_stderr(verbose), open_job(settings, lambda: Pruner(settings)) as pruner, job_failures():
        result = pruner.run()
        cache_size = pruner.cache.get_cache_size()
    limit = settings.image_cache_max_size
    report(
        as_json,
        {"files_pruned": result.files, "bytes_pruned": result.bytes, "cache_size": cache_size, "max_size": limit},
        f"pruned {_plural(result.files, 'image')} ({format_size(result.bytes)}); "
        f"the cache holds {format_size(cache_size)} of {format_size(limit)}",
    )


@main.command()
@job_options
def prefetch(config_file: str | None, as_json: bool, verbose: bool, **flags: Any) -> None:
    """Fetch every queued image into the cache.

    Images are read from the embedded image service in --data-dir,
    in-process, as an admin, and verified before they are kept.  Exit
    status 1 when an image could not be fetched: it stays queued, and the
    reason is logged on stderr.
    """
    from imagecache.jobs import Prefetcher

    settings = job_settings(config_file, flags)
    if not settings.upstream_url and not os.path.isfile(os.path.join(settings.data_dir, IMAGES_DB)):
        # Building the image service would create an empty one: every image would just "fail".
        raise UsageProblem(f"no image service in data dir {settings.data_dir} (no {IMAGES_DB}); check --data-dir")
    with logging_to_stderr(verbose), open_job(settings, lambda: Prefetcher.for_settings(settings)) as prefetcher:
        with job_failures():
            fetched, failed = fetch_queue(prefetcher, show_progress=not as_json)
    line = (
        "nothing queued"
        if not fetched and not failed
        else f"fetched {_plural(len(fetched), 'image')}"
        + (f"; {len(failed)} failed and stay queued" if failed else "")
    )
    report(as_json, {"fetched": fetched, "failed": failed}, line)
    if failed:
        raise SystemExit(1)


def fetch_queue(prefetcher: Prefetcher, *, show_progress: bool) -> tuple[list[str], list[str]]:
    """Fetch the queue: (fetched ids, failed ids); a progress bar per image when stdout is a terminal."""
    from rich.console import Console

    console = Console(file=sys.stdout)
    fetched: list[str] = []
    failed: list[str] = []
    with ProgressBars(console, enabled=show_progress and console.is_terminal) as bars:
        for image_id, ok in prefetcher.fetch_queued(progress=bars.update):
            (fetched if ok else failed).append(image_id)
            bars.finish(image_id, ok)
    return fetched, failed


class ProgressBars:
    """One rich progress bar per image, in bytes; does nothing when disabled (not a terminal)."""

    def __init__(self, console: Console, *, enabled: bool) -> None:
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        if enabled:
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(bar_width=24), DownloadColumn(binary_units=True),
                TransferSpeedColumn(), TextColumn("{task.fields[state]}"), console=console,
            )

    def __enter__(self) -> ProgressBars:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, image_id: str, done: int, total: int | None) -> None:
        if self._progress is None:
            return
        task = self._tasks.get(image_id)
        if task is None:
            task = self._tasks[image_id] = self._progress.add_task(image_id, total=total, state="")
        self._progress.update(task, completed=done)

    def finish(self, image_id: str, ok: bool) -> None:
        if self._progress is None:
            return
        task = self._tasks.get(image_id)
        if task is None:  # cached already: no bytes were read
            task = self._tasks[image_id] = self._progress.add_task(image_id, total=0, state="")
        self._progress.update(task, state="[green]cached[/green]" if ok else "[red]failed[/red]")
        self._progress.stop_task(task)


if __name__ == "__main__":
    main(prog_name="imagecache")
