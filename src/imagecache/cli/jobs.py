"""``imagecache clean``, ``prune`` and ``prefetch``: one cache job, run once.

Each runs against a cache directory and exits, as cron jobs do (Glance's
``glance-cache-cleaner``, ``-pruner`` and ``-prefetcher``).  The jobs (and
with them the cache, sqlite and rich) are imported when a command runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import click

from imagecache.cli._common import CONFIG_HELP, ByteSize, UsageProblem, format_size, plural, settings_or_usage
from imagecache.cli.progress_bars import fetch_queue
from imagecache.config import DRIVER_NAMES, ConfigError, Settings

if TYPE_CHECKING:
    from imagecache.jobs import CacheApp

    JobT = TypeVar("JobT", bound=CacheApp)

#: The embedded image service's database in the data dir (see imagecache.images.make_app).
IMAGES_DB = "images.db"


def job_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Options every job command takes: where the cache is, how to answer."""
    for option in reversed(
        [
            click.option("--config", "config_file", type=click.Path(dir_okay=False), help=CONFIG_HELP),
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


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a record comes (rich's live
    display redirects it, so log lines land above the progress bars)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
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


def job_settings(config_file: str | None, flags: dict[str, Any], verbose: bool) -> Settings:
    """The job's settings; with -v, what the file sets that imagecache does not use is listed."""
    with logging_to_stderr(verbose):
        return settings_or_usage(config_file, flags)


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


@click.command()
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

    settings = job_settings(config_file, flags, verbose)
    with logging_to_stderr(verbose), open_job(settings, lambda: Cleaner(settings)) as cleaner, job_failures():
        result = cleaner.run()
    files = "file" if result.stalled_removed == 1 else "files"
    report(
        as_json,
        {"invalid_removed": result.invalid_removed, "stalled_removed": result.stalled_removed},
        f"removed {result.invalid_removed} invalid and {result.stalled_removed} stalled {files}",
    )


@click.command()
@job_options
@click.option("--image-cache-max-size", type=ByteSize(),
              help="Prune down to this size: bytes, or 512M, 10G, ... (default image_cache_max_size).")
def prune(config_file: str | None, as_json: bool, verbose: bool, **flags: Any) -> None:
    """Evict least recently used images down to the size limit (pinned images stay)."""
    from imagecache.jobs import Pruner

    settings = job_settings(config_file, flags, verbose)
    with logging_to_stderr(verbose), open_job(settings, lambda: Pruner(settings)) as pruner, job_failures():
        result = pruner.run()
        cache_size = pruner.cache.get_cache_size()
        pins = pruner.cache.pins.state()
    limit = settings.image_cache_max_size
    over = (f"; pinned images alone hold {format_size(pins.bytes)}, more than the limit: nothing else stays"
            if pins.over_limit else "")
    report(
        as_json,
        {"files_pruned": result.files, "bytes_pruned": result.bytes, "cache_size": cache_size, "max_size": limit,
         "pinned_bytes": pins.bytes, "pinned_over_limit": pins.over_limit},
        f"pruned {plural(result.files, 'image')} ({format_size(result.bytes)}); "
        f"the cache holds {format_size(cache_size)} of {format_size(limit)}{over}",
    )


@click.command()
@job_options
def prefetch(config_file: str | None, as_json: bool, verbose: bool, **flags: Any) -> None:
    """Fetch every queued image into the cache.

    Images are read from the embedded image service in --data-dir,
    in-process, as an admin, and verified before they are kept.  Exit
    status 1 when an image could not be fetched: it stays queued, and the
    reason is logged on stderr.
    """
    from imagecache.jobs import Prefetcher

    settings = job_settings(config_file, flags, verbose)
    if not settings.upstream_url and not os.path.isfile(os.path.join(settings.data_dir, IMAGES_DB)):
        # Building the image service would create an empty one: every image would just "fail".
        raise UsageProblem(f"no image service in data dir {settings.data_dir} (no {IMAGES_DB}); check --data-dir")
    with (
        logging_to_stderr(verbose),
        open_job(settings, lambda: Prefetcher.for_settings(settings)) as prefetcher,
        job_failures(),
    ):
        fetched, failed = fetch_queue(prefetcher, show_progress=not as_json)
    line = (
        "nothing queued"
        if not fetched and not failed
        else f"fetched {plural(len(fetched), 'image')}"
        + (f"; {len(failed)} failed and stay queued" if failed else "")
    )
    report(as_json, {"fetched": fetched, "failed": failed}, line)
    if failed:
        raise SystemExit(1)
