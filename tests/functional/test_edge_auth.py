"""An edge node's cache API: its admins 200, a valid upstream token 403, a token the upstream rejects 401.

The edge's tokens file names only its admin; alice's token is known to the
upstream alone, as a member's Keystone token would be.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import AuthTokens, RunningServer

CACHE_API = ["/v2/cache", "/v1/cached_images", "/v2/queued_images"]


@pytest.fixture(scope="module")
def edge(start_module_server: Any, tmp_path_factory: pytest.TempPathFactory) -> RunningServer:
    upstream = start_module_server(auth="tokens")
    tokens = AuthTokens()
    admins_only = Path(tmp_path_factory.mktemp("edge-tokens"), "tokens.toml")
    admins_only.write_text(tokens.toml().split("\n\n")[0] + "\n", encoding="utf-8")
    return start_module_server(auth="tokens", tokens=tokens, tokens_file=admins_only, upstream=upstream.url,
                               settings={"upstream_auth_token": tokens.admin})


@pytest.mark.parametrize("path", CACHE_API)
def test_a_token_the_upstream_rejects_is_401(edge: RunningServer, path: str) -> None:
    for _ in range(2):  # the second answer comes from the memo: the same
        answer = edge.request("GET", path, headers={"X-Auth-Token": "no-such-token"})
        assert answer.status == 401, answer.text
        assert answer.json()["error"]["code"] == 401
        assert "www-authenticate" in answer.headers


@pytest.mark.parametrize("path", CACHE_API)
def test_a_valid_non_admin_is_403_and_the_admin_200(edge: RunningServer, path: str) -> None:
    assert edge.request("GET", path, user="alice").status == 403
    assert edge.request("GET", path, user="admin").status == 200


def test_no_token_is_401(edge: RunningServer) -> None:
    assert edge.request("GET", "/v2/cache").status == 401


def test_image_calls_with_a_rejected_token_are_the_upstreams_401(edge: RunningServer) -> None:
    assert edge.request("GET", "/v2/images", headers={"X-Auth-Token": "no-such-token"}).status == 401
