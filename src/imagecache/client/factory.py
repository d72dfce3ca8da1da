"""get_client: a CacheClient from arguments, then Glance's environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping

from imagecache.client.cache_client import CacheClient
from imagecache.client.credentials import Credentials


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
