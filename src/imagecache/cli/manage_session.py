"""How ``imagecache manage`` reaches a node, and how client failures end a command.

The client is made by a factory with :func:`connect`'s keywords, taken from
the click context's ``obj`` when it is a :class:`ManageSession` (tests pass
one to ``main(obj=...)``), else :func:`connect` itself.  The client package
(and urllib3 with it) is imported only when a command needs a client.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import click

from imagecache.cli._common import UsageProblem

if TYPE_CHECKING:
    from imagecache.client import CacheClient, ClientError

#: Makes a client from :func:`connect`'s keyword arguments.
ClientFactory = Callable[..., "CacheClient"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9292
DOC_ROOTS = ("/v1", "/v2")
#: The environment variables CacheClient reads TLS files from (Glance's names).
TLS_FILE_VARIABLES = {
    "ca_file": "GLANCE_CLIENT_CA_FILE",
    "cert_file": "GLANCE_CLIENT_CERT_FILE",
    "key_file": "GLANCE_CLIENT_KEY_FILE",
}


def connect(
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    timeout: float | None = None,
    use_ssl: bool = False,
    insecure: bool = False,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
    doc_root: str = DOC_ROOTS[0],
    auth_token: str | None = None,
    username: str | None = None,
    password: str | None = None,
    project_name: str | None = None,
    auth_url: str | None = None,
    region_name: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> CacheClient:
    """A client for one node, through :func:`imagecache.client.get_client`.

    Unset credentials come from ``environ`` (default ``os.environ``) as
    get_client reads them (``OS_AUTH_TOKEN``, ``OS_AUTH_URL``,
    ``OS_USERNAME``...).  TLS files given here override Glance's
    ``GLANCE_CLIENT_*_FILE`` variables, and any of them means TLS.  Raises
    :class:`imagecache.client.ConfigurationError` for options that cannot work.
    """
    from imagecache.client import get_client, normalize_doc_root

    env = dict(os.environ if environ is None else environ)
    files = {"ca_file": ca_file, "cert_file": cert_file, "key_file": key_file}
    for name, path in files.items():
        if path:
            env[TLS_FILE_VARIABLES[name]] = path
    client = get_client(
        host,
        port,
        timeout=timeout,
        use_ssl=use_ssl or any(files.values()),
        username=username,
        password=password,
        tenant=project_name,
        auth_url=auth_url,
        auth_token=auth_token,
        region=region_name,
        insecure=insecure,
        environ=env,
    )
    # get_client has no doc_root; the attribute only shapes the URLs.
    client.doc_root = normalize_doc_root(doc_root)
    return client


@dataclass
class ManageSession:
    """What the manage commands share: how to reach the node, and how to answer."""

    client_factory: ClientFactory = connect
    options: dict[str, Any] = field(default_factory=dict)
    as_json: bool = False
    _client: CacheClient | None = field(default=None, repr=False)

    @property
    def node(self) -> str:
        host = self.options.get("host", DEFAULT_HOST)
        host = f"[{host}]" if ":" in host else host
        return f"{host}:{self.options.get('port', DEFAULT_PORT)}"

    def client(self) -> CacheClient:
        """The client, made on first use; options that cannot work are a usage problem (exit 2)."""
        if self._client is None:
            from imagecache.client import ConfigurationError

            try:
                self._client = self.client_factory(**self.options)
            except ConfigurationError as exc:
                raise UsageProblem(exc.message) from None
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def session(ctx: click.Context, as_json: bool = False) -> ManageSession:
    """The manage group's session; ``--json`` after a command's name counts too."""
    state = ctx.find_object(ManageSession)
    assert state is not None, "manage commands run inside the manage group"
    if as_json:
        state.as_json = True
    return state


# -- errors --------------------------------------------------------------------------


def describe(error: ClientError) -> str:
    """One line for a client error: ``403 Forbidden: <the server's message>``."""
    from imagecache.client import HTTPStatusError

    message = " ".join(error.message.split())
    if isinstance(error, HTTPStatusError):
        try:
            phrase = HTTPStatus(error.status).phrase
        except ValueError:
            phrase = "error"
        return f"{error.status} {phrase}: {message}"
    return message


@contextlib.contextmanager
def client_errors() -> Iterator[None]:
    """A client failure ends the command with one line: exit 2 for bad options, 1 for the rest."""
    from imagecache.client import ClientError, ConfigurationError

    try:
        yield
    except ConfigurationError as exc:
        raise UsageProblem(exc.message) from None
    except ClientError as exc:
        raise click.ClickException(describe(exc)) from None


def fails_alone(error: ClientError) -> bool:
    """Whether ``error`` is about one image (a bad id, a server error), so the
    other ids are still worth trying.  A refused token, a forbidden caller or
    an unreachable node would fail every id the same way."""
    from imagecache.client import Forbidden, HTTPStatusError, Unauthorized

    return isinstance(error, HTTPStatusError) and not isinstance(error, Unauthorized | Forbidden)
