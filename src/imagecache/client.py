"""CacheClient: the cache management API from Python, as Glance's was.

A drop-in for ``glance.image_cache.client``: the same class, methods,
constructor and :func:`get_client`, talking to the legacy routes
``{doc_root}/cached_images`` and ``{doc_root}/queued_images`` that
``glance-cache-manage`` used (``/v1`` by default; ``/v2`` reaches the same
routes under ``/v2``).

What differs from Glance's, on purpose:

* HTTP goes through urllib3 (pooled, with a timeout by default: a cache
  management call is quick, and a hung node should not hang a script);
* failures are exceptions of this module, one class per kind, each with the
  server's own message and the status code (:class:`ClientError` and below);
* Keystone is spoken through keystoneauth1 (the optional extra
  ``imagecache[keystone]``), imported only when credentials ask for it;
* nothing is read from the process environment unless the caller lets it:
  :func:`get_client` and :class:`CacheClient` take ``environ``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import quote, urlsplit

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import MaxRetryError, NewConnectionError, ResponseError, SSLError, TimeoutError

from imagecache import __version__

#: Seconds a request may wait for the connection or for the next bytes when
#: the caller gives no timeout (``timeout=0`` means no limit, as in Glance).
DEFAULT_TIMEOUT = 60.0
#: Redirects followed per request, as Glance's client did.
MAX_REDIRECTS = 5
#: Longest server message kept in an exception (error pages can be long).
MAX_MESSAGE = 500
USER_AGENT = f"imagecache-client/{__version__}"
AUTH_STRATEGIES = ("noauth", "keystone")
KEYSTONE_EXTRA_HINT = "install imagecache[keystone] (pip install 'imagecache[keystone]')"


# -- errors ------------------------------------------------------------------------


class ClientError(Exception):
    """Anything the client could not do; ``status`` is the HTTP status, if any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class ConfigurationError(ClientError, ValueError):
    """The client was set up with options that cannot work (no request made)."""


class Unreachable(ClientError):
    """No answer: connection refused, timed out, reset, or TLS failed."""


class TLSError(Unreachable):
    """The TLS handshake failed (certificate not trusted, wrong host, no client cert)."""


class InvalidResponse(ClientError):
    """The server answered success with a body the API never sends."""


class HTTPStatusError(ClientError):
    """The server answered with an error status; ``message`` is its explanation."""

    def __init__(self, message: str, status: int, body: bytes = b"") -> None:
        super().__init__(message, status)
        self.body = body

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"


class BadRequest(HTTPStatusError):
    """400: the request was refused as malformed (an image id that is no UUID, ...)."""


class Unauthorized(HTTPStatusError):
    """401: no token, an unknown or expired one, or credentials Keystone refused."""


class Forbidden(HTTPStatusError):
    """403: authenticated, but not allowed (the cache API is for admins)."""


class NotFound(HTTPStatusError):
    """404: no such resource."""


class ServerError(HTTPStatusError):
    """5xx: the server failed."""


