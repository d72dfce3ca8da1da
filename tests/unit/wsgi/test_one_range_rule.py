"""One Range rule: the same GET gets the same answer whether the image is cached, not, or being filled.

Each example sends one request (Range x If-Range, v1 or v2) through the cache
filter over the embedded image app three times: with the image cached, not
cached, and while a fill of it is in progress.  The three answers must agree
on status, Content-Range, Content-Length, ETag, Accept-Ranges, Content-MD5
(present or not) and body, and match the slicing oracle.  The same holds in
edge mode in front of upstreams that handle Range like a real Glance may:
one that ignores If-Range (and sends no validator of its own), and one that
ignores Range altogether.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from webob import Request

from imagecache import ImageCache, Settings
from imagecache.http.context import RequestContext, set_context
from imagecache.images import make_app
from imagecache.wsgi.cache_filter import CacheFilter
from tests.support.range_oracle import Ask, asks
from tests.support.waiting import wait_until
from tests.support.wsgi import call

SIZES = (1, 7, 5000)
#: The answer's fields the rule decides (Content-MD5: present or not).
FIELDS = ("content-range", "content-length", "etag", "accept-ranges")


class GlanceLike:
    """An upstream that handles image data its own way: If-Range (or Range too) ignored, no validator sent."""

    def __init__(self, app: Callable[..., Iterable[bytes]], *, ignore_range: bool) -> None:
        self.app = app
        self.ignore_range = ignore_range

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "GET":
            environ = dict(environ)
            environ.pop("HTTP_IF_RANGE", None)
            if self.ignore_range:
                environ.pop("HTTP_RANGE", None)

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            kept = [(k, v) for k, v in headers if k.lower() not in ("etag", "accept-ranges")]
            return start_response(status, kept, exc_info)

        return self.app(environ, start)


@dataclass
class Node:
    app: CacheFilter
    cache: ImageCache
    images: dict[int, tuple[str, bytes]]  # size -> (id, data)


def build(tmp_path: Any, upstream: str) -> Node:
    options = Settings(data_dir=str(tmp_path / "data"), image_cache_min_free=0)
    images_app = make_app(options)
    cache = ImageCache(options)
    if upstream == "embedded":
        app = CacheFilter(images_app, cache)
    else:
        app = CacheFilter(GlanceLike(images_app, ignore_range=upstream == "ignores-range"), cache, proxy=True)
    images = {}
    for size in SIZES:
        data = os.urandom(size)
        made = call(app, "POST", "/v2/images", json.dumps({"name": "r", "disk_format": "raw",
                                                          "container_format": "bare"}).encode(), "application/json")
        image_id = made.json["id"]
        assert call(app, "PUT", f"/v2/images/{image_id}/file", data, "application/octet-stream").status_int == 204
        images[size] = (image_id, data)
    return Node(app, cache, images)


@pytest.fixture(scope="module", params=["embedded", "ignores-if-range", "ignores-range"])
def node(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Node:
    return build(tmp_path_factory.mktemp(request.param), request.param)


# -- the three states ------------------------------------------------------------------


def settle(cache: ImageCache, image_id: str) -> None:
    """Wait until no fill of the image is running (one a whole-image miss started publishes late)."""
    wait_until(lambda: not cache.is_being_cached(image_id), f"the fill of {image_id} to end")


def make_cached(node: Node, image_id: str, data: bytes) -> None:
    settle(node.cache, image_id)
    if not node.cache.is_cached(image_id):
        assert call(node.app, "GET", f"/v2/images/{image_id}/file").body == data
        wait_until(lambda: node.cache.is_cached(image_id), f"image {image_id} to be cached")


def make_uncached(node: Node, image_id: str) -> None:
    settle(node.cache, image_id)
    node.cache.delete_cached_image(image_id)
    assert not node.cache.is_cached(image_id)


class Gate:
    """A fill source that sends the first half, then waits for the test to let it finish."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.open = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        half = len(self.data) // 2
        if half:
            yield self.data[:half]
        assert self.open.wait(30), "the test never let the fill finish"
        yield self.data[half:]


def start_fill(node: Node, image_id: str, data: bytes) -> tuple[Gate, Any]:
    """Claim the fill as another request would have, and leave it running mid-image."""
    make_uncached(node, image_id)
    claim = node.cache.claim_fill(image_id, hashlib.md5(data).hexdigest(), os_hash_algo="sha512",
                                  os_hash_value=hashlib.sha512(data).hexdigest(), size=len(data))
    assert claim is not None
    gate = Gate(data)
    reader = claim.start(gate)
    assert node.cache.is_being_cached(image_id)
    return gate, reader


# -- one request, three ways -----------------------------------------------------------


def send(node: Node, path: str, headers: dict[str, str], before_body: Callable[[], None] = lambda: None) -> tuple:
    """(status, fields, Content-MD5 present, body), the body read only after ``before_body()``."""
    request = Request.blank(path, headers=headers)
    set_context(request.environ, RequestContext.admin(project_id="p1"))
    status, response_headers, body = request.call_application(node.app)
    before_body()
    try:
        data = b"".join(body)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    found = {k.lower(): v for k, v in response_headers}
    return int(status[:3]), tuple(found.get(name) for name in FIELDS), "content-md5" in found, data


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.sampled_from(SIZES), version=st.sampled_from(["v2", "v1"]), ask=asks(5100))
@example(size=7, version="v2", ask=Ask("closed", 2, 4, "", "same"))
@example(size=7, version="v2", ask=Ask("closed", 2, 4, "", "weak"))
@example(size=7, version="v2", ask=Ask("open", 7, 0, "", "none"))
@example(size=5000, version="v2", ask=Ask("suffix", 100, 0, " ", "same-padded"))
@example(size=5000, version="v2", ask=Ask("ignored", 0, 0, "", "none", "bytes=0-1,3-4"))
@example(size=1, version="v1", ask=Ask("open", 0, 0, "", "date"))
def test_the_answer_does_not_depend_on_the_cache(node: Node, size: int, version: str, ask: Ask) -> None:
    image_id, data = node.images[size]
    md5 = hashlib.md5(data).hexdigest()
    etag = f'"{md5}"'
    path = f"/v2/images/{image_id}/file" if version == "v2" else f"/v1/images/{image_id}"
    headers = ask.headers(etag)

    metrics = node.cache.metrics
    hits, misses, followers = metrics.cache_hits._value, metrics.cache_misses._value, metrics.fill_followers._value

    make_cached(node, image_id, data)
    before = hits.get()
    cached = send(node, path, headers)
    assert hits.get() == before + (cached[0] != 416)  # served from the cache (a 416 counts as nothing)

    make_uncached(node, image_id)
    before = misses.get()
    uncached = send(node, path, headers)
    assert misses.get() == before + (uncached[0] != 416)

    gate, reader = start_fill(node, image_id, data)
    try:
        before = followers.get()
        filling = send(node, path, headers, before_body=gate.open.set)
        assert followers.get() == before + (filling[0] == 200)  # a whole image follows the fill
    finally:
        gate.open.set()
        reader.close()

    assert cached == uncached == filling, (ask, headers)

    expected = ask.expect(data)
    status, (content_range, content_length, sent_etag, accept_ranges), has_md5, body = cached
    assert status == expected.status
    assert body == expected.body
    assert content_range == expected.content_range(size)
    assert content_length == str(len(expected.body))
    if status == 416:
        assert (sent_etag, accept_ranges, has_md5) == (None, None, False)
    else:
        assert sent_etag == etag and accept_ranges == "bytes"
        assert has_md5 == (status == 200 and version == "v2")  # only whole-image answers carry the digest
