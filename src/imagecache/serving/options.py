"""gunicorn's settings for a node, from :class:`~imagecache.config.Settings` alone.

Nothing is read from the environment or from gunicorn's own config files:
the node's options are the only source, and the worker class carries the
node's serving limits (:mod:`imagecache.serving.worker`).
"""

from __future__ import annotations

from typing import Any

from imagecache.config import Settings
from imagecache.serving.access_log import NodeLogger
from imagecache.serving.header_scan import HeaderLimits
from imagecache.serving.worker import REFUSAL_HEADROOM, ServingLimits, worker_class

#: Seconds a worker's main loop may be silent before the master kills it.
#: The loop beats at least once a second whatever the streams do, so this
#: does not bound a download; it must cover a worker's start-up (the cache
#: reconciles its index with the files on disk then).
WORKER_TIMEOUT = 300
#: Seconds in-flight requests get to finish after SIGTERM: long enough for a
#: multi-GB image to finish streaming over a decent link.
GRACEFUL_TIMEOUT = 120


def bind_address(host: str, port: int) -> str:
    """gunicorn's ``bind`` for ``host``: IPv6 literals need brackets."""
    name = host.strip().strip("[]")
    return f"[{name}]:{port}" if ":" in name else f"{name}:{port}"


def serving_limits(settings: Settings) -> ServingLimits:
    return ServingLimits.for_node(
        max_connections=settings.max_connections,
        workers=settings.workers,
        client_header_timeout=settings.client_header_timeout,
        send_timeout=settings.send_timeout,
        header=HeaderLimits(
            limit_request_line=settings.limit_request_line,
            limit_request_fields=settings.limit_request_fields,
            limit_request_field_size=settings.limit_request_field_size,
        ),
    )


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    """gunicorn settings for ``settings``."""
    limits = serving_limits(settings)
    return {
        "bind": [bind_address(settings.bind_host, settings.bind_port)],
        "workers": settings.workers,
        "worker_class": worker_class(limits),
        "threads": settings.threads,
        # gunicorn stops accepting at this many; the worker answers 503 itself
        # from its own limit on, for as long as the headroom lasts.
        "worker_connections": limits.connections_per_worker + REFUSAL_HEADROOM,
        "timeout": WORKER_TIMEOUT,
        "graceful_timeout": GRACEFUL_TIMEOUT,
        "keepalive": settings.keepalive_timeout,
        "limit_request_line": settings.limit_request_line,
        "limit_request_fields": settings.limit_request_fields,
        "limit_request_field_size": settings.limit_request_field_size,
        "accesslog": "-" if settings.access_log == "on" else None,
        "errorlog": "-",
        "loglevel": settings.log_level.lower(),
        "logger_class": NodeLogger,
        "proc_name": "imagecache",
        # The control socket's default path is shared by every gunicorn of
        # the user: two servers (or parallel tests) would fight over it.
        "control_socket_disable": True,
    }


#: Descriptors a worker needs beyond its client sockets: files being sent,
#: fills, the index, logs, the upstream pool.
FD_MARGIN = 256


def raise_file_limit(settings: Settings) -> tuple[int, int] | None:
    """Raise the soft RLIMIT_NOFILE so every worker can hold its share of ``max_connections``.

    Each stream holds a socket and a file; a limit hit mid-storm would turn
    into failed accepts.  Returns (needed, allowed) when even the hard limit
    is lower than needed (the caller warns), else None.
    """
    import resource  # POSIX only, and only the server needs it

    per_worker = -(-settings.max_connections // settings.workers)
    needed = 2 * per_worker + FD_MARGIN
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    allowed = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < allowed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (allowed, hard))
    return (needed, allowed) if allowed < needed else None
