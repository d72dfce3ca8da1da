"""The cache over real HTTP: a real ``imagecache serve`` on loopback, tokens auth."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest

from tests.support.waiting import wait_until

from .conftest import RunningServer


def create(server: RunningServer, user: str, data: bytes, **extra: object) -> str:
    made = server.request("POST", "/v2/images", user=user, json_body={
        "name": "img", "disk_format": "raw", "container_format": "bare", **extra,
    })
    assert made.status == 201, made.text
    image_id = made.json()["id"]
    put = server.request("PUT", f"/v2/images/{image_id}/file", user=user, body=data,
                         headers={"Content-Type": "application/octet-stream"})
    assert put.status == 204, put.text
    return image_id


def cache_listing(server: RunningServer) -> dict[str, dict]:
    answer = server.request("GET", "/v2/cache", user="admin")
    assert answer.status == 200
    return {entry["image_id"]: entry for entry in answer.json()["cached_images"]}


def wait_cached(server: RunningServer, image_id: str) -> dict:
    """The cache entry once it is published (the fill publishes after the last byte is sent)."""
    return wait_until(lambda: cache_listing(server).get(image_id), f"image {image_id} to be cached",
                      describe=lambda: sorted(cache_listing(server)))


@pytest.fixture(scope="module")
def data() -> bytes:
    return os.urandom(3 << 20) + b"tail"


def test_miss_then_hit_is_counted(cache_node, data):
    image_id = create(cache_node, "alice", data)
    first = cache_node.request("GET", f"/v2/images/{image_id}/file", user="alice")
    assert first.status == 200 and first.body == data
    assert first.headers["content-md5"] == hashlib.md5(data).hexdigest()
    assert wait_cached(cache_node, image_id)["hits"] == 0
    for _ in range(2):
        hit = cache_node.request("GET", f"/v2/images/{image_id}/file", user="alice")
        assert hit.status == 200 and hit.body == data
        assert hit.headers["content-md5"] == hashlib.md5(data).hexdigest()
    entry = cache_listing(cache_node)[image_id]
    assert entry["hits"] == 2 and entry["size"] == len(data)
    cached = os.path.join(cache_node.data_dir, "image-cache", image_id)
    with open(cached, "rb") as file:
        assert file.read() == data


@pytest.mark.parametrize("spec", ["bytes=0-0", "bytes=100-200", "bytes=-5", "bytes=3000000-", "bytes=10-99999999"])
def test_range_from_a_cached_image(cache_node, data, spec):
    image_id = create(cache_node, "alice", data)
    cache_node.request("GET", f"/v2/images/{image_id}/file", user="alice")
    hits_before = wait_cached(cache_node, image_id)["hits"]
    answer = cache_node.request("GET", f"/v2/images/{image_id}/file", user="alice", headers={"Range": spec})
    first, _, last = spec[len("bytes="):].partition("-")
    expected = data[-int(last):] if first == "" else data[int(first): int(last) + 1 if last else None]
    assert answer.status == 206 and answer.body == expected
    assert answer.headers["content-range"].endswith(f"/{len(data)}")
    assert cache_listing(cache_node)[image_id]["hits"] == hits_before + 1


def test_unsatisfiable_range_on_a_cached_image_is_416(cache_node, data):
    image_id = create(cache_node, "alice", data)
    cache_node.request("GET", f"/v2/images/{image_id}/file", user="alice")
    wait_cached(cache_node, image_id)
    answer = cache_node.request("GET", f"/v2/images/{image_id}/file", user="alice",
                                   headers={"Range": f"bytes={len(data)}-"})
    assert answer.status == 416 and answer.headers["content-range"] == f"bytes */{len(data)}"


def test_a_private_image_of_another_project_is_404_even_when_cached(cache_node, data):
    image_id = create(cache_node, "alice", data)
    cache_node.request("GET", f"/v2/images/{image_id}/file", user="alice")
    wait_cached(cache_node, image_id)
    assert cache_node.request("GET", f"/v2/images/{image_id}/file", user="bob").status == 404
    assert cache_node.request("GET", f"/v1/images/{image_id}", user="bob").status == 404
    assert image_id in cache_listing(cache_node)  # bob's 404 evicted nothing


def test_deactivated_is_403_for_a_member_even_when_cached(cache_node, data):
    image_id = create(cache_node, "alice", data)
    cache_node.request("GET", f"/v2/images/{image_id}/file", user="alice")
    wait_cached(cache_node, image_id)
    assert cache_node.request("POST", f"/v2/images/{image_id}/actions/deactivate", user="admin").status == 204
    assert cache_node.request("GET", f"/v2/images/{image_id}/file", user="alice").status == 403
    admin = cache_node.request("GET", f"/v2/images/{image_id}/file", user="admin")
    assert admin.status == 200 and admin.body == data
    assert cache_node.request("POST", f"/v2/images/{image_id}/actions/reactivate", user="admin").status == 204
    assert cache_node.request("GET", f"/v2/images/{image_id}/file", user="alice").body == data


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_image_delete_evicts(cache_node, data, version):
    image_id = create(cache_node, "alice", data)
    cache_node.request("GET", f"/v2/images/{image_id}/file", user="alice")
    wait_cached(cache_node, image_id)
    assert cache_node.request("DELETE", f"/{version}/images/{image_id}", user="alice").status in (200, 204)
    assert image_id not in cache_listing(cache_node)
    assert not os.path.exists(os.path.join(cache_node.data_dir, "image-cache", image_id))


def test_legacy_v1_download_is_cached_with_v1_headers(cache_node, data):
    image_id = create(cache_node, "alice", data)
    miss = cache_node.request("GET", f"/v1/images/{image_id}", user="alice")
    assert miss.status == 200 and miss.body == data
    wait_cached(cache_node, image_id)
    hit = cache_node.request("GET", f"/v1/images/{image_id}", user="alice")
    assert hit.status == 200 and hit.body == data
    for header in ("x-image-meta-id", "x-image-meta-checksum", "x-image-meta-size", "x-image-meta-status"):
        assert hit.headers[header] == miss.headers[header]
    assert cache_listing(cache_node)[image_id]["hits"] == 1


def test_cache_api_is_admin_only(cache_node):
    some_id = str(uuid.uuid4())
    calls = [
        ("GET", "/v2/cache"), ("PUT", f"/v2/cache/{some_id}"), ("DELETE", f"/v2/cache/{some_id}"),
        ("DELETE", "/v2/cache"), ("POST", "/v2/cache/clean"), ("POST", "/v2/cache/prune"),
        ("GET", "/v1/cached_images"), ("GET", "/v2/queued_images"),
    ]
    for method, path in calls:
        assert cache_node.request(method, path, user="alice").status == 403, path
        assert cache_node.request(method, path).status == 401, path


def test_queue_prefetches_and_clear_targets(cache_node, data):
    image_id = create(cache_node, "alice", data)
    assert cache_node.request("PUT", f"/v2/cache/{image_id}", user="admin").status == 202
    assert wait_cached(cache_node, image_id)["size"] == len(data)  # nobody downloaded it
    assert cache_node.request("PUT", f"/v2/cache/{uuid.uuid4()}", user="admin").status == 404
    queued = str(uuid.uuid4())
    assert cache_node.request("PUT", f"/v1/queued_images/{queued}", user="admin").status == 200
    assert queued in cache_node.request("GET", "/v2/queued_images", user="admin").json()["queued_images"]
    bad = cache_node.request("DELETE", "/v2/cache", user="admin", headers={"x-image-cache-clear-target": "all"})
    assert bad.status == 400
    assert cache_node.request("DELETE", "/v2/cache", user="admin",
                                 headers={"x-image-cache-clear-target": "queue"}).status == 204
    listing = cache_node.request("GET", "/v2/cache", user="admin").json()
    assert listing["queued_images"] == [] and image_id in {e["image_id"] for e in listing["cached_images"]}
    assert cache_node.request("DELETE", "/v2/cache", user="admin").status == 204
    assert cache_listing(cache_node) == {}


def test_clean_and_prune_answer(cache_node):
    assert cache_node.request("POST", "/v2/cache/clean", user="admin").status == 200
    pruned = cache_node.request("POST", "/v2/cache/prune", user="admin")
    assert pruned.status == 200 and set(pruned.json()) == {"total_files_pruned", "total_bytes_pruned"}


@pytest.mark.parametrize("path", [
    "/v2/images/..%2f..%2fetc%2fpasswd/file", "/v2/images/not-a-uuid/file", "/v2/cache/..%2fcache.db",
    "/v1/cached_images/%2e%2e", "/v2/cache/12345678-1234-1234-1234-12345678zzzz",
])
def test_bad_ids_are_4xx(cache_node, path):
    for method in ("GET", "PUT", "DELETE"):
        answer = cache_node.request(method, path, user="admin")
        assert 400 <= answer.status < 500, (method, path, answer.status)


def test_bad_range_headers_never_5xx(cache_node, data):
    image_id = create(cache_node, "alice", data)
    cache_node.request("GET", f"/v2/images/{image_id}/file", user="alice")
    wait_cached(cache_node, image_id)
    for spec in ["bytes=", "bytes=5-1", "bytes=a-b", "items=0-1", "bytes=0-1,3-4", "bytes=--1", "x" * 5000]:
        answer = cache_node.request("GET", f"/v2/images/{image_id}/file", user="alice", headers={"Range": spec})
        assert answer.status == 200 and answer.body == data, spec


def test_range_and_if_range_get_the_same_answer_cached_or_not(cache_node, data):
    """Over HTTP, embedded and edge: ETag and If-Range as the one Range rule says, hit or miss."""
    image_id = create(cache_node, "alice", data)
    etag = f'"{hashlib.md5(data).hexdigest()}"'
    asks = [  # the ones that do not start a fill first; the last one (a whole image) does
        {"Range": "bytes=100-199", "If-Range": etag},
        {"Range": "bytes=-5"},
        {"Range": f"bytes={len(data)}-", "If-Range": etag},
        {"Range": "bytes=100-199", "If-Range": f"W/{etag}"},
    ]

    def answers() -> list[tuple]:
        seen = []
        for headers in asks:
            got = cache_node.request("GET", f"/v2/images/{image_id}/file", user="alice", headers=headers)
            fields = tuple(got.headers.get(name)
                           for name in ("content-range", "content-length", "etag", "accept-ranges"))
            seen.append((got.status, fields, "content-md5" in got.headers, got.body))
        return seen

    uncached = answers()
    wait_until(lambda: image_id in cache_listing(cache_node), f"image {image_id} to be cached")
    cached = answers()
    assert [answer[0] for answer in cached] == [206, 206, 416, 200]
    assert cached == uncached
    partial, suffix, unsatisfiable, whole = cached
    assert partial[3] == data[100:200] and suffix[3] == data[-5:] and whole[3] == data
    assert partial[1][2] == whole[1][2] == etag and not partial[2] and whole[2]
    assert unsatisfiable[1][0] == f"bytes */{len(data)}"
