"""Who is calling: the auth middleware and the tokens file it reads.

Two strategies, chosen by ``auth_strategy``:

``none``
    Every caller is an admin.  Meant for a developer's loopback server; the
    server warns loudly when it is bound anywhere else.
``tokens``
    ``X-Auth-Token`` is looked up in a static table read from a TOML file
    (``[tokens."<token>"]`` with ``project`` and ``roles``).  No token, or an
    unknown one, is a 401, except on the few paths clients fetch before they
    authenticate (see :func:`is_open_path`).  In front of an upstream
    (``forward_unknown``), the table only names this node's own admins and
    any other token goes on, as a non-admin, for the upstream to judge.

Either way the middleware puts a :class:`~imagecache.http.context.RequestContext`
into the environ; the layers behind it read nothing else.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from imagecache.config import AUTH_STRATEGIES, ConfigError, read_toml
from imagecache.http.context import ANONYMOUS, RequestContext, set_context
from imagecache.http.errors import send_error
from imagecache.http.types import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

#: Project of every caller under ``--auth none`` that names no project.
DEV_PROJECT_ID = "admin"
TOKEN_HEADER = "HTTP_X_AUTH_TOKEN"
_TOKEN_KEYS = frozenset({"project", "roles", "user"})
_READ_METHODS = frozenset({"GET", "HEAD"})
#: Paths answered to anyone, whatever the strategy (GET and HEAD only).
_OPEN_PATHS = frozenset({"/", "/versions", "/healthcheck", "/metrics"})
_SCHEMAS_PREFIX = "/v2/schemas"
#: The challenge every 401 of the node carries.
CHALLENGE = ("WWW-Authenticate", 'Token realm="imagecache"')
#: What a 401 says to a caller whose token is not known.
BAD_TOKEN_MESSAGE = "The request you have made requires authentication: send a valid token in X-Auth-Token."


@dataclass(frozen=True)
class TokenIdentity:
    """What a token stands for."""

    project_id: str
    roles: tuple[str, ...]
    user_id: str | None = None


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


class TokenTable:
    """Tokens and their identities, keyed by the SHA-256 of the token.

    Looking up the digest instead of the token means the only thing a
    dict's byte-wise key comparison can leak through timing is a prefix of a
    hash of the guess, which tells an attacker nothing about a real token.
    """

    def __init__(self, identities: Mapping[str, TokenIdentity]) -> None:
        self._by_digest = {
            _digest(token.encode("utf-8")): identity
            for token, identity in identities.items()
        }

    def __len__(self) -> int:
        return len(self._by_digest)

    def lookup(self, token: str | bytes) -> TokenIdentity | None:
        """The identity of ``token``, or None if it is not in the table."""
        raw = token.encode("utf-8") if isinstance(token, str) else token
        return self._by_digest.get(_digest(raw))


def _redact(token: str) -> str:
    """Enough of a token to find it in the file, not enough to use it."""
    return repr(token[:4] + "...") if len(token) > 8 else "(a short token)"


def _token_entry(path: str, token: str, entry: Any) -> TokenIdentity:
    where = f"tokens file {path}: token {_redact(token)}"
    if not token or any(ch.isspace() or not ch.isprintable() for ch in token):
        raise ConfigError(
            f"tokens file {path}: a token must be non-empty, without spaces or "
            f"control characters (it could never match an X-Auth-Token header)"
        )
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a table with project and roles")
    unknown = sorted(set(entry) - _TOKEN_KEYS)
    if unknown:
        raise ConfigError(
            f"{where} has unknown key(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(_TOKEN_KEYS))}"
        )
    project = entry.get("project")
    if not isinstance(project, str) or not project.strip():
        raise ConfigError(f'{where} needs project = "<project id>"')
    roles = entry.get("roles")
    if (
        not isinstance(roles, list)
        or not roles
        or not all(isinstance(role, str) and role.strip() for role in roles)
    ):
        raise ConfigError(
            f'{where}: roles must be a non-empty list of strings, e.g. ["member"]'
        )
    user = entry.get("user")
    if user is not None and (not isinstance(user, str) or not user.strip()):
        raise ConfigError(f"{where}: user must be a non-empty string")
    # Roles compare case-insensitively, as in oslo.policy.
    normalized = tuple(dict.fromkeys(role.strip().lower() for role in roles))
    return TokenIdentity(project_id=project.strip(), roles=normalized, user_id=user)


def load_tokens_file(path: str | os.PathLike[str]) -> TokenTable:
    """Read and validate a tokens file; every problem is a :class:`ConfigError`.

    The format::

        [tokens."s3cret-admin"]
        project = "p-admin"
        roles = ["admin"]

        [tokens."s3cret-alice"]
        project = "p-alice"
        roles = ["member"]
        user = "alice"          # optional
    """
    name = os.fspath(path)
    data = read_toml(name, "tokens file")
    extra = sorted(key for key in data if key != "tokens")
    if extra:
        raise ConfigError(
            f"tokens file {name}: unknown top-level key(s) {', '.join(extra)}; "
            f'expected only [tokens."<token>"] tables'
        )
    tokens = data.get("tokens")
    if not isinstance(tokens, dict) or not tokens:
        raise ConfigError(
            f'tokens file {name} defines no tokens; expected [tokens."<token>"] '
            f"tables with project and roles"
        )
    return TokenTable({token: _token_entry(name, token, entry) for token, entry in tokens.items()})


def is_open_path(method: str, path: str) -> bool:
    """Whether a request is answered without a token.

    Versions, health and metrics carry nothing secret.  Schemas are open too,
    unlike in Glance: they are static descriptions of the API, identical for
    every caller, and glanceclient fetches them (like /versions) to build its
    commands, so a client with a bad token gets a clean 401 on its real call
    rather than a confusing failure while loading schemas.
    """
    if method not in _READ_METHODS:
        return False
    normalized = path.rstrip("/") or "/"
    return (
        normalized in _OPEN_PATHS
        or normalized == _SCHEMAS_PREFIX
        or normalized.startswith(_SCHEMAS_PREFIX + "/")
    )


class AuthMiddleware:
    """Sets the caller's :class:`RequestContext`, or answers 401."""

    def __init__(
        self,
        app: WSGIApplication,
        strategy: str,
        tokens: TokenTable | None = None,
        *,
        default_project: str = DEV_PROJECT_ID,
        forward_unknown: bool = False,
    ) -> None:
        if strategy not in AUTH_STRATEGIES:
            raise ConfigError(
                f"auth_strategy must be one of {', '.join(AUTH_STRATEGIES)}, not {strategy!r}"
            )
        if strategy == "tokens" and tokens is None:
            raise ConfigError("auth_strategy 'tokens' needs a token table")
        self.app = app
        self.strategy = strategy
        self.tokens = tokens
        self.default_project = default_project
        #: In front of an upstream, a token this node does not know is the
        #: upstream's to judge: the caller goes on as a non-admin with its
        #: token (every image request is authorized upstream; only the local
        #: cache management API needs a local admin).  No token at all is
        #: still a 401 here.
        self.forward_unknown = forward_unknown

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if self.strategy == "none":
            set_context(environ, self._development_context(environ))
            return self.app(environ, start_response)
        context = self._token_context(environ)
        if context is None and self.forward_unknown and environ.get(TOKEN_HEADER):
            context = RequestContext(auth_token=environ[TOKEN_HEADER])
        if context is None:
            if is_open_path(environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")):
                set_context(environ, ANONYMOUS)
                return self.app(environ, start_response)
            message = (
                BAD_TOKEN_MESSAGE
                if environ.get(TOKEN_HEADER)
                else "The request you have made requires authentication: send a token in X-Auth-Token."
            )
            return send_error(environ, start_response, 401, message, [CHALLENGE])
        set_context(environ, context)
        return self.app(environ, start_response)

    def _development_context(self, environ: WSGIEnvironment) -> RequestContext:
        project = (
            environ.get("HTTP_X_PROJECT_ID")
            or environ.get("HTTP_X_TENANT_ID")
            or self.default_project
        )
        return RequestContext(
            project_id=project,
            roles=("admin",),
            auth_token=environ.get(TOKEN_HEADER) or None,
            user_id=environ.get("HTTP_X_USER_ID") or None,
        )

    def _token_context(self, environ: WSGIEnvironment) -> RequestContext | None:
        token = environ.get(TOKEN_HEADER)
        if not token or self.tokens is None:
            return None
        try:
            # PEP 3333: header values arrive as latin-1 decoded str.
            raw = token.encode("latin-1")
        except UnicodeEncodeError:
            return None
        identity = self.tokens.lookup(raw)
        if identity is None:
            if self.forward_unknown:
                return None  # the upstream judges it
            log.info(
                "rejected an unknown X-Auth-Token for %s %s",
                environ.get("REQUEST_METHOD"),
                environ.get("PATH_INFO"),
            )
            return None
        return RequestContext(
            project_id=identity.project_id,
            roles=identity.roles,
            auth_token=token,
            user_id=identity.user_id,
        )