ERRORS_BY_STATUS: Mapping[int, type[HTTPStatusError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
}


def error_for_status(status: int, message: str, body: bytes = b"") -> HTTPStatusError:
    """The exception for an error answer: by status, 5xx as ServerError, else the base."""
    if status >= 500:
        return ServerError(message, status, body)
    return ERRORS_BY_STATUS.get(status, HTTPStatusError)(message, status, body)


_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def _tidy(text: str) -> str:
    """One line without markup: webob's JSON messages carry ``<br />`` and newlines."""
    tidy = _SPACE.sub(" ", _TAG.sub(" ", text)).strip()
    return tidy if len(tidy) <= MAX_MESSAGE else tidy[: MAX_MESSAGE - 3] + "..."


def error_message(body: bytes, content_type: str | None, status: int | None = None, reason: str = "") -> str:
    """The explanation in an error body, whichever shape the server used.

    Our cache API sends ``{"error": {"message": ...}}``; webob's error pages
    (the image service) send ``{"message": ...}``, or plain text or HTML
    that repeat the status line first.  Falls back to the status line's
    reason when the body says nothing.
    """
    text = body.decode("utf-8", "replace")
    if "json" in (content_type or "").lower() or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            inner = data.get("error")
            for source in (inner if isinstance(inner, dict) else {}, data):
                for key in ("message", "title"):
                    value = source.get(key)
                    if isinstance(value, str) and _tidy(value):
                        return _tidy(value)
    if "html" in (content_type or "").lower():
        text = re.sub(r"(?is)<(head|title|style|script)\b.*?</\1>", " ", text)
    tidy = _tidy(text)
    if status is not None and reason:
        # webob's pages start with "404 Not Found" (text) or an <h1> of it (HTML).
        tidy = tidy.removeprefix(f"{status} {reason}").strip()
    return tidy or reason or "no explanation given"


# -- credentials and Keystone ----------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """What Glance's ``creds`` dict held: the auth strategy and Keystone's inputs.

    Accepts Glance's keys, old and new (``tenant`` or ``project``,
    ``user_domain_id`` ...); domains default to the name ``Default``.
    """

    strategy: str = "noauth"
    auth_url: str | None = None
    username: str | None = None
    password: str | None = None
    tenant: str | None = None
    region: str | None = None
    user_domain_name: str | None = None
    user_domain_id: str | None = None
    project_domain_name: str | None = None
    project_domain_id: str | None = None

    def __post_init__(self) -> None:
        if self.strategy not in AUTH_STRATEGIES:
            raise ConfigurationError(
                f"auth strategy must be one of {', '.join(AUTH_STRATEGIES)}, not {self.strategy!r}"
            )
        if self.strategy == "keystone" and not self.auth_url:
            raise ConfigurationError(
                "the keystone auth strategy needs an auth_url (or OS_AUTH_URL in the environment)"
            )

    @classmethod
    def from_mapping(cls, creds: Mapping[str, Any] | None) -> Credentials:
        """From a Glance-style dict; None and empty values count as unset."""
        values = {key: value for key, value in (creds or {}).items() if value not in (None, "")}
        if "project" in values:
            values.setdefault("tenant", values.pop("project"))
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigurationError(
                f"unknown credential key(s) {', '.join(unknown)}; known: {', '.join(sorted(known | {'project'}))}"
            )
        return cls(**values)

    @property
    def can_authenticate(self) -> bool:
        """Whether Keystone can be asked for a token (strategy, URL, user and password)."""
        return self.strategy == "keystone" and bool(self.auth_url and self.username and self.password)

    def missing(self) -> list[str]:
        return [name for name in ("username", "password") if not getattr(self, name)]

    def keystone_arguments(self) -> dict[str, str]:
        """keystoneauth1 Password plugin arguments: project scoped, domains by id or name."""
        assert self.auth_url and self.username and self.password
        arguments = {"auth_url": self.auth_url, "username": self.username, "password": self.password}
        if self.tenant:
            arguments["project_name"] = self.tenant
        for who in ("user", "project"):
            domain_id = getattr(self, f"{who}_domain_id")
            if domain_id:
                arguments[f"{who}_domain_id"] = domain_id
            else:
                arguments[f"{who}_domain_name"] = getattr(self, f"{who}_domain_name") or "Default"
        return arguments


def _import_keystoneauth() -> tuple[Any, Any, Any]:
    """keystoneauth1's generic Password plugin, Session and exceptions, or a clear error."""
    try:
        from keystoneauth1 import exceptions, session
        from keystoneauth1.identity import generic
    except ImportError as exc:
        raise ConfigurationError(
            f"Keystone authentication needs keystoneauth1, which is not installed: {KEYSTONE_EXTRA_HINT}"
        ) from exc
    return generic.Password, session.Session, exceptions


