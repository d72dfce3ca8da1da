"""The fleet view for people: a row per node's copy of an image, or the view's JSON.

Shared by ``imagecache manage list-cached --all-nodes`` (the view a node
answers, ``GET /v2/cache/nodes``) and ``imagecache db images`` (the same
view, read from the central index), so both print the same table and the
same JSON: the images list of :func:`imagecache.wsgi.fleet.fleet_view`.
Every row names its image, so ``grep ID`` or ``awk`` see all of an image's
copies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import click

from imagecache.cli._common import Justify, human_size, print_json, print_table

#: What a fleet without a copy of anything prints (exit 0: an answer, not a failure).
NO_COPIES = "No image is cached or being filled on any node."
COLUMNS: tuple[tuple[str, Justify], ...] = (
    ("ID", "left"),
    ("Node", "left"),
    ("Site", "left"),
    ("Node state", "left"),
    ("Copy", "left"),
    ("Bytes", "right"),
)


def progress(node: Mapping[str, Any]) -> str:
    """A copy's bytes: its size when cached; how far a fill is, of what size, when filling."""
    size, done = node.get("size"), node.get("bytes")
    if node.get("state") != "filling":
        return human_size(size if size is not None else done)
    if isinstance(size, int) and size > 0 and isinstance(done, int):
        return f"{human_size(done)} of {human_size(size)} ({done * 100 // size} %)"
    return f"{human_size(done)} of unknown size"


def rows(images: Sequence[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    """One row per node per image, in the view's order; a stale node says so."""
    return [
        (
            str(image.get("image_id")),
            str(node.get("url")),
            str(node.get("site")),
            "live" if node.get("live") else "stale",
            str(node.get("state")),
            progress(node),
        )
        for image in images
        for node in image.get("nodes", ())
    ]


def show_fleet(images: Sequence[Mapping[str, Any]], as_json: bool) -> None:
    """The view on stdout: JSON (the images list) for scripts, else a table or one line."""
    if as_json:
        print_json(list(images))
    elif not images:
        click.echo(NO_COPIES)
    else:
        print_table(COLUMNS, rows(images))
