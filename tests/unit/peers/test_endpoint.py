"""The peer endpoint over a real ImageCache in a tmp dir: cached images, refusals, and what it passes on."""

from __future__ import annotations

import json
import logging
import os

import pytest
from webob import Request

from imagecache import ImageCache, Settings
from imagecache.http.file_body import FileRangeBody
from imagecache.peers import protocol
from imagecache.peers.endpoint import PeerEndpoint

from .endpoint_support import PEER_ADDRESS, TOKEN, Inner, make_image, peer_environ, put_in_cache


@pytest.fixture
def cache(tmp_path):
    cache = ImageCache(Settings(image_cache_dir=str(tmp_path / "cache"), image_cache_min_free=0, peer_token=TOKEN))
    yield cache
    cache.close()


@pytest.fixture
def inner():
    return Inner()


@pytest.fixture
def endpoint(cache, inner):
    return PeerEndpoint(inner, cache, cache.settings, cache.metrics)


def ask(app, path, **request):
    return Request(peer_environ(path, **request)).get_response(app)


def served(cache) -> float:
    return cache.metrics.peer_served_bytes._value.get()


def error_of(response) -> dict:
    assert response.content_type == "application/json"
    return json.loads(response.body)["error"]


def test_it_needs_the_clusters_token(cache, inner):
    with pytest.raises(ValueError, match="peer_token"):
        PeerEndpoint(inner, cache, Settings(image_cache_dir=cache.settings.image_cache_dir), cache.metrics)


# -- a cached image ----------------------------------------------------------------------


def test_a_cached_image_is_sent_whole_from_its_file(cache, endpoint, inner):
    image = make_image()
    put_in_cache(cache, image)
    hits = cache.get_hit_count(image.image_id)
    response = ask(endpoint, protocol.image_path(image.image_id))
    assert response.status_int == 200
    assert response.body == image.data
    assert response.headers["Content-Length"] == str(image.size)
    assert response.headers[protocol.SIZE_HEADER] == str(image.size)
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Cache-Status"] == "imagecache; hit"
    assert response.content_type == "application/octet-stream"
    assert served(cache) == image.size
    assert inner.calls == []
    assert cache.get_hit_count(image.image_id) == hits  # a peer's read is no user's download


def test_the_file_goes_to_the_worker_as_a_sendfile_range(cache, endpoint):
    image = make_image()
    put_in_cache(cache, image)
    statuses = []
    body = endpoint(peer_environ(protocol.image_path(image.image_id), Range="bytes=1000-"),
                    lambda status, headers, exc_info=None: statuses.append(status))
    try:
        assert isinstance(body, FileRangeBody)
        fd, offset, length = body.sendfile_source()
        assert (offset, length) == (1000, image.size - 1000)
        assert os.pread(fd, length, offset) == image.data[1000:]
        body.on_bytes(length)  # what the worker reports for what it sent
    finally:
        body.close()
    assert statuses == ["206 Partial Content"]
    assert served(cache) == image.size - 1000


@pytest.mark.parametrize("offset", [0, 1, 150_000, 299_999])
def test_a_range_from_an_offset_is_206_to_the_end(cache, endpoint, offset):
    image = make_image()
    put_in_cache(cache, image)
    response = ask(endpoint, protocol.image_path(image.image_id), Range=f"bytes={offset}-")
    assert response.status_int == 206
    assert response.body == image.data[offset:]
    assert response.headers["Content-Range"] == f"bytes {offset}-{image.size - 1}/{image.size}"
    assert response.headers["Content-Length"] == str(image.size - offset)
    assert response.headers[protocol.SIZE_HEADER] == str(image.size)
    assert served(cache) == image.size - offset


@pytest.mark.parametrize("offset", [300_000, 300_001, 10**30])
def test_an_offset_at_or_past_the_end_is_416(cache, endpoint, offset):
    image = make_image()
    put_in_cache(cache, image)
    response = ask(endpoint, protocol.image_path(image.image_id), Range=f"bytes={offset}-")
    assert response.status_int == 416
    assert response.headers["Content-Range"] == f"bytes */{image.size}"
    assert response.headers[protocol.SIZE_HEADER] == str(image.size)
    assert error_of(response)["code"] == 416
    assert served(cache) == 0


@pytest.mark.parametrize("header", ["bytes=0-10", "bytes=-100", "bytes=0-,5-", "items=0-", "bytes=x-", ""])
def test_any_other_range_is_400(cache, endpoint, header):
    image = make_image()
    put_in_cache(cache, image)
    response = ask(endpoint, protocol.image_path(image.image_id), Range=header)
    assert response.status_int == 400
    assert "bytes=<offset>-" in error_of(response)["message"]
    assert served(cache) == 0


