"""A fake Keystone on loopback that speaks enough of the v3 API for keystoneauth1.

It serves the version discovery documents (``GET /`` and ``GET /v3``) and
password authentication (``POST /v3/auth/tokens``, 201 with
``X-Subject-Token`` and a token body with catalog, project, user and roles),
so the client's real Keystone code path runs unchanged.  One user, one
password, one project; the tokens it issues are chosen by the test, so a
test node's tokens file can know them.

Usage::

    with FakeKeystone(tokens=["tok-admin"], image_url=node.url) as keystone:
        get_client(..., auth_url=keystone.url + "/v3", username=keystone.username, ...)
        assert keystone.token_requests == 1
"""

from __future__ import annotations

import datetime
import json
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_DOMAIN = {"id": "default", "name": "Default"}


@dataclass
class TokenRequest:
    """What one ``POST /v3/auth/tokens`` asked for (the parsed JSON body)."""

    body: dict[str, Any]
    issued: str | None


@dataclass
class FakeKeystone:
    """A threaded HTTP server on 127.0.0.1 answering like Keystone v3.

    ``tokens`` are issued in order, the last one again once the list runs
    out.  ``image_url`` is the catalog's public image endpoint.
    """

    tokens: Sequence[str] = ("fake-keystone-token",)
    image_url: str = "http://127.0.0.1:9292"
    username: str = "cache-admin"
    password: str = "s3cret"
    project: str = "ops"
    region: str = "RegionOne"
    roles: Sequence[str] = ("admin", "member", "reader")
    requests: list[TokenRequest] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._issued = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-keystone", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def token_requests(self) -> int:
        return len(self.requests)

    def start(self) -> FakeKeystone:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> FakeKeystone:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the documents ------------------------------------------------------------

    def version(self) -> dict[str, Any]:
        return {
            "id": "v3.14",
            "status": "stable",
            "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": f"{self.url}/v3/"}],
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
        }

    def next_token(self) -> str:
        with self._lock:
            token = self.tokens[min(self._issued, len(self.tokens) - 1)]
            self._issued += 1
            return token

    def check(self, body: dict[str, Any]) -> str | None:
        """Why a password auth request fails, or None when it is good."""
        try:
            identity = body["auth"]["identity"]
            user = identity["password"]["user"]
            scope = body["auth"].get("scope", {}).get("project")
        except (KeyError, TypeError, AttributeError):
            return "malformed auth request"
        if identity.get("methods") != ["password"]:
            return "only password auth here"
        if user.get("name") != self.username or user.get("password") != self.password:
            return "The request you have made requires authentication."
        if user.get("domain") not in ({"name": "Default"}, {"id": "default"}):
            return "Could not find domain."
        if scope is not None and (
            scope.get("name") != self.project or scope.get("domain") not in ({"name": "Default"}, {"id": "default"})
        ):
            return "The request you have made requires authentication."
        return None

    def token_body(self, scoped: bool) -> dict[str, Any]:
        now = datetime.datetime.now(datetime.UTC)
        stamp = "%Y-%m-%dT%H:%M:%S.000000Z"
        token: dict[str, Any] = {
            "methods": ["password"],
            "user": {"id": uuid.uuid4().hex, "name": self.username, "domain": DEFAULT_DOMAIN,
                     "password_expires_at": None},
            "audit_ids": [uuid.uuid4().hex[:22]],
            "issued_at": now.strftime(stamp),
            "expires_at": (now + datetime.timedelta(hours=1)).strftime(stamp),
        }
        if scoped:
            token.update(
                project={"id": uuid.uuid4().hex, "name": self.project, "domain": DEFAULT_DOMAIN},
                is_domain=False,
                roles=[{"id": uuid.uuid4().hex, "name": role} for role in self.roles],
                catalog=[
                    {"type": "image", "name": "glance", "id": uuid.uuid4().hex,
                     "endpoints": [self._endpoint(interface, self.image_url) for interface in ("public", "internal")]},
                    {"type": "identity", "name": "keystone", "id": uuid.uuid4().hex,
                     "endpoints": [self._endpoint("public", f"{self.url}/v3/")]},
                ],
            )
        return {"token": token}

    def _endpoint(self, interface: str, url: str) -> dict[str, Any]:
        return {"id": uuid.uuid4().hex, "interface": interface, "region": self.region,
                "region_id": self.region, "url": url}


def _handler_for(keystone: FakeKeystone) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
            pass

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, title: str, message: str) -> None:
            self._send(status, {"error": {"code": status, "title": title, "message": message}})

        def do_GET(self) -> None:
            keystone.paths.append(f"GET {self.path}")
            path = self.path.split("?")[0].rstrip("/")
            if path == "":
                self._send(300, {"versions": {"values": [keystone.version()]}})
            elif path == "/v3":
                self._send(200, {"version": keystone.version()})
            else:
                self._error(404, "Not Found", f"Could not find {self.path}.")

        def do_POST(self) -> None:
            keystone.paths.append(f"POST {self.path}")
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path.rstrip("/") != "/v3/auth/tokens":
                self._error(404, "Not Found", f"Could not find {self.path}.")
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self._error(400, "Bad Request", "Expecting to find a JSON body.")
                return
            problem = keystone.check(body)
            if problem is not None:
                keystone.requests.append(TokenRequest(body, None))
                self._error(401, "Unauthorized", problem)
                return
            token = keystone.next_token()
            keystone.requests.append(TokenRequest(body, token))
            scoped = "scope" in body["auth"]
            self._send(201, keystone.token_body(scoped), {"X-Subject-Token": token})

    return Handler
