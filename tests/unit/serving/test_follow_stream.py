"""FollowStream: a growing file to a non-blocking socket; parks at the writer's edge, hands the end off.

The body here is a stand-in for FillBody driven by the test (the file grows
when the test says so); the real pairing of FillBody, TailReader and the
worker is exercised by tests/functional/test_slow_clients.py.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from hypothesis import given, settings
from hypothesis import strategies as st

from imagecache.serving.file_stream import Outcome
from imagecache.serving.follow_stream import FollowStream, Run
from tests.unit.serving.test_file_stream import drain


class GrowingBody:
    """The file as written so far; ``grow`` appends and wakes a parked stream once."""

    def __init__(self, path: Path, size: int) -> None:
        self.path, self.size = path, size
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT)
        self.offset = 0
        self.done = False
        self.counted = 0
        self.waiting: Callable[[], None] | None = None
        self.moved_since_look = False

    def grow(self, data: bytes, *, done: bool = False) -> None:
        os.write(self.fd, data)
        self.done = done
        self.moved_since_look = True
        callback, self.waiting = self.waiting, None
        if callback is not None:
            callback()

    def next_run(self) -> Run | Literal["wait", "handoff"]:
        self.moved_since_look = False
        end = min(os.fstat(self.fd).st_size, self.size - 1)
        if end > self.offset:
            run = (self.fd, self.offset, end - self.offset)
            self.offset = end
            return run
        return "handoff" if self.done else "wait"

    def call_on_change(self, callback: Callable[[], None]) -> bool:
        if self.moved_since_look:
            return False
        self.waiting = callback
        return True

    def on_bytes(self, n: int) -> None:
        self.counted += n

    def close(self) -> None:
        os.close(self.fd)


@settings(max_examples=25, deadline=None)
@given(pieces=st.lists(st.integers(min_value=1, max_value=300_000), min_size=1, max_size=6))
def test_the_file_arrives_as_it_grows_all_but_the_last_byte_then_a_handoff(tmp_path_factory, pieces) -> None:
    path = tmp_path_factory.mktemp("follow") / "incomplete"
    data = os.urandom(sum(pieces))
    body = GrowingBody(path, len(data))
    server, peer = socket.socketpair()
    server.setblocking(False)
    wakes: list[int] = []
    stream = FollowStream(server, body, lambda: wakes.append(1))
    received = bytearray()
    parks = 0
    try:
        written = 0
        for index, piece in enumerate(pieces):
            body.grow(data[written:written + piece], done=index == len(pieces) - 1)
            written += piece
            while True:
                outcome = stream.pump()
                received += drain(peer)
                if outcome != Outcome.WAITING:
                    break
            assert outcome in (Outcome.PARKED, Outcome.HANDOFF)
            if outcome == Outcome.PARKED:
                assert stream.parked
                parks += 1
        received += drain(peer)
    finally:
        server.close()
        peer.close()
        body.close()
    assert outcome == Outcome.HANDOFF
    assert bytes(received) == data[:-1], "everything but the last byte, in order"
    assert body.counted == stream.sent == len(data) - 1
    assert parks == len(pieces) - 1, "it parked at the writer's edge after every growth but the last"
    assert len(wakes) == parks, "every park was woken by the next growth"


def test_a_change_between_the_look_and_the_park_wakes_at_once(tmp_path: Path) -> None:
    body = GrowingBody(tmp_path / "incomplete", 10)
    server, peer = socket.socketpair()
    server.setblocking(False)
    wakes: list[int] = []
    stream = FollowStream(server, body, lambda: wakes.append(1))
    original = body.next_run

    def racing() -> Run | Literal["wait", "handoff"]:
        answer = original()
        body.moved_since_look = True  # the writer moved right after the look
        return answer

    body.next_run = racing  # type: ignore[method-assign]
    try:
        assert stream.pump() == Outcome.PARKED
        assert wakes == [1], "the stream asks to be pumped again rather than sleep through the change"
    finally:
        server.close()
        peer.close()
        body.close()


def test_a_client_that_went_away_is_broken(tmp_path: Path) -> None:
    body = GrowingBody(tmp_path / "incomplete", 1 << 20)
    body.grow(os.urandom(1 << 19))
    server, peer = socket.socketpair()
    server.setblocking(False)
    peer.close()
    stream = FollowStream(server, body, lambda: None)
    try:
        assert stream.pump() == Outcome.BROKEN
        assert stream.error is not None
    finally:
        server.close()
        body.close()
