"""The auth middleware and the tokens file, without sockets."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pytest
import webob
from hypothesis import given
from hypothesis import strategies as st

from imagecache.config import ConfigError
from imagecache.http.context import get_context
from imagecache.wsgi.auth import (
    DEV_PROJECT_ID,
    AuthMiddleware,
    TokenIdentity,
    TokenTable,
    is_open_path,
    load_tokens_file,
)

TOKENS = TokenTable(
    {
        "tok-admin": TokenIdentity("p-admin", ("admin",)),
        "tok-alice": TokenIdentity("p-alice", ("member",), user_id="alice"),
    }
)


def echo_context(environ: dict, start_response) -> Iterable[bytes]:
    """An inner app that answers with the context it was given."""
    context = get_context(environ)
    body = json.dumps(
        {
            "project_id": context.project_id,
            "roles": list(context.roles),
            "auth_token": context.auth_token,
            "user_id": context.user_id,
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def call(app, path: str = "/v2/images", method: str = "GET", **headers: str) -> webob.Response:
    request = webob.Request.blank(path, method=method, headers=headers)
    return request.get_response(app)


# -- --auth none -------------------------------------------------------------


def test_none_makes_every_caller_admin_of_the_development_project() -> None:
    response = call(AuthMiddleware(echo_context, "none"))
    assert response.status_int == 200
    assert response.json == {
        "project_id": DEV_PROJECT_ID,
        "roles": ["admin"],
        "auth_token": None,
        "user_id": None,
    }


def test_none_takes_the_project_from_headers() -> None:
    app = AuthMiddleware(echo_context, "none")
    assert call(app, **{"X-Project-Id": "p1"}).json["project_id"] == "p1"
    assert call(app, **{"X-Tenant-Id": "p2"}).json["project_id"] == "p2"
    both = call(app, **{"X-Project-Id": "p1", "X-Tenant-Id": "p2"})
    assert both.json["project_id"] == "p1"


def test_none_ignores_tokens_but_keeps_them_in_the_context() -> None:
    response = call(AuthMiddleware(echo_context, "none"), **{"X-Auth-Token": "whatever"})
    assert response.status_int == 200
    assert response.json["auth_token"] == "whatever"
    assert response.json["roles"] == ["admin"]


# -- --auth tokens -----------------------------------------------------------


def test_known_token_sets_its_identity() -> None:
    app = AuthMiddleware(echo_context, "tokens", TOKENS)
    response = call(app, **{"X-Auth-Token": "tok-alice"})
    assert response.status_int == 200
    assert response.json == {
        "project_id": "p-alice",
        "roles": ["member"],
        "auth_token": "tok-alice",
        "user_id": "alice",
    }


def test_token_header_cannot_be_overridden_by_project_headers() -> None:
    app = AuthMiddleware(echo_context, "tokens", TOKENS)
    response = call(app, **{"X-Auth-Token": "tok-alice", "X-Project-Id": "p-admin"})
    assert response.json["project_id"] == "p-alice"


@pytest.mark.parametrize("headers", [{}, {"X-Auth-Token": "nope"}, {"X-Auth-Token": "tok-alic"}])
def test_missing_or_unknown_token_is_401_with_json_and_challenge(headers: dict) -> None:
    app = AuthMiddleware(echo_context, "tokens", TOKENS)
    response = call(app, **headers)
    assert response.status_int == 401
    assert response.content_type == "application/json"
    assert response.json["error"]["code"] == 401
    assert "X-Auth-Token" in response.json["error"]["message"]
    assert response.headers["WWW-Authenticate"].startswith("Token")


def test_401_to_head_has_no_body() -> None:
    app = AuthMiddleware(echo_context, "tokens", TOKENS)
    response = call(app, method="HEAD")
    assert response.status_int == 401
    assert response.body == b""


@pytest.mark.parametrize(
    "path", ["/", "/versions", "/versions/", "/healthcheck", "/metrics", "/v2/schemas/image",
             "/v2/schemas/images", "/v2/schemas"]
)
def test_open_paths_pass_without_token_as_anonymous(path: str) -> None:
    app = AuthMiddleware(echo_context, "tokens", TOKENS)
    response = call(app, path)
    assert response.status_int == 200
    assert response.json["roles"] == []
    assert response.json["project_id"] is None


def test_open_path_with_a_valid_token_still_knows_the_caller() -> None:
    app = AuthMiddleware(echo_context, "tokens", TOKENS)
    response = call(app, "/versions", **{"X-Auth-Token": "tok-admin"})
    assert response.json["roles"] == ["admin"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v2/schemas/image"),
        ("DELETE", "/versions"),
        ("GET", "/v2/schemasX"),
        ("GET", "/v2/images"),
        ("GET", "/v2/cache"),
        ("GET", "/v1/images/x"),
        ("GET", "/healthcheck/x"),
    ],
)
def test_other_requests_are_not_open(method: str, path: str) -> None:
    assert not is_open_path(method, path)
    app = AuthMiddleware(echo_context, "tokens", TOKENS)
    assert call(app, path, method=method).status_int == 401


def test_non_latin1_header_does_not_crash() -> None:
    app = AuthMiddleware(echo_context, "tokens", TOKENS)
    request = webob.Request.blank("/v2/images")
    request.environ["HTTP_X_AUTH_TOKEN"] = "\u20ac"  # not a valid PEP 3333 value
    assert request.get_response(app).status_int == 401


def test_utf8_tokens_match_their_raw_header_bytes() -> None:
    table = TokenTable({"t\u00e9st-token": TokenIdentity("p", ("member",))})
    app = AuthMiddleware(echo_context, "tokens", table)
    header = "t\u00e9st-token".encode().decode("latin-1")
    assert call(app, **{"X-Auth-Token": header}).status_int == 200


def test_strategy_is_checked() -> None:
    with pytest.raises(ConfigError, match="auth_strategy"):
        AuthMiddleware(echo_context, "keystone")
    with pytest.raises(ConfigError, match="token table"):
        AuthMiddleware(echo_context, "tokens")


@given(st.text(min_size=1, max_size=40))
def test_lookup_finds_exactly_the_tokens_in_the_table(token: str) -> None:
    expected = TOKENS.lookup("tok-admin") if token == "tok-admin" else None
    if token == "tok-alice":
        expected = TOKENS.lookup("tok-alice")
    assert TOKENS.lookup(token) == expected
    assert TOKENS.lookup(token.encode()) == expected


# -- the tokens file ---------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tokens.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_tokens_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [tokens."tok-admin"]
        project = "p-admin"
        roles = ["admin"]

        [tokens.tok-bob]
        project = "p-bob"
        roles = ["Member", "member"]
        user = "bob"
        """,
    )
    table = load_tokens_file(path)
    assert len(table) == 2
    assert table.lookup("tok-admin") == TokenIdentity("p-admin", ("admin",))
    assert table.lookup("tok-bob") == TokenIdentity("p-bob", ("member",), "bob")
    assert table.lookup("tok-carol") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tokens = [", "not valid TOML"),
        ("", "defines no tokens"),
        ("[tokens]\n", "defines no tokens"),
        ("tokens = 3\n", "defines no tokens"),
        ("[other]\nx = 1\n", "unknown top-level key"),
        ('[tokens]\n"tok-abcdefgh" = "p"\n', "must be a table"),
        ('[tokens."tok-abcdefgh"]\nroles = ["admin"]\n', "needs project"),
        ('[tokens."tok-abcdefgh"]\nproject = ""\nroles = ["admin"]\n', "needs project"),
        ('[tokens."tok-abcdefgh"]\nproject = 7\nroles = ["admin"]\n', "needs project"),
        ('[tokens."tok-abcdefgh"]\nproject = "p"\n', "roles must be"),
        ('[tokens."tok-abcdefgh"]\nproject = "p"\nroles = "admin"\n', "roles must be"),
        ('[tokens."tok-abcdefgh"]\nproject = "p"\nroles = []\n', "roles must be"),
        ('[tokens."tok-abcdefgh"]\nproject = "p"\nroles = ["admin", 1]\n', "roles must be"),
        ('[tokens."tok-abcdefgh"]\nproject = "p"\nroles = ["a"]\nrole = "x"\n', "unknown key"),
        ('[tokens."tok-abcdefgh"]\nproject = "p"\nroles = ["a"]\nuser = 1\n', "user must be"),
        ('[tokens."tok en"]\nproject = "p"\nroles = ["admin"]\n', "without spaces"),
        ('[tokens.""]\nproject = "p"\nroles = ["admin"]\n', "non-empty"),
    ],
)
def test_bad_tokens_files_are_config_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_tokens_file(write(tmp_path, text))
    assert str(tmp_path) in str(info.value)
    assert "\n" not in str(info.value)


def test_error_messages_do_not_show_whole_tokens(tmp_path: Path) -> None:
    path = write(tmp_path, '[tokens."supersecret-token"]\nproject = "p"\n')
    with pytest.raises(ConfigError) as info:
        load_tokens_file(path)
    assert "supersecret-token" not in str(info.value)
    assert "supe" in str(info.value)


def test_missing_unreadable_and_binary_tokens_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_tokens_file(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_tokens_file(tmp_path)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe[tokens]")
    with pytest.raises(ConfigError, match=r"UTF-8|TOML"):
        load_tokens_file(binary)
