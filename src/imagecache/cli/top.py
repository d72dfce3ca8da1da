"""``imagecache top``: what a node is doing right now, redrawn every interval (like ``top``).

It polls ``GET /v2/cache/activity`` and draws :func:`imagecache.cli.top_view.render`'s
frame full-screen with two ANSI sequences (home, clear): no curses, so it
runs on any terminal and a pseudo-terminal in the tests.  ``q`` quits, and
so does Ctrl-C, both with the terminal restored and exit status 0.  A node
that stops answering is a line on the frame ("node unreachable, retrying"),
never a traceback: the operator watching it wants to see it come back.

``--once`` prints one frame and exits (rates over one interval): for scripts.
The client and the view are imported when the command runs, so
``imagecache --help`` stays light.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

import click

from imagecache.cli.manage_session import ManageSession, describe
from imagecache.cli.node_options import given, node_options

if TYPE_CHECKING:
    from imagecache.client import CacheClient
    from imagecache.client.activity import Activity

#: Clear the screen and put the cursor home; hide and show the cursor.
CLEAR = "\x1b[H\x1b[2J"
HIDE_CURSOR = "\x1b[?25l"
SHOW_CURSOR = "\x1b[?25h"
QUIT_KEYS = frozenset("qQ")
#: Seconds top waits for one answer unless --timeout says: a frame late by more is a problem to show.
DEFAULT_TIMEOUT = 5.0
#: Lines of a frame printed with --once when the output is no terminal.
ONCE_HEIGHT = 200


def _fetch(client: CacheClient) -> tuple[Activity | None, str | None]:
    """The node's activity, or why there is none (one line)."""
    from imagecache.client import ClientError, Unreachable

    try:
        return client.activity(), None
    except Unreachable:
        return None, "node unreachable"
    except ClientError as exc:
        return None, describe(exc)


def _frame(now: Activity | None, before: Activity | None, problem: str | None, title: str,
           width: int, height: int) -> list[str]:
    from imagecache.cli.top_view import render

    if now is None:
        lines = [f"imagecache top {title}"[:width], f"{problem}, retrying"[:width]]
        return lines[:height]
    return render(now, before, width, height, title)


@contextlib.contextmanager
def _keys(stream: TextIO) -> Iterator[bool]:
    """Single keys from ``stream`` while inside (cbreak mode when it is a terminal): whether keys can be read."""
    if not stream.isatty():
        yield False
        return
    import termios
    import tty

    fd = stream.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield True
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _wait_for_quit(stream: TextIO, keys: bool, seconds: float) -> bool:
    """Wait ``seconds`` (at most) for a quit key; True when one came."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if not keys:
            time.sleep(left)
            return False
        ready, _, _ = select.select([stream], [], [], left)
        if ready:
            key = os.read(stream.fileno(), 1).decode("utf-8", "replace")
            if not key or key in QUIT_KEYS:
                return True  # q, or the terminal went away
    return False


def _loop(client: CacheClient, interval: float, title: str, out: TextIO, stdin: TextIO) -> None:
    before: Activity | None = None
    with _keys(stdin) as keys:
        out.write(HIDE_CURSOR)
        try:
            while True:
                now, problem = _fetch(client)
                size = shutil.get_terminal_size()
                lines = _frame(now, before, problem, title, size.columns, size.lines)
                out.write(CLEAR + "\n".join(lines))
                out.flush()
                before = now if now is not None else before
                if _wait_for_quit(stdin, keys, interval):
                    return
        finally:
            out.write(SHOW_CURSOR + "\n")
            out.flush()


def _once(client: CacheClient, interval: float, title: str, out: TextIO) -> None:
    first, problem = _fetch(client)
    if first is not None:
        time.sleep(interval)  # a second snapshot, so the frame has rates
        now, problem = _fetch(client)
    if first is None or now is None:
        raise click.ClickException(problem or "no answer")
    size = shutil.get_terminal_size((120, ONCE_HEIGHT))
    height = size.lines if out.isatty() else ONCE_HEIGHT
    out.write("\n".join(_frame(now, first, None, title, size.columns, height)) + "\n")


@click.command()
@node_options
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(min=0.1), metavar="SECONDS",
              help="Seconds between frames.")
@click.option("--once", is_flag=True, help="Print one frame (rates over one interval) and exit.")
def top(interval: float, once: bool, **options: Any) -> None:
    """What a node is doing right now: fills in progress, hit ratio, bytes served, size, queue, pins.

    Redrawn every --interval; q or Ctrl-C quits.  Needs an admin token.
    """
    node = ManageSession(options={"timeout": DEFAULT_TIMEOUT, **given(options)})
    client, title = node.client(), node.node
    try:
        if once:
            _once(client, interval, title, sys.stdout)
        else:
            _loop(client, interval, title, sys.stdout, sys.stdin)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how one leaves top: a clean exit
    finally:
        client.close()
