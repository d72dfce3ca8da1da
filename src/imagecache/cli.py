"""The ``imagecache`` command line."""

from __future__ import annotations

import os
import re
from fractions import Fraction
from typing import Any

import click

from imagecache.config import AUTH_STRATEGIES, DRIVER_NAMES, ConfigError, load_settings

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
              help="Cache in front of this image API (not available yet).")
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
def serve(config_file: str | None, **flags: Any) -> None:
    """Run the image API node (embedded image service + cache).

    Precedence: defaults < --config file < IMAGECACHE_* variables < flags.
    """
    # Imported here: the other commands need no gunicorn.
    from imagecache import server

    try:
        settings = load_settings(config_file, os.environ, flags)
        server.run(settings)
    except ConfigError as exc:
        raise UsageProblem(str(exc)) from None


if __name__ == "__main__":
    main(prog_name="imagecache")
