"""The image service a node reads images from: the embedded one, or an upstream.

One choice, made from the settings, for the server's pipeline and for the
command-line prefetcher alike (so ``imagecache prefetch`` on an edge node
reads the upstream, never a local store that is not there).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from imagecache.config import ConfigError, Settings
from imagecache.http.context import RequestContext
from imagecache.http.types import WSGIApplication


def open_image_service(settings: Settings) -> tuple[WSGIApplication, Callable[[], None]]:
    """(the images app, how to close it) for ``settings``.

    ``upstream_url`` set: a proxy to it (a bad URL is a ConfigError);
    otherwise the embedded image service over ``settings.data_dir``.
    """
    if settings.upstream_url:
        from imagecache.upstream import UpstreamApp

        try:
            proxy = UpstreamApp(settings.upstream_url, timeout=settings.upstream_timeout)
        except ValueError as exc:
            raise ConfigError(f"upstream_url: {exc}") from None
        return proxy, proxy.close
    from imagecache import images

    embedded = images.make_app(settings)
    return embedded, embedded.db.close


def embedded_lookup(
    app: WSGIApplication, settings: Settings
) -> Callable[[RequestContext, str], dict[str, Any] | None] | None:
    """The embedded service's own in-process image lookup when ``app`` is it; None otherwise.

    An edge node (and any other app) is asked by sub-request, with the
    caller's token: only the origin judges those.
    """
    if settings.upstream_url:
        return None
    from imagecache.images.app import ImagesApp

    return app.image_document if isinstance(app, ImagesApp) else None
