"""The ``imagecache`` command line."""

import click


@click.group()
@click.version_option(package_name="imagecache")
def main() -> None:
    """imagecache: an on-disk cache of VM image data."""
