"""``imagecache top`` and ``GET /v2/cache/activity`` against a real node with a fill held in progress.

The origin is throttled (origin_server.py) so that a fill lasts long
enough to be watched; a real client downloads the image meanwhile.  ``top``
runs under a real pseudo-terminal (pexpect) and its screen is read through
a terminal emulator (pyte), as an operator's terminal would show it.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator

import pexpect
import pyte
import pytest

from tests.support.waiting import wait_until

from .conftest import RunningServer, clean_environment, free_port, run_imagecache
from .test_cache_http import create
from .test_fills import Download

MiB = 1 << 20
#: 16 MiB at 2 MiB/s: a fill of about 8 s, longer than the checks need, bounded all the same.
SIZE = 16 * MiB
RATE = 2 * MiB
COLUMNS, LINES = 120, 40


@pytest.fixture
def filling(start_server) -> Iterator[tuple[RunningServer, str]]:
    """A node, and an image whose fill is in progress there (one client downloading it)."""
    server = start_server(auth="tokens", workers=2, origin=f"throttled:{RATE}")
    image_id = create(server, "alice", os.urandom(SIZE), name="ubuntu-noble")
    download = Download(server, image_id)
    thread = threading.Thread(target=download, daemon=True)
    thread.start()
    yield server, image_id
    thread.join(120)
    assert download.error is None and download.status == 200, (download.status, download.error)


def activity_fill(server: RunningServer, image_id: str) -> dict | None:
    answer = server.request("GET", "/v2/cache/activity", user="admin")
    assert answer.status == 200, answer.text
    return next((fill for fill in answer.json()["fills"] if fill["image_id"] == image_id), None)


def test_activity_shows_the_fill_in_progress_with_growing_bytes(filling) -> None:
    server, image_id = filling
    first = wait_until(lambda: (fill := activity_fill(server, image_id)) and fill["bytes"] > 0 and fill,
                       "the fill to show in the activity")
    assert first["name"] == "ubuntu-noble"
    assert first["expected_size"] == SIZE
    assert first["readers"] >= 1
    wait_until(lambda: (fill := activity_fill(server, image_id)) and fill["bytes"] > first["bytes"],
               "the fill's bytes to grow")
    body = server.request("GET", "/v2/cache/activity", user="admin").json()
    assert body["counters"]["misses"] >= 1
    assert body["image_cache_max_size"] > 0


def test_activity_is_for_admins_only(filling) -> None:
    server, _ = filling
    assert server.request("GET", "/v2/cache/activity", user="alice").status == 403


class Screen:
    """What ``imagecache top`` shows on a real pseudo-terminal, read through a terminal emulator."""

    def __init__(self, *args: str) -> None:
        self.screen = pyte.Screen(COLUMNS, LINES)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = b""
        self.child = pexpect.spawn(sys.executable, ["-m", "imagecache.cli", "top", *args],
                                   env=clean_environment(), dimensions=(LINES, COLUMNS), timeout=30)

    def pump(self) -> str:
        """Feed what the program wrote so far to the emulator; the screen as text."""
        while True:
            try:
                data = self.child.read_nonblocking(65536, timeout=0)
            except (pexpect.TIMEOUT, pexpect.EOF):
                break
            self.raw += data
            self.stream.feed(data)
        return "\n".join(self.screen.display)

    def line_of(self, text: str) -> str:
        """The first line of the screen showing ``text`` ("" when none does)."""
        self.pump()
        return next((line for line in self.screen.display if text in line), "")

    def shows(self, text: str) -> bool:
        return text in self.pump()

    def quit(self, key: str = "q") -> int:
        self.child.send(key)
        self.child.expect(pexpect.EOF)
        self.raw += self.child.before or b""
        self.child.close()
        assert b"Traceback" not in self.raw, self.raw.decode(errors="replace")
        return self.child.exitstatus


def test_top_on_a_terminal_shows_the_fill_and_quits_on_q(filling) -> None:
    server, image_id = filling
    top = Screen("--port", str(server.port), "-A", server.tokens.token("admin"), "--interval", "0.5")
    try:
        wait_until(lambda: top.shows(image_id[:8]) and top.shows("ubuntu-noble"), "top to show the fill",
                   describe=top.pump)
        wait_until(lambda: "B/s" in top.line_of(image_id[:8]), "a rate for the fill", describe=top.pump)
    finally:
        status = top.quit()
    assert status == 0


def test_top_says_when_the_node_is_unreachable_and_still_quits() -> None:
    top = Screen("--port", str(free_port()), "--interval", "0.2")
    try:
        wait_until(lambda: top.shows("node unreachable, retrying"), "the unreachable line", describe=top.pump)
    finally:
        status = top.quit()
    assert status == 0


def test_ctrl_c_quits_cleanly_too() -> None:
    top = Screen("--port", str(free_port()), "--interval", "0.2")
    try:
        wait_until(lambda: top.shows("imagecache top"), "the first frame", describe=top.pump)
    finally:
        status = top.quit("\x03")  # the terminal turns it into SIGINT
    assert status == 0


def test_top_once_prints_one_frame(filling) -> None:
    server, image_id = filling
    wait_until(lambda: activity_fill(server, image_id), "the fill to start")
    done = run_imagecache("top", "--port", str(server.port), "-A", server.tokens.token("admin"), "--once",
                          "--interval", "0.5")
    assert done.returncode == 0, done.stderr
    assert image_id[:8] in done.stdout and "ubuntu-noble" in done.stdout
    assert "hit ratio" in done.stdout
    assert "\x1b" not in done.stdout


def test_top_once_on_an_unreachable_node_is_one_line() -> None:
    done = run_imagecache("top", "--port", str(free_port()), "--once")
    assert done.returncode == 1
    assert done.stderr.strip() == "Error: node unreachable"
