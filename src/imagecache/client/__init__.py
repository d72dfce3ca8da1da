"""CacheClient: the cache management API from Python, as Glance's was.

A drop-in for ``glance.image_cache.client``: the same class, methods,
constructor and :func:`get_client`, talking to the legacy routes
``{doc_root}/cached_images`` and ``{doc_root}/queued_images`` that
``glance-cache-manage`` used (``/v1`` by default; ``/v2`` reaches the same
routes under ``/v2``).

What differs from Glance's, on purpose:

* HTTP goes through urllib3 (pooled, with a timeout by default: a cache
  management call is quick, and a hung node should not hang a script);
* failures are exceptions of this package, one class per kind, each with the
  server's own message and the status code (:class:`ClientError` and below);
* Keystone is spoken through keystoneauth1 (the optional extra
  ``imagecache[keystone]``), imported only when credentials ask for it;
* nothing is read from the process environment unless the caller lets it:
  :func:`get_client` and :class:`CacheClient` take ``environ``.

The package re-exports everything it offers; its modules, each one job:
:mod:`.errors` (the exceptions, and the message of an error answer),
:mod:`.credentials`, :mod:`.keystone`, :mod:`.urls`, :mod:`.fleet` and :mod:`.activity` (pure),
:mod:`.cache_client` (:class:`CacheClient`), :mod:`.factory`
(:func:`get_client`) and :mod:`.defaults`.
"""

from imagecache.client.activity import Activity, Counters, FillView
from imagecache.client.cache_client import CacheClient
from imagecache.client.credentials import AUTH_STRATEGIES, Credentials
from imagecache.client.defaults import DEFAULT_TIMEOUT, MAX_REDIRECTS, USER_AGENT
from imagecache.client.errors import (
    ERRORS_BY_STATUS,
    MAX_MESSAGE,
    BadRequest,
    ClientError,
    ConfigurationError,
    Forbidden,
    HTTPStatusError,
    InvalidResponse,
    NotFound,
    ServerError,
    TLSError,
    Unauthorized,
    Unreachable,
    error_for_status,
    error_message,
)
from imagecache.client.factory import get_client
from imagecache.client.keystone import KEYSTONE_EXTRA_HINT, KeystoneAuth
from imagecache.client.urls import normalize_doc_root, quote_image_id

__all__ = [
    "AUTH_STRATEGIES",
    "DEFAULT_TIMEOUT",
    "ERRORS_BY_STATUS",
    "KEYSTONE_EXTRA_HINT",
    "MAX_MESSAGE",
    "MAX_REDIRECTS",
    "USER_AGENT",
    "Activity",
    "BadRequest",
    "CacheClient",
    "ClientError",
    "ConfigurationError",
    "Counters",
    "Credentials",
    "FillView",
    "Forbidden",
    "HTTPStatusError",
    "InvalidResponse",
    "KeystoneAuth",
    "NotFound",
    "ServerError",
    "TLSError",
    "Unauthorized",
    "Unreachable",
    "error_for_status",
    "error_message",
    "get_client",
    "normalize_doc_root",
    "quote_image_id",
]
