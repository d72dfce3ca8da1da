"""``imagecache config``: every option as a sample file, and what a node would use.

``sample`` prints each option with its default and help, commented out, as
oslo-config-generator does for Glance.  ``show`` reads the settings as
``imagecache serve`` would (a file, ``IMAGECACHE_*`` variables) and prints
every value with where it comes from: ``show --config glance-api.conf``
is also how a Glance operator sees what imagecache takes from that file,
and turns it into imagecache's own.
"""

from __future__ import annotations

import logging
import os

import click

from imagecache.cli._common import UsageProblem
from imagecache.config import ConfigError

FORMATS = ("toml", "ini")


def _format_option(default: str | None) -> click.Option:
    return click.Option(["--format", "fmt"], type=click.Choice(FORMATS), default=default, show_default=bool(default),
                        help="toml, or ini (oslo.config's syntax, Glance's names in [DEFAULT]).")


@click.group()
def config() -> None:
    """Settings files: a sample of every option, and what a node would use."""


@config.command(params=[_format_option("toml")])
def sample(fmt: str) -> None:
    """Print every option with its default and help, commented out.

    \b
    imagecache config sample > /etc/imagecache/imagecache.toml
    imagecache config sample --format ini >> /etc/glance/glance-api.conf   # Glance ignores [imagecache]
    """
    from imagecache.config.sample import render

    click.echo(render("ini" if fmt == "ini" else "toml"), nl=False)


@config.command(params=[_format_option(None)])
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="Settings file: TOML, or INI such as Glance's glance-api.conf.")
@click.option("--data-dir", metavar="DIR", help="As given to imagecache serve.")
def show(fmt: str | None, config_file: str | None, data_dir: str | None) -> None:
    """Print what imagecache serve would use, and where each value comes from.

    Reads the file and IMAGECACHE_* variables as the server does (flags other
    than --data-dir are not taken here).  Options the file sets that imagecache
    does not use are listed on stderr.  Secrets are masked.  The format is the
    file's unless --format says otherwise.
    """
    from imagecache.config.files import load, origins
    from imagecache.config.sample import render_effective

    overrides = {"data_dir": data_dir}
    try:
        settings, file = load(config_file, os.environ, overrides)
    except ConfigError as exc:
        raise UsageProblem(str(exc)) from None
    notice = file.notice() if file is not None else None
    if notice is not None:
        click.echo(f"imagecache: {logging.getLevelName(notice[0])}: {notice[1]}", err=True)
    chosen = fmt or (file.format if file is not None else "toml")
    where = origins(settings, file, os.environ, overrides)
    click.echo(render_effective(settings, "ini" if chosen == "ini" else "toml", where), nl=False)