def test_head_says_what_a_get_would_send_and_holds_nothing_open(cache, endpoint):
    image = make_image()
    put_in_cache(cache, image)
    open_before = len(os.listdir("/proc/self/fd"))
    statuses = []
    body = endpoint(peer_environ(protocol.image_path(image.image_id), method="HEAD", Range="bytes=10-"),
                    lambda status, headers, exc_info=None: statuses.append((status, dict(headers))))
    assert body == []
    assert len(os.listdir("/proc/self/fd")) == open_before  # the file was closed
    status, headers = statuses[0]
    assert status == "206 Partial Content"
    assert headers["Content-Length"] == str(image.size - 10)
    assert headers[protocol.SIZE_HEADER] == str(image.size)
    assert served(cache) == 0


def test_an_id_in_capitals_is_the_same_image(cache, endpoint):
    image = make_image()
    put_in_cache(cache, image)
    response = ask(endpoint, protocol.image_path(image.image_id.upper()))
    assert response.status_int == 200 and response.body == image.data


# -- neither cached nor filling ---------------------------------------------------------------


def test_an_image_this_node_does_not_have_is_404_and_no_fill_starts(cache, endpoint, inner):
    image = make_image()
    response = ask(endpoint, protocol.image_path(image.image_id))
    assert response.status_int == 404
    assert image.image_id in error_of(response)["message"]
    assert inner.calls == []  # neither the image service nor anyone else was asked
    assert not cache.is_cached(image.image_id)
    assert not cache.is_being_cached(image.image_id)
    assert os.listdir(cache.layout.incomplete_dir) == []


# -- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("token", "headers"), [
    (None, {}),
    (None, {"X-Auth-Token": "tok-admin-0a6f"}),  # a user's token opens nothing here
    (None, {"X-Auth-Token": TOKEN}),  # nor the peer token in the user's header
    ("not-the-token", {}),
    ("", {}),
    (TOKEN[:-1], {}),
    (TOKEN + "x", {}),
    (TOKEN.upper(), {"X-Auth-Token": "tok-admin-0a6f"}),
])
def test_without_the_right_peer_token_it_is_401_and_nothing_is_served(cache, endpoint, inner, caplog, token,
                                                                       headers):
    image = make_image()
    put_in_cache(cache, image)
    caplog.set_level(logging.INFO, logger="imagecache.peers.endpoint")
    response = ask(endpoint, protocol.image_path(image.image_id), token=token, **headers)
    assert response.status_int == 401
    assert response.headers["WWW-Authenticate"].startswith("Token ")
    assert protocol.TOKEN_HEADER in error_of(response)["message"]
    assert image.data not in response.body
    assert served(cache) == 0
    assert inner.calls == []
    refusals = [r for r in caplog.records if r.name == "imagecache.peers.endpoint"]
    assert len(refusals) == 1 and refusals[0].levelno == logging.INFO
    line = refusals[0].getMessage()
    assert PEER_ADDRESS in line
    assert TOKEN not in line and (not token or token not in line)


def test_the_token_is_checked_before_anything_else(endpoint):
    for method, path in [("POST", protocol.image_path(make_image().image_id)), ("GET", "/peer/v1/images/nope")]:
        assert ask(endpoint, path, token="not-the-token", method=method).status_int == 401


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "0b6e3c2e6a3f4f3e9d7e1c2b3a4d5e6f",
                                    "{0b6e3c2e-6a3f-4f3e-9d7e-1c2b3a4d5e6f}", "..", "x" * 5000, "%00"])
def test_a_bad_id_is_400(cache, endpoint, inner, bad_id):
    response = ask(endpoint, f"/peer/v1/images/{bad_id}")
    assert response.status_int == 400
    assert "not a UUID" in error_of(response)["message"]
    assert inner.calls == []


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_405_with_allow(cache, endpoint, inner, method):
    image = make_image()
    put_in_cache(cache, image)
    response = ask(endpoint, protocol.image_path(image.image_id), method=method)
    assert response.status_int == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert error_of(response)["code"] == 405
    assert cache.is_cached(image.image_id)  # a DELETE here deletes nothing
    assert inner.calls == []


# -- every other path ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", [
    "/v2/images/0b6e3c2e-6a3f-4f3e-9d7e-1c2b3a4d5e6f/file",
    "/v2/images",
    "/peer/v1/images/",
    "/peer/v1/images/0b6e3c2e-6a3f-4f3e-9d7e-1c2b3a4d5e6f/file",
    "/peer/v2/images/0b6e3c2e-6a3f-4f3e-9d7e-1c2b3a4d5e6f",
    "/peer",
    "/",
])
@pytest.mark.parametrize("token", [None, TOKEN])
def test_every_other_path_goes_to_the_app_untouched(endpoint, inner, path, token):
    environ = peer_environ(path, token=token, Range="bytes=0-", **{"X-Auth-Token": "tok-admin-0a6f"})
    before = dict(environ)
    statuses = []
    body = endpoint(environ, lambda status, headers, exc_info=None: statuses.append(status))
    assert list(body) == [b"the app behind"]
    assert statuses == ["404 Not Found"]
    assert len(inner.calls) == 1 and inner.calls[0] is environ
    assert environ == before
