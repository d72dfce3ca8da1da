"""The embedded image service: a Glance-v2-compatible image API on a local file store.

:func:`make_app` builds the WSGI application from explicit settings: metadata
in ``<data_dir>/images.db`` (SQLite, WAL), bytes in ``<data_dir>/images/<id>``.
Who is calling comes from :func:`imagecache.http.context.get_context`; with
no context the caller is anonymous.
"""

from __future__ import annotations

import os

from imagecache.config import Settings
from imagecache.images.app import ImagesApp
from imagecache.images.db import ImageDB
from imagecache.images.store import ImageStore

__all__ = ["ImagesApp", "app_factory", "make_app"]


def make_app(settings: Settings) -> ImagesApp:
    """The image service WSGI app over ``settings.data_dir``.

    Creates the data directory and database when missing, and removes
    partial uploads older than ``settings.image_cache_stall_time`` seconds
    (left by a crashed worker).
    """
    os.makedirs(settings.data_dir, exist_ok=True)
    db = ImageDB(os.path.join(settings.data_dir, "images.db"))
    store = ImageStore(os.path.join(settings.data_dir, "images"), settings.hashing_algorithm)
    store.remove_stale_parts(older_than=settings.image_cache_stall_time)
    return ImagesApp(settings, db, store)


def app_factory(global_conf: dict[str, str], **local_conf: str) -> ImagesApp:
    """paste.deploy entry point: ``[app:images] paste.app_factory = imagecache.images:app_factory``."""
    from imagecache.config import load_settings

    # global_conf holds paste's own keys (__file__, here), not our options.
    return make_app(load_settings(None, {}, dict(local_conf)))
