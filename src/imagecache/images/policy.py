"""Who may do what with an image: plain functions, no I/O.

The rules are Glance's defaults, narrowed to what this service implements
(there are no image members, so ``shared`` behaves like ``private``):

* admins see and change everything;
* others see ``public`` and ``community`` images and the images their project
  owns; an image owned by nobody is private to admins unless it is public or
  community;
* only the owner (or an admin) changes, uploads to or deletes an image;
* only admins make an image public, give it to another project, or
  deactivate/reactivate it;
* a deactivated image's data is served to admins only.

Images a caller may not see are reported as missing (404), never forbidden,
so that their existence does not leak.
"""

from __future__ import annotations

import enum

from imagecache.http.context import RequestContext
from imagecache.images.model import Image


def owns(context: RequestContext, image: Image) -> bool:
    return context.project_id is not None and context.project_id == image.owner


def may_see(context: RequestContext, image: Image) -> bool:
    return context.is_admin or image.visibility in ("public", "community") or owns(context, image)


def may_list(context: RequestContext, image: Image, visibility: str | None) -> bool:
    """Whether a listing with the ``visibility`` filter (None: no filter) shows ``image``.

    Without a filter, community images appear only to their owner, as in
    Glance; ``visibility=all`` shows everything the caller may see.
    """
    if not may_see(context, image):
        return False
    if visibility is None:
        return image.visibility != "community" or owns(context, image)
    return visibility == "all" or image.visibility == visibility


def may_create(context: RequestContext) -> bool:
    """Anonymous callers (no project, not admin) cannot create images."""
    return context.is_admin or context.project_id is not None


def may_modify(context: RequestContext, image: Image) -> bool:
    """Change metadata, upload data, delete: the owner or an admin."""
    return context.is_admin or owns(context, image)


def may_set_visibility(context: RequestContext, visibility: str) -> bool:
    return visibility != "public" or context.is_admin


def may_set_owner(context: RequestContext, owner: str | None) -> bool:
    return context.is_admin or (owner is not None and owner == context.project_id)


def may_change_activation(context: RequestContext) -> bool:
    """Deactivate and reactivate are admin actions here (Glance's classic default)."""
    return context.is_admin


class Download(enum.Enum):
    """The answer to "may this caller have this image's bytes?"."""

    ALLOWED = "allowed"
    NOT_FOUND = "not found"  # 404: invisible to the caller
    DEACTIVATED = "deactivated"  # 403 for non-admins
    NO_DATA = "no data"  # 204: queued or saving, nothing to send yet


def download(context: RequestContext, image: Image) -> Download:
    if not may_see(context, image):
        return Download.NOT_FOUND
    if image.status == "deactivated" and not context.is_admin:
        return Download.DEACTIVATED
    if not image.has_data:
        return Download.NO_DATA
    return Download.ALLOWED
