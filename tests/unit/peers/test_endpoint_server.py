"""Where the server mounts the peer endpoint: in front of user authentication, only with a peer token."""

from __future__ import annotations

import json

import pytest
from webob import Request

from imagecache import server
from imagecache.config import Settings
from imagecache.peers import protocol

from .endpoint_support import TOKEN, Inner, make_image, put_in_cache

USER_TOKEN = "tok-alice-51c2"


def tokens_file(tmp_path) -> str:
    path = tmp_path / "tokens.toml"
    path.write_text(f'[tokens."{USER_TOKEN}"]\nproject = "alice"\nroles = ["admin"]\n', encoding="utf-8")
    return str(path)


def node(tmp_path, inner, **options):
    settings = Settings(data_dir=str(tmp_path / "data"), image_cache_min_free=0, **options)
    return server.build_node(settings, app=inner)


def ask(app, path, **headers):
    return Request.blank(path, headers=headers).get_response(app)


@pytest.mark.parametrize("auth", ["none", "tokens"])
def test_with_a_peer_token_peers_are_answered_before_user_authentication(tmp_path, auth):
    inner = Inner()
    options = {"auth_strategy": auth, "tokens_file": tokens_file(tmp_path)} if auth == "tokens" else {}
    built = node(tmp_path, inner, peer_token=TOKEN, **options)
    try:
        image = make_image(50_000)
        put_in_cache(built.cache, image)
        path = protocol.image_path(image.image_id)
        answer = ask(built.app, path, **{protocol.TOKEN_HEADER: TOKEN})
        assert answer.status_int == 200 and answer.body == image.data
        for headers in ({}, {"X-Auth-Token": USER_TOKEN}):  # no token, or a user's: the endpoint's 401
            refused = ask(built.app, path, **headers)
            assert refused.status_int == 401
            assert protocol.TOKEN_HEADER in json.loads(refused.body)["error"]["message"]
        assert inner.calls == []  # neither the image API nor the cache filter saw a peer request
        assert ask(built.app, "/healthcheck").status_int == 200
    finally:
        built.cache.close()


def test_without_a_peer_token_the_path_is_the_image_apis_like_any_unknown_path(tmp_path):
    inner = Inner()
    built = node(tmp_path, inner)
    try:
        image = make_image(50_000)
        put_in_cache(built.cache, image)
        answer = ask(built.app, protocol.image_path(image.image_id), **{protocol.TOKEN_HEADER: TOKEN})
        assert answer.status_int == 404 and answer.body == b"the app behind"
        assert [call["PATH_INFO"] for call in inner.calls] == [protocol.image_path(image.image_id)]
    finally:
        built.cache.close()
