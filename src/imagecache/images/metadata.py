"""Handlers for image records (v2): create, list, show, update, delete, tags, (de)activation.

Each handler takes the :class:`~imagecache.images.catalog.Catalog` and the
request and returns the success response; a refusal is raised at the check
that decides it, in the order the checks are written here (404 for an image
the caller cannot see comes before 403 for one it may not change, which
comes before 400 for a bad body).  Checks that depend on the stored record
run again inside :meth:`ImageDB.modify <imagecache.images.db.ImageDB.modify>`,
on the record as it is when the change is written.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import webob

from imagecache.http.context import RequestContext, get_context
from imagecache.images import parsing, policy, views
from imagecache.images.catalog import Catalog
from imagecache.images.model import Image, new_id, unique_tags, utcnow
from imagecache.images.refusals import Refusal, bad_request, forbidden, not_found
from imagecache.images.wire import json_body, json_response, query_pairs

#: Status for deactivate/reactivate on an image in another status: Glance
#: answers 403 (its domain raises Forbidden for these transitions).
WRONG_STATUS_FOR_ACTION = 403


def create_image(catalog: Catalog, request: webob.Request) -> webob.Response:
    """``POST /v2/images``: 201 with the new image's document."""
    context = get_context(request.environ)
    if not policy.may_create(context):
        raise forbidden("You are not authorized to complete add_image action.")
    parsed = parsing.parse_create(json_body(request), catalog.validator)
    image = catalog.db.insert(_new_image(catalog, context, parsed))
    response = json_response(views.image_document(image), 201)
    response.location = views.image_path(image.id)
    return response


def _new_image(catalog: Catalog, context: RequestContext, parsed: parsing.NewImage) -> Image:
    attributes = dict(parsed.attributes)
    owner = attributes.pop("owner", context.project_id)
    if "owner" in parsed.attributes and not policy.may_set_owner(context, owner):
        raise forbidden("You are not permitted to create images owned by another project.")
    if not policy.may_set_visibility(context, attributes.get("visibility", "shared")):
        raise forbidden("You are not authorized to complete publicize_image action.")
    now = utcnow()
    image = Image(
        id=parsed.id or new_id(),
        owner=owner,
        created_at=now,
        updated_at=now,
        tags=parsed.tags,
        properties=dict(parsed.properties),
        **attributes,
    )
    return catalog.checked(image)


def list_images(catalog: Catalog, request: webob.Request) -> webob.Response:
    """``GET /v2/images``: a page of images, with ``first`` and ``next`` links."""
    pairs = query_pairs(request.environ)
    images, more = catalog.page(get_context(request.environ), pairs)
    kept = [(name, value) for name, value in pairs if name != "marker"]
    document: dict[str, Any] = {
        "images": [views.image_document(image) for image in images],
        "first": "/v2/images" + (f"?{urllib.parse.urlencode(kept)}" if kept else ""),
        "schema": "/v2/schemas/images",
    }
    if more and images:
        document["next"] = "/v2/images?" + urllib.parse.urlencode([*kept, ("marker", images[-1].id)])
    return json_response(document)


def show_image(catalog: Catalog, request: webob.Request, image_id: str) -> webob.Response:
    return json_response(views.image_document(catalog.find(get_context(request.environ), image_id)))


def update_image(catalog: Catalog, request: webob.Request, image_id: str) -> webob.Response:
    """``PATCH /v2/images/{id}`` with a JSON patch: 200 with the changed image."""
    if request.content_type not in parsing.PATCH_MEDIA_TYPES:
        raise parsing.unsupported_patch_type()
    context = get_context(request.environ)
    found = catalog.find(context, image_id)
    if not policy.may_modify(context, found):
        raise forbidden("You do not own this image.")
    changes = parsing.parse_patch(request.content_type, json_body(request), catalog.validator)

    def change(current: Image) -> Image:
        if not policy.may_modify(context, current):
            raise forbidden("You do not own this image.")
        updated = parsing.apply_changes(context, current, changes, catalog.base_attributes, utcnow())
        return catalog.checked(updated)

    return json_response(views.image_document(catalog.db.modify(found.id, change)))


def delete_image(catalog: Catalog, request: webob.Request, image_id: str) -> webob.Response:
    delete(catalog, request, image_id)
    return webob.Response(status=204)


def delete(catalog: Catalog, request: webob.Request, image_id: str) -> Image:
    """What v1 and v2 deletes share: the record and the bytes go; the deleted image."""
    context = get_context(request.environ)
    found = catalog.find(context, image_id)

    def check(current: Image) -> None:
        if not policy.may_modify(context, current):
            raise forbidden("You are not permitted to delete this image.")
        if current.protected:
            raise forbidden(f"Image {current.id} is protected and cannot be deleted.")

    deleted = catalog.db.delete(found.id, check)
    catalog.store.delete(deleted.id)
    return deleted


def set_activation(catalog: Catalog, request: webob.Request, image_id: str, action: str) -> webob.Response:
    """``deactivate`` (active -> deactivated) or ``reactivate`` (the reverse); admins only."""
    context = get_context(request.environ)
    found = catalog.find(context, image_id)
    if not policy.may_change_activation(context):
        raise forbidden(f"You are not authorized to complete {action} action.")
    source, target = ("active", "deactivated") if action == "deactivate" else ("deactivated", "active")

    def change(current: Image) -> Image:
        if current.status == target:
            return current  # Glance: a no-op, still 204
        if current.status != source:
            raise Refusal(WRONG_STATUS_FOR_ACTION, f"Not allowed to {action} image in status '{current.status}'")
        return current.evolve(status=target, updated_at=utcnow())

    catalog.db.modify(found.id, change)
    return webob.Response(status=204)


def set_tag(catalog: Catalog, request: webob.Request, image_id: str, tag: str, present: bool) -> webob.Response:
    """``PUT`` (add) or ``DELETE`` (remove) ``/v2/images/{id}/tags/{tag}``: 204."""
    try:
        value = tag.encode("latin-1").decode("utf-8")  # PATH_INFO carries UTF-8 bytes as latin-1
    except UnicodeError:
        raise bad_request("Tags must be UTF-8 text.") from None
    parsing.check_tag(value, catalog.validator)
    context = get_context(request.environ)
    found = catalog.find(context, image_id)

    def change(current: Image) -> Image:
        if not policy.may_modify(context, current):
            raise forbidden(f"Not allowed to update tags for image {current.id}.")
        if present:
            tags = unique_tags((*current.tags, value))
        elif value in current.tags:
            tags = tuple(t for t in current.tags if t != value)
        else:
            raise not_found(f"Tag {value[:255]} not found on image {current.id}.")
        return current if tags == current.tags else current.evolve(tags=tags, updated_at=utcnow())

    catalog.db.modify(found.id, change)
    return webob.Response(status=204)
