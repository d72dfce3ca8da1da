"""CacheClient and get_client without sockets: fallbacks, URLs, errors, retries.

Requests go to a stub pool that records them; any attempt to open a real
connection fails the test.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
import urllib3
from hypothesis import given
from hypothesis import strategies as st

from imagecache.client import (
    DEFAULT_TIMEOUT,
    MAX_MESSAGE,
    BadRequest,
    CacheClient,
    ClientError,
    ConfigurationError,
    Credentials,
    Forbidden,
    HTTPStatusError,
    InvalidResponse,
    NotFound,
    ServerError,
    Unauthorized,
    error_for_status,
    error_message,
    get_client,
    normalize_doc_root,
    quote_image_id,
)
from imagecache.client import cache_client as client_module

IMAGE_ID = "1b2c3d4e-0000-4000-8000-000000000001"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"a unit test tried to connect: {args}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


# -- get_client: arguments first, then the environment ---------------------------------


def test_nothing_given_nothing_in_the_environment() -> None:
    client = get_client("node.example", environ={})
    assert (client.host, client.port, client.doc_root) == ("node.example", 9292, "/v1")
    assert client.auth_token is None and client.timeout == DEFAULT_TIMEOUT
    assert client.creds == Credentials(strategy="noauth")
    assert client.configure_via_auth is False  # the cache belongs to the node named by host
    assert not client.use_ssl and not client.insecure


def test_token_from_the_environment() -> None:
    assert get_client("h", environ={"OS_AUTH_TOKEN": "t1"}).auth_token == "t1"
    assert get_client("h", environ={"OS_TOKEN": "t2"}).auth_token == "t2"  # Glance's own name
    assert get_client("h", environ={"OS_AUTH_TOKEN": "t1", "OS_TOKEN": "t2"}).auth_token == "t1"
    assert get_client("h", auth_token="given", environ={"OS_AUTH_TOKEN": "t1"}).auth_token == "given"


def test_credentials_from_the_environment_make_keystone() -> None:
    environ = {
        "OS_AUTH_URL": "http://keystone.example:5000/v3",
        "OS_USERNAME": "ops",
        "OS_PASSWORD": "pw",
        "OS_TENANT_NAME": "tenant-name",
        "OS_PROJECT_NAME": "project-name",
        "OS_REGION_NAME": "RegionTwo",
    }
    creds = get_client("h", environ=environ).creds
    assert creds == Credentials(strategy="keystone", auth_url="http://keystone.example:5000/v3", username="ops",
                                password="pw", tenant="tenant-name", region="RegionTwo")
    assert creds.keystone_arguments() == {
        "auth_url": "http://keystone.example:5000/v3", "username": "ops", "password": "pw",
        "project_name": "tenant-name", "user_domain_name": "Default", "project_domain_name": "Default",
    }
    del environ["OS_TENANT_NAME"]
    assert get_client("h", environ=environ).creds.tenant == "project-name"


def test_arguments_beat_the_environment() -> None:
    environ = {"OS_AUTH_URL": "http://env/v3", "OS_USERNAME": "env-user", "OS_PASSWORD": "env-pw",
               "OS_TENANT_NAME": "env-tenant", "OS_REGION_NAME": "env-region", "OS_AUTH_STRATEGY": "noauth"}
    creds = get_client("h", username="u", password="p", tenant="t", auth_url="http://given/v3", region="r",
                       environ=environ).creds
    assert (creds.auth_url, creds.username, creds.password, creds.tenant, creds.region) == (
        "http://given/v3", "u", "p", "t", "r")
    assert creds.strategy == "keystone"  # an auth URL means Keystone, as in Glance


def test_empty_environment_values_count_as_unset() -> None:
    client = get_client("h", environ={"OS_AUTH_TOKEN": "", "OS_AUTH_URL": "", "OS_AUTH_STRATEGY": ""})
    assert client.auth_token is None and client.creds.strategy == "noauth"


def test_domains_from_the_environment() -> None:
    base = {"OS_AUTH_URL": "http://ks/v3", "OS_USERNAME": "u", "OS_PASSWORD": "p", "OS_PROJECT_NAME": "t"}
    by_name = get_client("h", environ={**base, "OS_USER_DOMAIN_NAME": "Users", "OS_PROJECT_DOMAIN_NAME": "Projects"})
    arguments = by_name.creds.keystone_arguments()
    assert (arguments["user_domain_name"], arguments["project_domain_name"]) == ("Users", "Projects")
    by_id = get_client("h", environ={**base, "OS_USER_DOMAIN_ID": "u-id", "OS_PROJECT_DOMAIN_ID": "p-id"})
    arguments = by_id.creds.keystone_arguments()
    assert (arguments["user_domain_id"], arguments["project_domain_id"]) == ("u-id", "p-id")
    assert "user_domain_name" not in arguments and "project_domain_name" not in arguments


def test_strategy_from_the_environment() -> None:
    assert get_client("h", environ={"OS_AUTH_STRATEGY": "noauth"}).creds.strategy == "noauth"
    with pytest.raises(ConfigurationError, match="needs an auth_url"):
        get_client("h", environ={"OS_AUTH_STRATEGY": "keystone"})
    with pytest.raises(ConfigurationError, match="must be one of"):
        get_client("h", auth_strategy="kerberos", environ={})


def test_keystone_without_a_password_or_a_token_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="needs password"):
        get_client("h", username="u", auth_url="http://ks/v3", environ={})
    # With a token, the credentials are only a fallback: no error.
    assert get_client("h", auth_url="http://ks/v3", auth_token="tok", environ={}).auth_token == "tok"


def test_default_environ_is_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OS_AUTH_TOKEN", "from-os-environ")
    monkeypatch.delenv("OS_AUTH_URL", raising=False)
    monkeypatch.delenv("OS_AUTH_STRATEGY", raising=False)
    assert get_client("h").auth_token == "from-os-environ"


def test_other_arguments_pass_through() -> None:
    client = get_client("::1", port=9393, timeout=0, use_ssl=True, insecure=True, is_silent_upload=True, environ={})
    assert (client.port, client.timeout, client.use_ssl, client.insecure) == (9393, None, True, True)
    assert client.base_url == "https://[::1]:9393/v1"


def test_missing_keystoneauth1_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in sys.modules if name.startswith("keystoneauth1")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "keystoneauth1", None)  # import raises ImportError
    with pytest.raises(ConfigurationError, match=r"imagecache\[keystone\]"):
        get_client("h", username="u", password="p", auth_url="http://ks/v3", environ={})
    # A client without Keystone never imports it.
    assert get_client("h", environ={}).creds.strategy == "noauth"


# -- credentials ---------------------------------------------------------------------


def test_credentials_accept_glances_dicts() -> None:
    new = Credentials.from_mapping({"strategy": "keystone", "auth_url": "http://ks", "username": "u",
                                    "password": "p", "project": "t", "region": None,
                                    "user_domain_id": "default", "project_domain_id": "default"})
    assert new.tenant == "t" and new.region is None and new.can_authenticate
    old = Credentials.from_mapping({"strategy": "noauth", "tenant": "t", "username": "", "password": None})
    assert old == Credentials(tenant="t")
    with pytest.raises(ConfigurationError, match="unknown credential key"):
        Credentials.from_mapping({"usernme": "typo"})


# -- URLs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc_root", "url"),
    [(None, "http://h:9292/v1/cached_images"), ("/v2", "http://h:9292/v2/cached_images"),
     ("v2/", "http://h:9292/v2/cached_images"), ("", "http://h:9292/cached_images"),
     ("/image/v1", "http://h:9292/image/v1/cached_images")],
)
def test_doc_root(doc_root: str | None, url: str) -> None:
    assert CacheClient("h", doc_root=doc_root, environ={}).url("/cached_images") == url


def test_class_defaults_like_glances() -> None:
    assert (CacheClient.DEFAULT_PORT, CacheClient.DEFAULT_DOC_ROOT) == (9292, "/v1")
    assert CacheClient("h", port=None, environ={}).port == 9292
    assert normalize_doc_root("//v2//") == "/v2"


@pytest.mark.parametrize(
    ("image_id", "segment"),
    [(IMAGE_ID, IMAGE_ID), ("a/b", "a%2Fb"), ("..", "%2E%2E"), ("x?y#z", "x%3Fy%23z"), ("é", "%C3%A9"),
     ("a b", "a%20b"), ("%2F", "%252F")],
)
def test_ids_are_one_quoted_segment(image_id: str, segment: str) -> None:
    assert quote_image_id(image_id) == segment


@given(st.text(min_size=1))
def test_any_id_stays_one_segment_without_dot_steps(image_id: str) -> None:
    segment = quote_image_id(image_id)
    assert "/" not in segment and "?" not in segment and "#" not in segment and "." not in segment


def test_an_empty_id_would_name_the_collection_and_is_refused() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        quote_image_id("")
    with pytest.raises(TypeError):
        quote_image_id(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [("http://glance.example:9292", ("glance.example", 9292, False, "/v1")),
     ("https://glance.example/image/", ("glance.example", 443, True, "/image/v1")),
     ("http://glance.example/v2", ("glance.example", 80, False, "/v2")),
     ("http://[fd00::1]:9292/v2.1/", ("fd00::1", 9292, False, "/v2.1"))],
)
def test_configure_from_url(endpoint: str, expected: tuple[str, int, bool, str]) -> None:
    client = CacheClient("h", environ={})
    client.configure_from_url(endpoint)
    assert (client.host, client.port, client.use_ssl, client.doc_root) == expected


# -- TLS options -----------------------------------------------------------------------


def test_a_client_certificate_needs_both_files(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(ConfigurationError, match="key_file is not"):
        CacheClient("h", use_ssl=True, cert_file=str(cert), environ={})
    with pytest.raises(ConfigurationError, match="cert_file is not"):
        CacheClient("h", use_ssl=True, key_file=str(cert), environ={})


def test_missing_tls_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"ca file .*nope\.pem does not exist"):
        CacheClient("h", use_ssl=True, ca_file=str(tmp_path / "nope.pem"), environ={})


def test_glance_tls_environment_only_with_ssl(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    environ = {"GLANCE_CLIENT_CA_FILE": str(ca)}
    assert CacheClient("h", use_ssl=True, environ=environ).ca_file == str(ca)
    assert CacheClient("h", use_ssl=False, environ=environ).ca_file is None


# -- error bodies --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b'{"error": {"code": 403, "title": "Forbidden", "message": "No."}}', "application/json", "No."),
        (b'{"message": "No image found<br /><br />\\n\\n\\n", "code": "404 Not Found", "title": "Not Found"}',
         "application/json", "No image found"),
        (b'{"error": {"title": "Only a title"}}', "application/json", "Only a title"),
        (b"404 Not Found\n\nNo image found with ID x\n\n   ", "text/plain; charset=UTF-8", "No image found with ID x"),
        (b"<html><head><title>404 Not Found</title></head><body><h1>404 Not Found</h1>Gone.<br /></body></html>",
         "text/html", "Gone."),
        (b"", None, "Not Found"),
        (b"{not json", "application/json", "{not json"),
        (b'["a list"]', "application/json", '["a list"]'),
    ],
)
def test_error_messages(body: bytes, content_type: str | None, expected: str) -> None:
    assert error_message(body, content_type, 404, "Not Found") == expected


@given(st.binary(max_size=2000), st.sampled_from([None, "application/json", "text/plain", "text/html"]))
def test_any_error_body_gives_one_short_line(body: bytes, content_type: str | None) -> None:
    message = error_message(body, content_type, 500, "Internal Server Error")
    assert message and "\n" not in message and len(message) <= MAX_MESSAGE


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, BadRequest), (401, Unauthorized), (403, Forbidden), (404, NotFound), (500, ServerError),
     (503, ServerError), (405, HTTPStatusError), (409, HTTPStatusError), (302, HTTPStatusError)],
)
def test_error_for_status(status: int, kind: type[HTTPStatusError]) -> None:
    error = error_for_status(status, "why", b"body")
    assert type(error) is kind and isinstance(error, ClientError)
    assert (error.status, error.message, error.body, str(error)) == (status, "why", b"body", f"{status}: why")


# -- requests, through a stub pool -----------------------------------------------------


class StubPool:
    """Answers requests from a list and records them; never opens a socket."""

    def __init__(self, *answers: tuple[int, Any]) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[str, str, dict[str, str]]] = []

    def request(self, method: str, url: str, headers: dict[str, str]) -> urllib3.HTTPResponse:
        self.sent.append((method, url, dict(headers)))
        status, body = self.answers.pop(0)
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return urllib3.HTTPResponse(body=data, status=status, headers={"Content-Type": "application/json"},
                                    preload_content=True)

    def clear(self) -> None:
        pass


def stubbed(pool: StubPool, **options: Any) -> CacheClient:
    client = CacheClient("h", environ={}, **options)
    client._pool = pool  # type: ignore[assignment]
    return client


def test_each_method_sends_glances_request() -> None:
    pool = StubPool((200, {"cached_images": [{"image_id": IMAGE_ID}]}), (200, {"queued_images": [IMAGE_ID]}),
                    (200, None), (200, {"num_deleted": 3}), (200, None), (200, None), (200, {"num_deleted": 0}))
    client = stubbed(pool, auth_token="tok", doc_root="/v2")
    assert client.get_cached_images() == [{"image_id": IMAGE_ID}]
    assert client.get_queued_images() == [IMAGE_ID]
    assert client.delete_cached_image(IMAGE_ID) is True
    assert client.delete_all_cached_images() == 3
    assert client.queue_image_for_caching(IMAGE_ID) is True
    assert client.delete_queued_image(IMAGE_ID) is True
    assert client.delete_all_queued_images() == 0
    base = "http://h:9292/v2"
    assert [(method, url) for method, url, _ in pool.sent] == [
        ("GET", f"{base}/cached_images"), ("GET", f"{base}/queued_images"),
        ("DELETE", f"{base}/cached_images/{IMAGE_ID}"), ("DELETE", f"{base}/cached_images"),
        ("PUT", f"{base}/queued_images/{IMAGE_ID}"), ("DELETE", f"{base}/queued_images/{IMAGE_ID}"),
        ("DELETE", f"{base}/queued_images"),
    ]
    for _, _, headers in pool.sent:
        assert headers["X-Auth-Token"] == "tok" and headers["Accept"] == "application/json"
        assert headers["User-Agent"].startswith("imagecache-client/")


def test_no_token_no_header() -> None:
    pool = StubPool((200, {"queued_images": []}))
    stubbed(pool).get_queued_images()
    assert "X-Auth-Token" not in pool.sent[0][2]


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b'{"cached_images": "nope"}', b"{}"],
)
def test_answers_the_api_never_sends_are_invalid(body: bytes) -> None:
    with pytest.raises(InvalidResponse):
        stubbed(StubPool((200, body))).get_cached_images()


def test_a_count_must_be_a_number() -> None:
    with pytest.raises(InvalidResponse):
        stubbed(StubPool((200, {"num_deleted": True}))).delete_all_cached_images()


def test_an_error_answer_raises_with_the_servers_message() -> None:
    body = {"error": {"code": 400, "title": "Bad Request", "message": "Invalid image id: an image id is a UUID."}}
    with pytest.raises(BadRequest) as caught:
        stubbed(StubPool((400, body))).queue_image_for_caching("nope")
    assert caught.value.message == "Invalid image id: an image id is a UUID."


class StubKeystone:
    """Hands out tokens from a list, as :class:`imagecache.client.KeystoneAuth` would."""

    def __init__(self, *tokens: str, endpoint: str | None = None) -> None:
        self.tokens = list(tokens)
        self.endpoint = endpoint
        self.invalidated = 0

    def token(self) -> str:
        return self.tokens.pop(0)

    def invalidate(self) -> None:
        self.invalidated += 1

    def image_endpoint(self) -> str | None:
        return self.endpoint


def keystone_client(pool: StubPool, keystone: StubKeystone, monkeypatch: pytest.MonkeyPatch,
                    **options: Any) -> CacheClient:
    monkeypatch.setattr(client_module, "KeystoneAuth", lambda *args, **kwargs: keystone)
    creds = {"strategy": "keystone", "auth_url": "http://ks/v3", "username": "u", "password": "p"}
    return stubbed(pool, creds=creds, **options)


def test_keystone_token_is_fetched_once_and_renewed_on_401(monkeypatch: pytest.MonkeyPatch) -> None:
    keystone = StubKeystone("stale", "fresh")
    pool = StubPool((200, {"queued_images": []}), (401, {"error": {"message": "expired"}}),
                    (200, {"queued_images": []}))
    client = keystone_client(pool, keystone, monkeypatch, configure_via_auth=False)
    client.get_queued_images()
    client.get_queued_images()
    assert [headers["X-Auth-Token"] for _, _, headers in pool.sent] == ["stale", "stale", "fresh"]
    assert keystone.invalidated == 1


def test_a_second_401_is_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    keystone = StubKeystone("one", "two")
    pool = StubPool((401, {"error": {"message": "no"}}), (401, {"error": {"message": "still no"}}))
    client = keystone_client(pool, keystone, monkeypatch, configure_via_auth=False)
    with pytest.raises(Unauthorized, match="still no"):
        client.get_queued_images()
    assert len(pool.sent) == 2


def test_without_credentials_a_401_is_raised_at_once() -> None:
    pool = StubPool((401, {"error": {"message": "who are you"}}))
    with pytest.raises(Unauthorized, match="who are you"):
        stubbed(pool, auth_token="tok").get_queued_images()
    assert len(pool.sent) == 1


def test_configure_via_auth_uses_the_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    keystone = StubKeystone("tok", endpoint="https://glance.example:9292")
    pool = StubPool((200, {"queued_images": []}))
    keystone_client(pool, keystone, monkeypatch, doc_root="/v2").get_queued_images()
    assert pool.sent[0][1] == "https://glance.example:9292/v2/queued_images"


def test_repr_hides_the_token() -> None:
    assert "secret" not in repr(CacheClient("h", auth_token="secret", environ={}))


# -- GET /v2/cache/nodes: the fleet ------------------------------------------------------------

NODE = {"url": "http://a:9292", "site": "east", "state": "filling", "size": None, "bytes": 5, "live": False}
FLEET = {"images": [{"image_id": IMAGE_ID, "nodes": [NODE, {**NODE, "state": "cached", "size": 9, "bytes": 9}]}]}


@pytest.mark.parametrize(("doc_root", "url"), [
    ("/v1", "http://h:9292/v2/cache/nodes"),
    ("/v2", "http://h:9292/v2/cache/nodes"),
    ("/image/v1", "http://h:9292/image/v2/cache/nodes"),
])
def test_get_fleet_asks_the_v2_route_whatever_the_doc_root(doc_root: str, url: str) -> None:
    pool = StubPool((200, FLEET))
    assert stubbed(pool, doc_root=doc_root, auth_token="tok").get_fleet() == FLEET["images"]
    assert [(method, sent) for method, sent, _ in pool.sent] == [("GET", url)]
    assert pool.sent[0][2]["X-Auth-Token"] == "tok"


def test_get_fleet_of_a_node_alone_is_its_409() -> None:
    with pytest.raises(HTTPStatusError) as caught:
        stubbed(StubPool((409, {"error": {"message": "Centralized caching is not enabled."}}))).get_fleet()
    assert caught.value.status == 409 and caught.value.message == "Centralized caching is not enabled."


@pytest.mark.parametrize(
    "body",
    [
        b"not json", b"[]", b"{}", {"images": {}}, {"images": [None]},
        {"images": [{"image_id": 1, "nodes": []}]},
        {"images": [{"image_id": IMAGE_ID}]},
        {"images": [{"image_id": IMAGE_ID, "nodes": [{**NODE, "state": "gone"}]}]},
        {"images": [{"image_id": IMAGE_ID, "nodes": [{**NODE, "live": "yes"}]}]},
        {"images": [{"image_id": IMAGE_ID, "nodes": [{**NODE, "bytes": True}]}]},
        {"images": [{"image_id": IMAGE_ID, "nodes": [{**NODE, "size": "3"}]}]},
        {"images": [{"image_id": IMAGE_ID, "nodes": [{key: v for key, v in NODE.items() if key != "site"}]}]},
    ],
)
def test_get_fleet_refuses_answers_the_api_never_sends(body: Any) -> None:
    with pytest.raises(InvalidResponse):
        stubbed(StubPool((200, body))).get_fleet()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.sampled_from(["cached", "filling"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["images", "image_id", "nodes", *NODE]), inner, max_size=6),
    max_leaves=20,
)


@given(document=JSON_VALUES)
def test_any_answer_is_the_fleet_or_invalid_never_a_crash(document: Any) -> None:
    from imagecache.client.fleet import fleet_images

    images = fleet_images(document)
    assert images is None or images == document["images"]


# -- pins: PUT/DELETE /v2/cache/{id}/pin, GET /v2/cache/pins --------------------------------------

PIN = {"image_id": IMAGE_ID, "pinned_by": "manual", "cached": False, "size": None}
PINS = {"pinned_images": [PIN], "pinned_bytes": 0, "image_cache_max_size": 10, "over_limit": False}


@pytest.mark.parametrize(("doc_root", "root"), [("/v1", "http://h:9292/v2"), ("/image/v2", "http://h:9292/image/v2")])
def test_pins_are_asked_of_the_v2_routes_whatever_the_doc_root(doc_root: str, root: str) -> None:
    pool = StubPool((202, PIN), (204, b""), (200, PINS))
    client = stubbed(pool, doc_root=doc_root, auth_token="tok")
    assert client.pin(IMAGE_ID) == PIN
    assert client.unpin(IMAGE_ID) is True
    assert client.get_pins() == PINS
    assert [(method, url) for method, url, _ in pool.sent] == [
        ("PUT", f"{root}/cache/{IMAGE_ID}/pin"),
        ("DELETE", f"{root}/cache/{IMAGE_ID}/pin"),
        ("GET", f"{root}/cache/pins"),
    ]
    assert {headers["X-Auth-Token"] for _, _, headers in pool.sent} == {"tok"}


def test_unpinning_what_is_not_pinned_is_the_nodes_404() -> None:
    with pytest.raises(NotFound, match="is not pinned"):
        stubbed(StubPool((404, {"error": {"message": f"Image {IMAGE_ID} is not pinned."}}))).unpin(IMAGE_ID)


@pytest.mark.parametrize("body", [b"not json", b"[]", {"image_id": 3}, {}])
def test_a_pin_answer_the_api_never_sends_is_invalid(body: Any) -> None:
    with pytest.raises(InvalidResponse):
        stubbed(StubPool((200, body))).pin(IMAGE_ID)


@pytest.mark.parametrize("body", [b"[]", {"pinned_images": {}}, {}])
def test_a_pins_listing_the_api_never_sends_is_invalid(body: Any) -> None:
    with pytest.raises(InvalidResponse):
        stubbed(StubPool((200, body))).get_pins()
