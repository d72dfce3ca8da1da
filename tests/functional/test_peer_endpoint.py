"""The peer endpoint of a real ``imagecache serve --peer-token`` (gunicorn, 2 workers, real HTTP).

What another node of the cluster reads: the cached image or the fill in
progress, with the cluster's token only; a user's token, or none, gets a
401 and not a byte.  Without ``--peer-token`` the path is no route at all.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from imagecache.peers import protocol
from tests.support.waiting import wait_until

from .conftest import Response, RunningServer
from .test_cache_http import create, wait_cached
from .test_fills import Download, metric, metrics

MiB = 1 << 20
PEER_TOKEN = "peer-token-7e2a-func"


def peer_get(server: RunningServer, image_id: str, token: str | None = PEER_TOKEN, user: str | None = None,
             **headers: str) -> Response:
    sent = dict(headers)
    if token is not None:
        sent[protocol.TOKEN_HEADER] = token
    return server.request("GET", protocol.image_path(image_id), headers=sent, user=user, timeout=60)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def node(start_module_server) -> RunningServer:
    return start_module_server(auth="tokens", peer_token=PEER_TOKEN)


@pytest.fixture(scope="module")
def cached(node) -> tuple[str, bytes]:
    """An image cached on ``node`` by a user's download: (id, data)."""
    data = os.urandom(3 * MiB) + b"tail"
    image_id = create(node, "alice", data)
    assert node.request("GET", f"/v2/images/{image_id}/file", user="alice").body == data
    wait_cached(node, image_id)
    return image_id, data


def served_to_peers(server: RunningServer) -> float:
    return metric(metrics(server), "imagecache_peer_served_bytes_total")


def test_the_right_token_gets_the_cached_image(node, cached):
    image_id, data = cached
    before = served_to_peers(node)
    answer = peer_get(node, image_id)
    assert answer.status == 200
    assert sha256(answer.body) == sha256(data)
    assert answer.headers["content-length"] == str(len(data))
    assert answer.headers["x-image-meta-size"] == str(len(data))
    assert served_to_peers(node) == before + len(data)


@pytest.mark.parametrize("offset", [1, MiB + 7, 3 * MiB + 3])
def test_a_range_from_an_offset_is_the_rest_of_the_image(node, cached, offset):
    image_id, data = cached
    answer = peer_get(node, image_id, Range=f"bytes={offset}-")
    assert answer.status == 206
    assert answer.body == data[offset:]
    assert answer.headers["content-range"] == f"bytes {offset}-{len(data) - 1}/{len(data)}"


@pytest.mark.parametrize(("token", "user"), [
    (None, None),
    (None, "alice"),  # a user's token
    (None, "admin"),  # an admin's too
    ("not-the-token", "admin"),
    ("tok-admin-0a6f", None),  # a user's token in the peer header
])
def test_without_the_right_token_it_is_401_and_nothing_is_served(node, cached, token, user):
    image_id, data = cached
    before = served_to_peers(node)
    answer = peer_get(node, image_id, token=token, user=user)
    assert answer.status == 401
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["error"]["code"] == 401
    assert data[:4096] not in answer.body
    assert served_to_peers(node) == before
    logs = wait_until(lambda: node.logs() if "refused a peer request from 127.0.0.1" in node.logs() else None,
                      "the refusal in the log")
    assert PEER_TOKEN not in logs and "not-the-token" not in logs


def test_bad_requests_are_clear_4xx(node, cached):
    image_id, _ = cached
    assert peer_get(node, "not-a-uuid").status == 400
    assert peer_get(node, image_id, Range="bytes=0-99").status == 400
    assert peer_get(node, image_id, Range=f"bytes={10 * MiB}-").status == 416
    assert peer_get(node, "0b6e3c2e-6a3f-4f3e-9d7e-1c2b3a4d5e6f").status == 404  # neither cached nor filling
    put = node.request("PUT", protocol.image_path(image_id), body=b"x", headers={protocol.TOKEN_HEADER: PEER_TOKEN})
    assert put.status == 405 and put.headers["allow"] == "GET, HEAD"


def test_the_endpoint_is_not_advertised(node):
    assert "peer" not in node.request("GET", "/versions").text


def test_a_fill_in_progress_is_served_to_a_peer_from_any_offset(start_server):
    # 24 MiB at 8 MiB/s: the peers' reads start while the one fill runs, and end with it.
    server = start_server(auth="tokens", workers=2, origin=f"throttled:{8 * MiB}", peer_token=PEER_TOKEN)
    data = os.urandom(24 * MiB)
    image_id = create(server, "alice", data)
    incomplete = Path(server.data_dir, "image-cache", "incomplete", image_id)
    user = Download(server, image_id)
    first = threading.Thread(target=user)
    first.start()
    wait_until(lambda: incomplete.exists() and incomplete.stat().st_size > MiB, "the fill to be under way")
    answers: dict[str, Response] = {}
    offset = 5 * MiB + 3
    peers = [
        threading.Thread(target=lambda: answers.__setitem__("whole", peer_get(server, image_id))),
        threading.Thread(target=lambda: answers.__setitem__("rest", peer_get(server, image_id,
                                                                             Range=f"bytes={offset}-"))),
    ]
    for thread in peers:
        thread.start()
    for thread in [first, *peers]:
        thread.join(120)
        assert not thread.is_alive(), "a read hung"
    assert user.error is None and sha256(user.body) == sha256(data)
    whole, rest = answers["whole"], answers["rest"]
    assert whole.status == 200 and whole.headers["content-length"] == str(len(data))
    assert sha256(whole.body) == sha256(data)
    assert rest.status == 206 and rest.body == data[offset:]
    wait_cached(server, image_id)
    values = metrics(server)
    assert metric(values, "imagecache_upstream_bytes_total") == len(data)  # the peers started no fill
    assert metric(values, "imagecache_peer_served_bytes_total") == 2 * len(data) - offset


def test_without_a_peer_token_the_path_is_a_404_of_the_image_api(open_server):
    image_id = create(open_server, "admin", os.urandom(MiB))
    assert open_server.request("GET", f"/v2/images/{image_id}/file").status == 200
    wait_cached(open_server, image_id)
    answer = peer_get(open_server, image_id)
    unknown = open_server.request("GET", "/no/such/route")
    assert answer.status == unknown.status == 404
    assert answer.headers["content-type"] == unknown.headers["content-type"]
    assert answer.body == unknown.body  # the image API's answer, not the endpoint's
