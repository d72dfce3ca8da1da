"""``imagecache serve``: run the image API node (embedded image service + cache).

The server module (gunicorn, WebOb, the cache, prometheus_client) is
imported when the command runs, not when the command line starts.
"""

from __future__ import annotations

import os
from typing import Any

import click

from imagecache.cli._common import CONFIG_HELP, ByteSize, UsageProblem
from imagecache.config import AUTH_STRATEGIES, DRIVER_NAMES, VERIFY_MODES, ConfigError, load


@click.command()
@click.option("--host", "bind_host", metavar="ADDRESS",
              help="Address to listen on (default 127.0.0.1).")
@click.option("--port", "bind_port", type=int, metavar="PORT",
              help="Port to listen on (default 9292).")
@click.option("--workers", type=int, metavar="N", help="Worker processes (default 2).")
@click.option("--data-dir", metavar="DIR", help="Image store and cache root (default ./var).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help=CONFIG_HELP)
@click.option("--upstream", "upstream_url", metavar="URL",
              help="Be an edge cache in front of this image API (e.g. http://glance:9292).")
@click.option("--auth", "auth_strategy", type=click.Choice(AUTH_STRATEGIES),
              help="none: everyone is admin; tokens: see --tokens-file.")
@click.option("--tokens-file", type=click.Path(dir_okay=False),
              help="TOML file of tokens for --auth tokens.")
@click.option("--image-cache-max-size", type=ByteSize(),
              help="Cache size limit: bytes, or 512M, 10G, ...")
@click.option("--image-cache-driver", type=click.Choice(DRIVER_NAMES),
              help="Where the cache index lives.")
@click.option("--image-cache-verify", type=click.Choice(VERIFY_MODES),
              help="Digests a fill checks: strongest offered (default) or all.")
@click.option("--db-url", metavar="URL",
              help="SQLAlchemy URL of the central index (--image-cache-driver central).")
@click.option("--node-url", metavar="URL", help="This node's URL in the central index.")
@click.option("--node-site", metavar="NAME", help="This node's site: same-site peers are filled from first.")
@click.option("--peer-token", metavar="SECRET",
              help="Secret shared by the nodes; with the central index it turns peer fill on "
                   "(IMAGECACHE_PEER_TOKEN keeps it out of the process list).")
@click.option("--threads", type=click.IntRange(min=1), metavar="N",
              help="Request threads per worker (default 64); cached files are sent without one.")
@click.option("--max-connections", type=click.IntRange(min=1), metavar="N",
              help="Client connections the node takes (default 4096); past it: 503 at once.")
@click.option("--client-header-timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Time a client has to send its request header (default 30); then 408.")
@click.option("--send-timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Time a client may read nothing before it is closed (default 60).")
def serve(config_file: str | None, **flags: Any) -> None:
    """Run the image API node (embedded image service + cache).

    Precedence: defaults < --config file < IMAGECACHE_* variables < flags.
    The file may be Glance's own glance-api.conf: the options imagecache
    shares with Glance are taken from it, the others listed once as not used.
    """
    # Imported here: the other commands need no gunicorn.
    try:
        from imagecache import server
    except ImportError as exc:  # gunicorn, WebOb, prometheus_client...: a broken install
        hint = "is imagecache installed with its dependencies?"
        raise click.ClickException(f"cannot start the server: {exc} ({hint})") from None

    try:
        settings, file = load(config_file, os.environ, flags)
        server.run(settings, notices=file.notices() if file is not None else [])
    except ConfigError as exc:
        raise UsageProblem(str(exc)) from None
    except server.StartupError as exc:  # settings fine, install broken: one line, status 1
        raise click.ClickException(str(exc)) from None
