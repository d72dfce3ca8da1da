"""What the command groups share: sizes, usage errors, settings, output, confirmation.

Only click, the standard library and :mod:`imagecache.config` are imported
here; rich is imported when a table is printed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal

import click

from imagecache.config import ConfigError, Settings, load

if TYPE_CHECKING:
    # Generic for type checkers only: click before 8.2 cannot subscript it at run time.
    _IntParamType = click.ParamType[int]
else:
    _IntParamType = click.ParamType

#: Size suffixes are binary, as operators mean them: 1K = 1024 bytes.
_UNITS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}
_SIZE = re.compile(
    r"(?P<number>\d+(?:\.\d*)?|\.\d+)\s*(?:(?P<unit>[kmgtp])(?:i?b)?|b)?",
    re.IGNORECASE,
)
#: Columns a table may use when stdout is no terminal (a pipe or a file): wide
#: enough that no row wraps, so each image stays on one line for grep and awk.
PIPE_WIDTH = 200
#: How a table column is aligned (a subset of rich's justify methods).
Justify = Literal["left", "right"]


class UsageProblem(click.ClickException):
    """A bad setting or file: one line on stderr, exit status 2 (like click's usage errors)."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


# -- sizes ---------------------------------------------------------------------------


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


class ByteSize(_IntParamType):
    """A click parameter for :func:`parse_size`."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def format_size(size: int) -> str:
    """``size`` bytes for a person: binary units, like the sizes operators type."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def human_size(size: Any) -> str:
    """A size from a server's answer: formatted when it is a number of bytes, else as it came."""
    return format_size(size) if isinstance(size, int) and not isinstance(size, bool) else str(size)


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# -- settings ------------------------------------------------------------------------

#: What ``--config`` takes, for every command that has it.
CONFIG_HELP = ("Settings file: TOML, or INI such as Glance's glance-api.conf or glance-cache.conf "
               "(.conf/.ini: INI; see imagecache config sample).")


def settings_or_usage(config_file: str | None, flags: Mapping[str, Any]) -> Settings:
    """Settings as ``serve`` builds them (defaults < file < IMAGECACHE_* < flags); bad ones exit 2.

    What the file gives, and what it sets that imagecache does not use, is logged (``imagecache.config``).
    """
    try:
        settings, file = load(config_file, os.environ, flags)
    except ConfigError as exc:
        raise UsageProblem(str(exc)) from None
    for level, line in file.notices() if file is not None else []:
        logging.getLogger("imagecache.config").log(level, "%s", line)
    return settings


# -- output and questions ----------------------------------------------------------------


def print_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2))


def print_table(columns: Sequence[tuple[str, Justify]], rows: Sequence[Sequence[str]]) -> None:
    """A table on stdout: (header, justify) per column; one line per row when piped."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stdout, highlight=False)
    if not console.is_terminal:
        console = Console(file=sys.stdout, highlight=False, width=PIPE_WIDTH)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for header, justify in columns:
        table.add_column(header, justify=justify, no_wrap=header == "ID")
    for row in rows:
        table.add_row(*row)
    with console.capture() as captured:
        console.print(table)
    # rich pads every line to the table's width; the padding is noise in a pipe.
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()), color=console.is_terminal)


def confirm_or_stop(question: str) -> None:
    """Ask on stderr (stdout may be JSON); anything but yes, or no answer, ends with exit 1."""
    try:
        agreed = click.confirm(question, default=False, err=True)
    except click.Abort:  # end of input, or ^C
        click.echo(err=True)
        agreed = False
    if not agreed:
        raise click.ClickException("nothing deleted (--force deletes without asking)")