class KeystoneAuth:
    """A token (and the image endpoint) from Keystone, through keystoneauth1.

    The plugin discovers the identity API from ``auth_url`` (``.../v3`` or
    the bare root) and does v3 password auth; it keeps the token until it
    expires, so asking for it before every request costs nothing.
    """

    def __init__(self, creds: Credentials, *, insecure: bool, timeout: float | None) -> None:
        password_plugin, session_class, self._errors = _import_keystoneauth()
        self.auth_url = creds.auth_url
        self.region = creds.region
        self._plugin = password_plugin(**creds.keystone_arguments())
        self._session = session_class(auth=self._plugin, verify=not insecure, timeout=timeout, user_agent=USER_AGENT)

    def token(self) -> str:
        return str(self._call(self._plugin.get_token, self._session))

    def invalidate(self) -> None:
        """Forget the token, so the next :meth:`token` asks Keystone again."""
        self._plugin.invalidate()

    def image_endpoint(self) -> str | None:
        """The catalog's public image endpoint (in ``region`` if set), or None."""
        endpoint = self._call(
            self._plugin.get_endpoint, self._session, service_type="image", interface="public", region_name=self.region
        )
        return str(endpoint) if endpoint else None

    def _call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a keystoneauth1 call; its failures become ours, naming Keystone."""
        errors = self._errors
        where = f"Keystone at {self.auth_url}"
        try:
            return function(*args, **kwargs)
        except errors.HttpError as exc:
            status = int(getattr(exc, "http_status", None) or 500)
            raise error_for_status(status, f"{where}: {exc.message or exc}") from exc
        except errors.SSLError as exc:
            raise TLSError(f"{where}: TLS failed: {exc}") from exc
        except (errors.ConnectFailure, errors.ConnectionError, errors.ConnectTimeout) as exc:
            raise Unreachable(f"{where} is unreachable: {exc}") from exc
        except errors.ClientException as exc:
            raise ClientError(f"{where}: {exc}") from exc


# -- the client --------------------------------------------------------------------


def quote_image_id(image_id: str) -> str:
    """``image_id`` as one path segment, whatever it contains.

    Every reserved character is percent-encoded, dots too: urllib3 removes
    ``.``/``..`` segments, so an id of ``..`` would otherwise address the
    collection above it.  The server decides whether the id is valid.
    """
    if not isinstance(image_id, str):
        raise TypeError(f"an image id is a string, not {type(image_id).__name__}")
    if not image_id:
        # An empty segment would name the collection: DELETE it means "all".
        raise ValueError("an image id must not be empty")
    return quote(image_id, safe="").replace(".", "%2E")


def normalize_doc_root(doc_root: str) -> str:
    """``'v2'``, ``'/v2/'`` -> ``'/v2'``; ``''`` stays the root."""
    stripped = doc_root.strip("/")
    return f"/{stripped}" if stripped else ""


_VERSION_SEGMENT = re.compile(r"v\d+(\.\d+)*")


class CacheClient:
    """The cache management API of one image API node.

    Same constructor as Glance's ``CacheClient``.  ``creds`` (a
    :class:`Credentials` or Glance's dict) with the keystone strategy makes
    the client ask Keystone for a token when it has none, and once more when
    the node answers 401.  With ``configure_via_auth`` the catalog's image
    endpoint replaces ``host``/``port`` (Glance's default; :func:`get_client`
    turns it off, since a cache belongs to the node named by ``host``).

    With ``use_ssl``, unset ``key_file``/``cert_file``/``ca_file`` fall back to
    ``GLANCE_CLIENT_KEY_FILE``/``..._CERT_FILE``/``..._CA_FILE`` in
    ``environ`` (default ``os.environ``), as in Glance.
    """

    DEFAULT_PORT = 9292
    DEFAULT_DOC_ROOT = "/v1"

    def __init__(
        self,
        host: str,
        port: int | None = DEFAULT_PORT,
        timeout: float | None = None,
        use_ssl: bool = False,
        auth_token: str | None = None,
        creds: Credentials | Mapping[str, Any] | None = None,
        doc_root: str | None = None,
        key_file: str | None = None,
        cert_file: str | None = None,
        ca_file: str | None = None,
        insecure: bool = False,
        configure_via_auth: bool = True,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.host = host
        self.port = int(port or self.DEFAULT_PORT)
        self.timeout: float | None = DEFAULT_TIMEOUT if timeout is None else (float(timeout) or None)
        self.use_ssl = use_ssl
        self.auth_token = auth_token or None
        self.creds = creds if isinstance(creds, Credentials) else Credentials.from_mapping(creds)
        # An empty doc root is valid (the API at the root), hence no "or".
        self.doc_root = normalize_doc_root(self.DEFAULT_DOC_ROOT if doc_root is None else doc_root)
        self.insecure = insecure
        self.configure_via_auth = configure_via_auth
        if use_ssl:
            key_file = key_file or env.get("GLANCE_CLIENT_KEY_FILE") or None
            cert_file = cert_file or env.get("GLANCE_CLIENT_CERT_FILE") or None
            ca_file = ca_file or env.get("GLANCE_CLIENT_CA_FILE") or None
        self.key_file = key_file
        self.cert_file = cert_file
        self.ca_file = ca_file
        self._check_tls_files()
        self._keystone = self._make_keystone()
        self._configured_via_auth = False
        self._pool = urllib3.PoolManager(
            num_pools=4,
            timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout),
            retries=urllib3.Retry(
                total=None, connect=0, read=0, status=0, other=0,
                redirect=MAX_REDIRECTS, raise_on_redirect=True, raise_on_status=False,
                # The token must not follow a redirect to another host.
                remove_headers_on_redirect=[*urllib3.Retry.DEFAULT_REMOVE_HEADERS_ON_REDIRECT, "X-Auth-Token"],
            ),
            **self._tls_options(),
        )

    def __repr__(self) -> str:
        return f"<CacheClient {self.base_url}>"

    def __enter__(self) -> CacheClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close pooled connections (the client stays usable)."""
        self._pool.clear()

    # -- set-up ---------------------------------------------------------------------

    def _check_tls_files(self) -> None:
        if not self.use_ssl:
            return
        if bool(self.cert_file) != bool(self.key_file):
            given, missing = ("cert_file", "key_file") if self.cert_file else ("key_file", "cert_file")
            raise ConfigurationError(
                f"a client certificate needs both cert_file and key_file: {given} is set, {missing} is not "
                f"(GLANCE_CLIENT_{missing.upper()} in the environment would do)"
            )
        for name in ("key_file", "cert_file", "ca_file"):
            path = getattr(self, name)
            if path and not os.path.isfile(path):
                raise ConfigurationError(f"the {name.replace('_', ' ')} {path} does not exist")

    def _tls_options(self) -> dict[str, Any]:
        if self.insecure:
            return {"cert_reqs": "CERT_NONE", "assert_hostname": False,
                    "cert_file": self.cert_file, "key_file": self.key_file}
        return {"cert_reqs": "CERT_REQUIRED", "ca_certs": self.ca_file,
                "cert_file": self.cert_file, "key_file": self.key_file}

    def _make_keystone(self) -> KeystoneAuth | None:
        """Keystone, when the credentials can get a token; an error when they must and cannot."""
        if self.creds.strategy != "keystone":
            return None
        if not self.creds.can_authenticate:
            if self.auth_token:
                return None  # the token is all we have; a 401 will say if it is stale
            raise ConfigurationError(
                f"Keystone authentication needs {' and '.join(self.creds.missing())} "
                "(or OS_USERNAME/OS_PASSWORD in the environment), or give an auth_token"
            )
        return KeystoneAuth(self.creds, insecure=self.insecure, timeout=self.timeout)

    @property
    def base_url(self) -> str:
        scheme = "https" if self.use_ssl else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{self.doc_root}"

    def url(self, action: str) -> str:
        """The URL of ``action`` (``/cached_images``...) under the doc root; a full URL is kept."""
        if action.startswith(("http://", "https://")):
            return action
        return f"{self.base_url}/{action.lstrip('/')}"

    def api_url(self, path: str) -> str:
        """The URL of ``path`` (``/v2/cache/...``) beside the doc root, for routes only /v2 has.

        The doc root's version segment is replaced, any prefix before it kept
        (``/image/v1`` -> ``/image/v2/...``).
        """
        root = self.doc_root
        last = root.rsplit("/", 1)[-1]
        if _VERSION_SEGMENT.fullmatch(last):
            root = root[: -len(last) - 1]
        return f"{self.base_url[: len(self.base_url) - len(self.doc_root)]}{root}/{path.lstrip('/')}"

    def configure_from_url(self, url: str) -> None:
        """Point the client at ``url`` (the catalog's image endpoint).

        An endpoint path without a version (``http://glance:9292``) gets the
        client's own doc root appended; one with (``.../v2``) is kept.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidResponse(f"the catalog's image endpoint is not an http(s) URL: {url!r}")
        self.use_ssl = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.use_ssl else 80)
        path = parts.path.rstrip("/")
        if not _VERSION_SEGMENT.fullmatch(path.rsplit("/", 1)[-1]):
            path += self.doc_root
        self.doc_root = normalize_doc_root(path)

    def _authenticate(self, force: bool = False) -> None:
        """Get a token from Keystone (a fresh one with ``force``)."""
        assert self._keystone is not None
        if force:
            self._keystone.invalidate()
        self.auth_token = self._keystone.token()
        if self.configure_via_auth and not self._configured_via_auth:
            endpoint = self._keystone.image_endpoint()
            if endpoint:
                self.configure_from_url(endpoint)
            self._configured_via_auth = True

    # -- requests -------------------------------------------------------------------

    def do_request(self, method: str, action: str) -> urllib3.BaseHTTPResponse:
        """``method`` on ``{doc_root}{action}``; the answer (2xx), its body read.

        Without a token, Keystone is asked for one (when credentials allow);
        a 401 with credentials gets one fresh token and one retry, as Glance's
        client did.  Raises :class:`ClientError` subclasses.
        """
        if self._keystone is not None and not self.auth_token:
            self._authenticate()
        try:
            return self._send(method, action)
        except Unauthorized:
            if self._keystone is None:
                raise
            self._authenticate(force=True)
            return self._send(method, action)

    def _send(self, method: str, action: str) -> urllib3.BaseHTTPResponse:
        url = self.url(action)
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self.auth_token:
            headers["X-Auth-Token"] = self.auth_token
        try:
            answer = self._pool.request(method, url, headers=headers)
        except MaxRetryError as exc:
            if isinstance(exc.reason, ResponseError):
                raise ClientError(f"{method} {url}: more than {MAX_REDIRECTS} redirects") from exc
            raise self._unreachable(url, exc.reason or exc) from exc
        except Urllib3Error as exc:
            raise self._unreachable(url, exc) from exc
        if answer.status >= 300:
            raise error_for_status(
                answer.status,
                error_message(answer.data, answer.headers.get("Content-Type"), answer.status, answer.reason or ""),
                answer.data,
            )
        return answer

    def _unreachable(self, url: str, reason: BaseException) -> Unreachable:
        """The error for a request that got no answer, saying why in words."""
        where = f"{self.host}:{self.port}"
        if isinstance(reason, SSLError):
            hint = ""
            if "certificate verify failed" in str(reason).lower():
                hint = " (is ca_file the CA that signed the server's certificate? insecure=True skips the check)"
            elif not self.cert_file:
                # TLS 1.3 servers refuse a missing client certificate after the
                # handshake: the client sees an alert, or just an EOF.
                hint = " (if the server requires a client certificate, give cert_file and key_file)"
            return TLSError(f"TLS with {where} failed: {_innermost(reason)}{hint}")
        if isinstance(reason, NewConnectionError):
            return Unreachable(f"cannot connect to {where}: {_innermost(reason)}")
        if isinstance(reason, TimeoutError):
            return Unreachable(f"{where} did not answer within {self.timeout} s ({url})")
        return Unreachable(f"no answer from {where} ({url}): {_innermost(reason)}")

    def _json(self, method: str, action: str) -> Any:
        answer = self.do_request(method, action)
        try:
            return json.loads(answer.data)
        except ValueError as exc:
            raise InvalidResponse(
                f"{method} {self.url(action)} answered {answer.status} with a body that is not JSON"
            ) from exc

    def _field(self, method: str, action: str, key: str, kind: type) -> Any:
        """One field of a JSON object answer, checked for its type."""
        data = self._json(method, action)
        value = data.get(key) if isinstance(data, dict) else None
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InvalidResponse(
                f"{method} {self.url(action)} answered without a {kind.__name__} {key!r}: {str(data)[:200]}"
            )
        return value

    # -- the API (Glance's method names) -------------------------------------------

    def get_cached_images(self) -> list[dict[str, Any]]:
        """The cached images, as the server lists them (``image_id``, ``size``, ``hits``...)."""
        return list(self._field("GET", "/cached_images", "cached_images", list))

    def get_queued_images(self) -> list[str]:
        """Ids of the images queued for caching."""
        return list(self._field("GET", "/queued_images", "queued_images", list))

    def delete_cached_image(self, image_id: str) -> bool:
        """Drop one image from the cache (the server does not mind if it was not cached)."""
        self.do_request("DELETE", f"/cached_images/{quote_image_id(image_id)}")
        return True

    def delete_all_cached_images(self) -> int:
        """Empty the cache; the number of images the server removed."""
        return int(self._field("DELETE", "/cached_images", "num_deleted", int))

    def queue_image_for_caching(self, image_id: str) -> bool:
        """Queue an image; the server starts caching it at once."""
        self.do_request("PUT", f"/queued_images/{quote_image_id(image_id)}")
        return True

    def delete_queued_image(self, image_id: str) -> bool:
        """Take one image off the queue."""
        self.do_request("DELETE", f"/queued_images/{quote_image_id(image_id)}")
        return True

    def delete_all_queued_images(self) -> int:
        """Empty the queue; the number of ids the server removed."""
        return int(self._field("DELETE", "/queued_images", "num_deleted", int))

    def get_cached_nodes(self, image_id: str) -> list[str]:
        """Reference URLs of the live nodes caching an image (``GET /v2/cache/nodes/{id}``).

        An :class:`HTTPStatusError` with status 409 when the node has no
        central index, :class:`NotFound` when the image service does not know
        the image.
        """
        url = self.api_url(f"/v2/cache/nodes/{quote_image_id(image_id)}")
        data = self._json("GET", url)
        if not isinstance(data, list) or not all(isinstance(node, str) for node in data):
            raise InvalidResponse(f"GET {url} answered with something else than a list of URLs: {str(data)[:200]}")
        return list(data)


def _innermost(error: BaseException) -> str:
    """The most specific message in an exception chain (urllib3 wraps several deep)."""
    seen: set[int] = set()
    while id(error) not in seen:
        seen.add(id(error))
        inner = error.__cause__ or error.__context__
        if inner is None:  # urllib3 also carries causes as arguments
            inner = next((arg for arg in error.args if isinstance(arg, BaseException)), None)
        if inner is None:
            break
        error = inner
    text = str(error)
    return text or type(error).__name__


# -- get_client --------------------------------------------------------------------


def get_client(
    host: str,
    port: int | None = None,
    timeout: float | None = None,
    use_ssl: bool = False,
    username: str | None = None,
    password: str | None = None,
    tenant: str | None = None,
    auth_url: str | None = None,
    auth_strategy: str | None = None,
    auth_token: str | None = None,
    region: str | None = None,
    is_silent_upload: bool = False,
    insecure: bool = False,
    *,
    environ: Mapping[str, str] | None = None,
) -> CacheClient:
    """A :class:`CacheClient` for ``host``, with Glance's environment fallbacks.

    Every argument not given comes from ``environ`` (default ``os.environ``):
    ``OS_AUTH_TOKEN`` (or Glance's ``OS_TOKEN``), ``OS_USERNAME``,
    ``OS_PASSWORD``, ``OS_TENANT_NAME`` or ``OS_PROJECT_NAME``,
    ``OS_AUTH_URL``, ``OS_AUTH_STRATEGY``, ``OS_REGION_NAME``, and the domains
    ``OS_USER_DOMAIN_NAME``/``_ID``, ``OS_PROJECT_DOMAIN_NAME``/``_ID``.  An
    auth URL means Keystone: with a username and password (and no token) the
    client gets its token there.  ``is_silent_upload`` is accepted for
    compatibility and unused (the cache API uploads nothing).
    """
    del is_silent_upload
    env = os.environ if environ is None else environ

    def pick(given: str | None, *names: str) -> str | None:
        if given:
            return given
        return next((env[name] for name in names if env.get(name)), None)

    url = pick(auth_url, "OS_AUTH_URL")
    creds = Credentials(
        strategy="keystone" if url else (pick(auth_strategy, "OS_AUTH_STRATEGY") or "noauth"),
        auth_url=url,
        username=pick(username, "OS_USERNAME"),
        password=pick(password, "OS_PASSWORD"),
        tenant=pick(tenant, "OS_TENANT_NAME", "OS_PROJECT_NAME"),
        region=pick(region, "OS_REGION_NAME"),
        user_domain_name=pick(None, "OS_USER_DOMAIN_NAME"),
        user_domain_id=pick(None, "OS_USER_DOMAIN_ID"),
        project_domain_name=pick(None, "OS_PROJECT_DOMAIN_NAME"),
        project_domain_id=pick(None, "OS_PROJECT_DOMAIN_ID"),
    )
    return CacheClient(
        host=host,
        port=port,
        timeout=timeout,
        use_ssl=use_ssl,
        auth_token=pick(auth_token, "OS_AUTH_TOKEN", "OS_TOKEN"),
        creds=creds,
        insecure=insecure,
        configure_via_auth=False,
        environ=env,
    )
