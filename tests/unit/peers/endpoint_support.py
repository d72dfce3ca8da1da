"""What the peer endpoint's tests share: images, a fill the test drives, a peer's read on a thread."""

from __future__ import annotations

import fcntl
import hashlib
import os
import queue
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from webob import Request

from imagecache import ImageCache
from imagecache.cache.flight import readers_path
from imagecache.http.closing import quiet_close
from imagecache.peers import protocol
from tests.support.waiting import wait_until

TOKEN = "peer-s3cret-4b1d"
PEER_ADDRESS = "192.0.2.7"


@dataclass(frozen=True)
class Image:
    """Bytes with the metadata the image service would hold for them."""

    image_id: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def md5(self) -> str:
        return hashlib.md5(self.data).hexdigest()

    @property
    def sha512(self) -> str:
        return hashlib.sha512(self.data).hexdigest()


def make_image(size: int = 300_000) -> Image:
    return Image(str(uuid.uuid4()), os.urandom(size))


def put_in_cache(cache: ImageCache, image: Image) -> None:
    assert cache.cache_image_iter(image.image_id, iter([image.data]), image.md5, os_hash_value=image.sha512,
                                  size=image.size)


def peer_environ(path: str, *, token: str | None = TOKEN, method: str = "GET", **headers: str) -> dict[str, Any]:
    """The environ of a peer's request (``token`` None: none presented)."""
    sent = dict(headers)
    if token is not None:
        sent[protocol.TOKEN_HEADER] = token
    return Request.blank(path, method=method, headers=sent, environ={"REMOTE_ADDR": PEER_ADDRESS}).environ


class Inner:
    """The app behind the endpoint: answers 404 to everything and remembers what reached it."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.calls.append(environ)
        body = b"the app behind"
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]


class DrivenFill:
    """A fill of ``image`` whose source gives what the test sends it, and ends when the test says so.

    The claimant's own reader is closed at once: the test reads through the endpoint only.
    """

    _END = object()

    def __init__(self, cache: ImageCache, image: Image, *, size: int | None = -1, data: bytes | None = None) -> None:
        self.cache, self.image = cache, image
        self.data = image.data if data is None else data
        self._chunks: queue.Queue[Any] = queue.Queue()
        claim = cache.claim_fill(image.image_id, image.md5, os_hash_value=image.sha512,
                                 size=image.size if size == -1 else size)
        assert claim is not None
        self.claim = claim
        claim.start(self._source()).close()
        self.sent = 0

    def _source(self) -> Iterator[bytes]:
        while True:
            item = self._chunks.get(timeout=60)  # a test that never ends its fill fails it in the end
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def send(self, upto: int) -> None:
        """Write the image's bytes up to ``upto`` (and wait until they are on disk)."""
        self._chunks.put(self.data[self.sent:upto])
        self.sent = upto
        path = self.cache.layout.incomplete_path(self.image.image_id)
        wait_until(lambda: os.path.exists(path) and os.path.getsize(path) >= upto, f"{upto} bytes on disk")

    def end(self) -> None:
        """The source ends: the fill verifies and publishes (or invalidates)."""
        self._chunks.put(self._END)
        self.wait()

    def fail(self, error: BaseException) -> None:
        """The source fails: the fill stops without publishing."""
        self._chunks.put(error)
        self.wait()

    def wait(self) -> None:
        assert self.claim.thread is not None
        self.claim.thread.join(30)
        assert not self.claim.thread.is_alive()


def anyone_reading(cache: ImageCache, image_id: str) -> bool:
    """Does any reader hold the fill's readers file (as the fill itself checks)?"""
    try:
        fd = os.open(readers_path(cache.layout, image_id), os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


class PeerRead:
    """One peer GET of the endpoint, its body read on a thread as a peer would read it."""

    def __init__(self, app: Any, path: str, **request: Any) -> None:
        self.status: str | None = None
        self.headers: dict[str, str] = {}
        self.received = bytearray()
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.body = app(peer_environ(path, **request), self._start_response)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        self.status = status
        self.headers = {key.lower(): value for key, value in headers}

    def _read(self) -> None:
        try:
            for chunk in self.body:
                self.received += chunk
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            self.error = exc
        finally:
            quiet_close(self.body)
            self.done.set()

    def finish(self) -> bytes:
        assert self.done.wait(30), "the peer's read never ended"
        return bytes(self.received)
