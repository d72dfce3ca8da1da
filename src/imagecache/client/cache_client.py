"""CacheClient: the cache management API of one node, over pooled urllib3 connections."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import MaxRetryError, NewConnectionError, ResponseError, SSLError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from imagecache.client.activity import Activity, parse_activity
from imagecache.client.credentials import Credentials
from imagecache.client.defaults import DEFAULT_TIMEOUT, MAX_REDIRECTS, USER_AGENT
from imagecache.client.errors import (
    ClientError,
    ConfigurationError,
    InvalidResponse,
    TLSError,
    Unauthorized,
    Unreachable,
    error_for_status,
    error_message,
)
from imagecache.client.fleet import fleet_images
from imagecache.client.keystone import KeystoneAuth
from imagecache.client.urls import VERSION_SEGMENT, normalize_doc_root, quote_image_id
from imagecache.http.causes import innermost


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
        if VERSION_SEGMENT.fullmatch(last):
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
        if not VERSION_SEGMENT.fullmatch(path.rsplit("/", 1)[-1]):
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
            return TLSError(f"TLS with {where} failed: {innermost(reason)}{hint}")
        if isinstance(reason, NewConnectionError):
            return Unreachable(f"cannot connect to {where}: {innermost(reason)}")
        if isinstance(reason, Urllib3Timeout):
            return Unreachable(f"{where} did not answer within {self.timeout} s ({url})")
        return Unreachable(f"no answer from {where} ({url}): {innermost(reason)}")

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

    def get_fleet(self) -> list[dict[str, Any]]:
        """Every image a node of the central index holds or is filling (``GET /v2/cache/nodes``).

        ``[{"image_id", "nodes": [{"url", "site", "state": "cached"|"filling",
        "size", "bytes", "live"}]}]``, images by id, nodes of the answering
        node's site first.  An :class:`HTTPStatusError` with status 409 when
        the node has no central index (it knows no other nodes).
        """
        url = self.api_url("/v2/cache/nodes")
        images = fleet_images(self._json("GET", url))
        if images is None:
            raise InvalidResponse(f"GET {url} answered with something else than the images of the nodes")
        return images

    # -- pins (imagecache's own: /v2/cache/pins, /v2/cache/{id}/pin) ------------------------

    def pin(self, image_id: str) -> dict[str, Any]:
        """Pin an image on the node: never evicted there; one not cached yet is cached now.

        The pin as the node reports it: ``{"image_id", "pinned_by", "cached", "size"}``
        (``cached`` false: the node is fetching it).  :class:`NotFound` when
        the image service does not know the image, :class:`BadRequest` when
        it is not active.
        """
        url = self.api_url(f"/v2/cache/{quote_image_id(image_id)}/pin")
        data = self._json("PUT", url)
        if not isinstance(data, dict) or not isinstance(data.get("image_id"), str):
            raise InvalidResponse(f"PUT {url} answered with something else than a pin: {str(data)[:200]}")
        return data

    def unpin(self, image_id: str) -> bool:
        """Unpin an image (it stays cached, as an ordinary LRU entry); :class:`NotFound` when it was not pinned."""
        self.do_request("DELETE", self.api_url(f"/v2/cache/{quote_image_id(image_id)}/pin"))
        return True

    def get_pins(self) -> dict[str, Any]:
        """The node's pins: ``{"pinned_images": [pin...], "pinned_bytes", "image_cache_max_size", "over_limit"}``."""
        url = self.api_url("/v2/cache/pins")
        data = self._json("GET", url)
        if not isinstance(data, dict) or not isinstance(data.get("pinned_images"), list):
            raise InvalidResponse(f"GET {url} answered with something else than the node's pins: {str(data)[:200]}")
        return data

    def activity(self) -> Activity:
        """What the node is doing now (``GET /v2/cache/activity``): fills in progress, counters, size, queue, pins."""
        url = self.api_url("/v2/cache/activity")
        found = parse_activity(self._json("GET", url))
        if found is None:
            raise InvalidResponse(f"GET {url} answered with something else than the node's activity")
        return found
