"""Keystone through keystoneauth1 (the optional extra ``imagecache[keystone]``).

keystoneauth1 is imported only when credentials ask for Keystone; its
failures become this package's errors, naming Keystone.
"""

from __future__ import annotations

from typing import Any

from imagecache.client.credentials import Credentials
from imagecache.client.defaults import USER_AGENT
from imagecache.client.errors import ClientError, ConfigurationError, TLSError, Unreachable, error_for_status

KEYSTONE_EXTRA_HINT = "install imagecache[keystone] (pip install 'imagecache[keystone]')"


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
