"""FileStream: a file range to a non-blocking socket, completion before the last piece."""

from __future__ import annotations

import os
import selectors
import socket
from pathlib import Path

import pytest

from imagecache.serving.file_stream import PIECE, FileStream, Outcome


class Body:
    def __init__(self) -> None:
        self.counted = 0
        self.completed_at: int | None = None
        self.closed = False

    def sendfile_source(self) -> tuple[int, int, int] | None:
        return None

    def on_bytes(self, n: int) -> None:
        self.counted += n

    def complete(self) -> None:
        self.completed_at = self.counted

    def close(self) -> None:
        self.closed = True


def drive(stream: FileStream, body: Body, peer: socket.socket) -> bytes:
    """The worker's loop in miniature: pump when writable, read the other end."""
    received = bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(peer, selectors.EVENT_READ)
        while True:
            outcome = stream.pump()
            if outcome == Outcome.NEEDS_COMPLETION:
                body.complete()
                stream.completed = True
                continue
            if outcome in (Outcome.DONE, Outcome.BROKEN):
                break
            for _ in selector.select(timeout=5):
                received += peer.recv(1 << 20)
    return bytes(received) + drain(peer)


def drain(peer: socket.socket) -> bytes:
    """Whatever the other end of a socket pair has received and not yet read."""
    received = bytearray()
    peer.setblocking(False)
    try:
        while chunk := peer.recv(1 << 20):
            received += chunk
    except BlockingIOError:
        pass
    return bytes(received)


@pytest.mark.parametrize(("offset", "length"), [(0, 0), (0, 1), (5, PIECE), (1, 3 * PIECE + 7), (100, 2 * PIECE)])
def test_the_range_arrives_whole_and_completion_comes_before_the_last_piece(
        tmp_path: Path, offset: int, length: int) -> None:
    data = os.urandom(offset + length + 11)
    path = tmp_path / "image"
    path.write_bytes(data)
    left, right = socket.socketpair()
    left.setblocking(False)
    body = Body()
    with left, right, open(path, "rb") as file:
        stream = FileStream(left, body, file.fileno(), offset, length)
        got = drive(stream, body, right)
        assert stream.progress.remaining == 0
    assert got == data[offset:offset + length]
    assert body.counted == length
    assert body.completed_at is not None and length - body.completed_at <= PIECE


def test_a_client_that_goes_away_is_broken_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "image"
    path.write_bytes(os.urandom(4 * PIECE))
    left, right = socket.socketpair()
    left.setblocking(False)
    right.close()
    body = Body()
    with left, open(path, "rb") as file:
        stream = FileStream(left, body, file.fileno(), 0, 4 * PIECE)
        assert stream.pump() == Outcome.BROKEN
        assert stream.error is not None


def test_a_file_shorter_than_its_range_is_broken(tmp_path: Path) -> None:
    path = tmp_path / "image"
    path.write_bytes(b"x" * 10)
    left, right = socket.socketpair()
    left.setblocking(False)
    with left, right, open(path, "rb") as file:
        stream = FileStream(left, Body(), file.fileno(), 0, 3 * PIECE)
        assert stream.pump() == Outcome.BROKEN


def test_send_range_from_a_thread_sends_the_range_through_a_socket_in_timeout_mode(tmp_path: Path) -> None:
    import threading

    from imagecache.serving.file_stream import send_range

    data = os.urandom(5 * PIECE + 3)
    path = tmp_path / "image"
    path.write_bytes(data)
    left, right = socket.socketpair()
    left.settimeout(30)
    received = bytearray()

    def read() -> None:
        while len(received) < len(data) - 7:
            received.extend(right.recv(1 << 20))

    reader = threading.Thread(target=read)
    reader.start()
    with left, right, open(path, "rb") as file:
        send_range(left, file.fileno(), 7, len(data) - 7, timeout=30)
        reader.join(30)
    assert bytes(received) == data[7:]


def test_send_range_gives_up_on_a_client_that_reads_nothing(tmp_path: Path) -> None:
    from imagecache.serving.file_stream import send_range

    path = tmp_path / "image"
    path.write_bytes(os.urandom(16 * PIECE))
    left, right = socket.socketpair()
    left.settimeout(0.2)
    with left, right, open(path, "rb") as file, pytest.raises(TimeoutError):
        send_range(left, file.fileno(), 0, 16 * PIECE, timeout=0.2)
