"""The options that say how to reach a node, shared by ``imagecache manage`` and ``imagecache top``.

One list, so that an operator who can manage a node can watch it with the
same words (``--host``, ``--port``, ``--os-auth-token``, Keystone's
``--os-*``, TLS): Glance's ``glance-cache-manage`` names.  Options left unset
are ``None`` and fall back to the environment (``OS_AUTH_TOKEN``...) in
:func:`imagecache.cli.manage_session.connect`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from imagecache.cli.manage_session import DEFAULT_HOST, DEFAULT_PORT, DOC_ROOTS

_Command = TypeVar("_Command", bound=Callable[..., Any])

_OPTIONS = (
    click.option("-H", "--host", default=DEFAULT_HOST, show_default=True, metavar="ADDRESS",
                 help="The node's address."),
    click.option("-p", "--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535),
                 metavar="PORT", help="Its API port."),
    click.option("-A", "--os-auth-token", "auth_token", metavar="TOKEN",
                 help="An admin token (default $OS_AUTH_TOKEN)."),
    click.option("--os-username", "username", metavar="NAME", help="Keystone user (default $OS_USERNAME)."),
    click.option("--os-password", "password", metavar="PASSWORD", help="Keystone password (default $OS_PASSWORD)."),
    click.option("--os-project-name", "--os-tenant-name", "project_name", metavar="NAME",
                 help="Keystone project (default $OS_PROJECT_NAME or $OS_TENANT_NAME)."),
    click.option("--os-auth-url", "auth_url", metavar="URL",
                 help="Keystone URL (default $OS_AUTH_URL); with a user and password, the token comes from there."),
    click.option("--os-region-name", "region_name", metavar="REGION",
                 help="Keystone region (default $OS_REGION_NAME)."),
    click.option("--timeout", type=click.FloatRange(min=0), metavar="SECONDS",
                 help="Longest wait for one answer of the node (default 60; 0: no limit)."),
    click.option("--ssl", "use_ssl", is_flag=True, help="Speak HTTPS to the node."),
    click.option("-k", "--insecure", is_flag=True, help="With TLS, do not check the node's certificate."),
    click.option("--ca-file", type=click.Path(dir_okay=False), help="CA certificates to trust (implies --ssl)."),
    click.option("--cert-file", type=click.Path(dir_okay=False),
                 help="Client certificate, with --key-file (implies --ssl)."),
    click.option("--key-file", type=click.Path(dir_okay=False), help="Client certificate's key (implies --ssl)."),
    click.option("--doc-root", type=click.Choice(DOC_ROOTS), default=DOC_ROOTS[0], show_default=True,
                 help="Where the cache routes are (cached_images, queued_images)."),
)


def node_options(command: _Command) -> _Command:
    """Add every connection option to ``command``, in the order ``--help`` shows them."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def given(options: dict[str, Any]) -> dict[str, Any]:
    """The options that were set: unset ones are left to :func:`connect`'s defaults and the environment."""
    return {key: value for key, value in options.items() if value is not None}
