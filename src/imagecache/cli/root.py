"""The root ``imagecache`` group: every command group registered on it."""

from __future__ import annotations

import click

from imagecache.cli.config import config
from imagecache.cli.db import db
from imagecache.cli.jobs import clean, prefetch, prune
from imagecache.cli.manage import manage
from imagecache.cli.serve import serve
from imagecache.cli.top import top


@click.group(commands=[serve, clean, prune, prefetch, manage, top, db, config])
@click.version_option(package_name="imagecache")
def main() -> None:
    """imagecache: an on-disk cache of VM image data."""

