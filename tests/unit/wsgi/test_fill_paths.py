"""The cache filter's miss paths in-process: joining fills, resuming from the app, passing through."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator

import pytest
from webob import Request

from imagecache import ImageCache, Settings
from imagecache.cache import FillFailed
from imagecache.http.context import RequestContext, set_context
from imagecache.images import make_app
from imagecache.wsgi.bodies import FillBody
from imagecache.wsgi.cache_filter import CacheFilter
from tests.support.waiting import wait_until


class CountingApp:
    """The embedded image app, counting the image bytes it sends (and slowed, to overlap requests)."""

    def __init__(self, app, pause: float = 0.0) -> None:
        self.app = app
        self.pause = pause
        self.sent = 0
        self.data_requests: list[str | None] = []
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        body = self.app(environ, start_response)
        if not environ["PATH_INFO"].endswith("/file") or environ["REQUEST_METHOD"] != "GET":
            return body
        self.data_requests.append(environ.get("HTTP_RANGE"))
        return self._count(body)

    def _count(self, body) -> Iterator[bytes]:
        import time

        try:
            for chunk in body:
                with self._lock:
                    self.sent += len(chunk)
                time.sleep(self.pause)
                yield chunk
        finally:
            close = getattr(body, "close", None)
            if close:
                close()


def call(app, method: str, path: str, body: bytes | None = None, headers=None):
    request = Request.blank(path, method=method, headers=headers or {})
    set_context(request.environ, RequestContext.admin(project_id="p1"))
    if body is not None:
        request.body = body
        request.content_type = "application/octet-stream" if method == "PUT" else "application/json"
    response = request.get_response(app)
    response.body  # noqa: B018 - read it all, as a client would
    return response


@pytest.fixture
def stack(tmp_path):
    settings = Settings(data_dir=str(tmp_path / "data"), image_cache_min_free=0)
    origin = CountingApp(make_app(settings), pause=0.002)
    cache = ImageCache(settings)
    return CacheFilter(origin, cache), origin, cache


def upload(app, data: bytes) -> str:
    fields = {"name": "i", "disk_format": "raw", "container_format": "bare"}
    made = call(app, "POST", "/v2/images", json.dumps(fields).encode())
    image_id = made.json["id"]
    assert call(app, "PUT", f"/v2/images/{image_id}/file", data).status_int == 204
    return image_id


def test_concurrent_misses_read_the_image_once(stack):
    app, origin, cache = stack
    data = os.urandom(4 << 20)
    image_id = upload(app, data)
    bodies: list[bytes] = []
    barrier = threading.Barrier(6)

    def get() -> None:
        barrier.wait()
        bodies.append(call(app, "GET", f"/v2/images/{image_id}/file").body)

    threads = [threading.Thread(target=get) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert bodies == [data] * 6
    assert origin.sent == len(data)
    wait_until(lambda: cache.is_cached(image_id), "the fill to publish")
    m = cache.metrics
    assert m.upstream_bytes._value.get() == len(data)
    assert m.fill_followers._value.get() + m.cache_hits._value.get() == 5
    assert m.cache_misses._value.get() + m.cache_hits._value.get() == 6


def test_a_range_on_an_uncached_image_passes_through_without_a_fill(stack):
    app, _origin, cache = stack
    data = os.urandom(100_000)
    image_id = upload(app, data)
    answer = call(app, "GET", f"/v2/images/{image_id}/file", headers={"Range": "bytes=10-19"})
    assert answer.status_int == 206 and answer.body == data[10:20]
    assert not cache.is_cached(image_id)
    assert os.listdir(cache.layout.incomplete_dir) == []
    assert cache.metrics.served_bytes.labels(source="upstream")._value.get() == 10


class StubReader:
    """A reader that delivers ``data`` and then reports its fill stopped."""

    image_id = "8d5ff07e-3b8b-4c6a-9d77-0f2f2b4dfa0c"

    def __init__(self, data: bytes, size: int) -> None:
        self.data, self.size, self.closed = data, size, False

    fd = -1  # never read: read() below stands in for the file

    def pieces(self):
        yield 0, len(self.data)
        raise FillFailed(self.image_id, len(self.data), "test")

    def read(self, offset: int, length: int):
        yield self.data[offset:offset + length]

    def close(self) -> None:
        self.closed = True


IMAGE = bytes(range(256)) * 40


@pytest.mark.parametrize("answer", ["206", "200"])
def test_a_stopped_fill_resumes_from_the_app(answer):
    offset = 1000
    seen: list[int] = []

    def resume(start: int):
        seen.append(start)
        if answer == "206":
            headers = {"Content-Range": f"bytes {start}-{len(IMAGE) - 1}/{len(IMAGE)}"}
            return 206, headers, iter([IMAGE[start:start + 500], IMAGE[start + 500:]])
        return 200, {}, iter([IMAGE[:3000], IMAGE[3000:]])  # Range ignored: skip what was sent

    reader = StubReader(IMAGE[:offset], len(IMAGE))
    body = FillBody(reader, resume, len(IMAGE))
    assert b"".join(body) == IMAGE
    body.close()
    assert seen == [offset] and reader.closed


def test_a_resume_with_the_wrong_range_or_too_few_bytes_fails_visibly():
    reader = StubReader(IMAGE[:100], len(IMAGE))
    wrong_part = {"Content-Range": f"bytes 0-9/{len(IMAGE)}"}
    wrong = FillBody(reader, lambda s: (206, wrong_part, iter([b"x" * 10])), len(IMAGE))
    with pytest.raises(OSError, match="wrong range"):
        b"".join(wrong)
    short = FillBody(StubReader(IMAGE[:100], len(IMAGE)), lambda s: (200, {}, iter([IMAGE[:200]])), len(IMAGE))
    with pytest.raises(OSError, match="ended"):
        b"".join(short)
    refused = FillBody(StubReader(IMAGE[:100], len(IMAGE)), lambda s: (403, {}, iter([b"no"])), len(IMAGE))
    with pytest.raises(OSError, match="403"):
        b"".join(refused)
