"""A small fake image service for the unit tests of the cache management API and the prefetcher.

It stands in for the real image service (the embedded Glance-v2 app, or an
upstream Glance behind the proxy), which the functional tests exercise.  It
answers only what the cache asks of an image app:

* ``GET /v2/images/{id}``: the image's JSON (status, checksum, os_hash_algo,
  os_hash_value, size, owner, visibility), or 404 when the caller may not see it;
* ``GET /v2/images/{id}/file``: the bytes, in chunks.

Visibility: a public image is seen by everyone, a private one by its owner's
project; admins see everything unless ``admin_sees_all`` is turned off, which
lets a test show that the filter defers to the app's answer.  Tests may also
make an image lie about its bytes (``served``), hold its data back until a
gate opens, or fail its data.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from imagecache.http.context import get_context

StartResponse = Callable[..., Any]

_IMAGE = re.compile(r"\A/v2/images/([^/]+)\Z")
_FILE = re.compile(r"\A/v2/images/([^/]+)/file\Z")
CHUNK = 64 * 1024


@dataclass
class FakeImage:
    image_id: str
    data: bytes
    owner: str = "p-admin"
    status: str = "active"
    visibility: str = "private"
    #: Bytes the data call really sends (None: ``data``): to break verification.
    served: bytes | None = None
    #: Status of the data call (e.g. 500 for a broken backend).
    data_status: int = 200
    #: When set, the data body waits for it before sending anything.
    gate: threading.Event | None = None
    #: Raise after this many bytes of the body (a connection dropped mid-image).
    fail_after: int | None = None
    name: str | None = None

    def metadata(self) -> dict[str, Any]:
        return {
            "id": self.image_id,
            "name": self.name,
            "status": self.status,
            "owner": self.owner,
            "visibility": self.visibility,
            "size": len(self.data),
            "checksum": hashlib.md5(self.data).hexdigest(),
            "os_hash_algo": "sha512",
            "os_hash_value": hashlib.sha512(self.data).hexdigest(),
            "disk_format": "raw",
            "container_format": "bare",
        }


@dataclass
class FakeImageService:
    """The fake image app (a plain WSGI callable)."""

    admin_sees_all: bool = True
    images: dict[str, FakeImage] = field(default_factory=dict)
    data_requests: list[str] = field(default_factory=list)
    tokens_seen: list[str | None] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, data: bytes | None = None, **options: Any) -> FakeImage:
        image_id = options.pop("image_id", None) or str(uuid.uuid4())
        if data is None:
            data = hashlib.sha256(image_id.encode()).digest() * 4096  # 128 KiB
        image = FakeImage(image_id, data, **options)
        self.images[image_id] = image
        return image

    def visible(self, environ: dict[str, Any], image: FakeImage) -> bool:
        context = get_context(environ)
        if context.is_admin and self.admin_sees_all:
            return True
        return image.visibility == "public" or (context.project_id is not None and context.project_id == image.owner)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        path = environ.get("PATH_INFO", "")
        self.tokens_seen.append(environ.get("HTTP_X_AUTH_TOKEN"))
        for pattern, answer in ((_IMAGE, self._metadata), (_FILE, self._data)):
            found = pattern.match(path)
            if found and method == "GET":
                image = self.images.get(found.group(1))
                if image is None or not self.visible(environ, image):
                    missing = {"message": f"No image found with ID {found.group(1)}"}
                    return _json(start_response, "404 Not Found", missing)
                return answer(image, start_response)
        return _json(start_response, "404 Not Found", {"message": "The resource could not be found."})

    def _metadata(self, image: FakeImage, start_response: StartResponse) -> Iterable[bytes]:
        return _json(start_response, "200 OK", image.metadata())

    def _data(self, image: FakeImage, start_response: StartResponse) -> Iterable[bytes]:
        self.data_requests.append(image.image_id)
        if image.data_status != 200:
            return _json(start_response, f"{image.data_status} Failed", {"message": "backend trouble"})
        body = image.served if image.served is not None else image.data
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))])
        return self._stream(image, body)

    def _stream(self, image: FakeImage, body: bytes) -> Iterator[bytes]:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if image.gate is not None and not image.gate.wait(timeout=30):
                raise RuntimeError("test gate never opened")
            for start in range(0, len(body), CHUNK):
                if image.fail_after is not None and start >= image.fail_after:
                    raise ConnectionError("the backend went away")
                yield body[start : start + CHUNK]
        finally:
            with self._lock:
                self.in_flight -= 1


def _json(start_response: StartResponse, status: str, body: Any) -> list[bytes]:
    payload = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]


def app_factory(global_conf: dict[str, Any], **local_conf: Any) -> FakeImageService:
    """paste.deploy entry point, to build a pipeline around the fake service."""
    return FakeImageService()
