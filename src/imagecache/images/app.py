"""The embedded image service: Glance's v2 image API (and legacy v1 reads) as a WSGI app.

Requests are dispatched through a :class:`~imagecache.images.routes.RouteTable`
to handler methods; parsing, policy and views are pure functions in their own
modules, and this module only joins them to the database, the file store and
WebOb.  Every answer to bad input is a 4xx with a short explanation; an
unexpected failure is logged and answered with a bare 500, never a traceback.

``GET /v2/images/{id}`` is the call a cache filter in front of this app makes
(as a sub-request carrying the caller's context) to authorize a cache hit: it
costs one primary-key lookup and reflects visibility, ownership and status
exactly as a download would.
"""

from __future__ import annotations

import errno
import json
import logging
import urllib.parse
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, BinaryIO

import webob

from imagecache.config import Settings
from imagecache.http.context import RequestContext, get_context
from imagecache.images import parsing, policy, views
from imagecache.images.body import BodyError, body_chunks, read_body
from imagecache.images.db import ImageDB
from imagecache.images.download import file_response
from imagecache.images.listing import parse_list_params
from imagecache.images.model import Image, ImageData, canonical_id, new_id, unique_tags, utcnow
from imagecache.images.refusals import Refusal, bad_request, conflict, forbidden, not_found
from imagecache.images.routes import RouteTable
from imagecache.images.schemas import all_schemas, image_validator
from imagecache.images.store import ImageStore

LOG = logging.getLogger(__name__)

Handler = Callable[..., webob.Response]
StartResponse = Callable[..., Any]

#: Largest JSON request body accepted (create and patch documents are small).
MAX_JSON_BODY = 1 << 20
#: Status for deactivate/reactivate on an image in another status: Glance
#: answers 403 (its domain raises Forbidden for these transitions).
WRONG_STATUS_FOR_ACTION = 403
#: Query parameters the legacy v1 listing honours (``property-<name>`` too).
_V1_LIST_PARAMS = (
    "limit",
    "marker",
    "sort_key",
    "sort_dir",
    "name",
    "status",
    "container_format",
    "disk_format",
    "size_min",
    "size_max",
)
_OCTET_STREAM = "application/octet-stream"


def _json_response(document: Any, status: int = 200) -> webob.Response:
    body = json.dumps(document, ensure_ascii=False).encode("utf-8")
    return webob.Response(body=body, status=status, content_type="application/json", charset="UTF-8")


def _query_pairs(environ: dict[str, Any]) -> list[tuple[str, str]]:
    """Query parameters in order; undecodable bytes become U+FFFD rather than errors."""
    query = environ.get("QUERY_STRING", "")
    raw = query.encode("latin-1", "replace").decode("utf-8", "replace")
    return urllib.parse.parse_qsl(raw, keep_blank_values=True)


def _storage_refusal(error: OSError) -> Refusal:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return Refusal(413, "Image storage media is full.")
    return Refusal(503, "Image storage is unavailable.")


class ImagesApp:
    """The WSGI application; build it with :func:`imagecache.images.make_app`."""

    def __init__(self, settings: Settings, db: ImageDB, store: ImageStore) -> None:
        self.settings = settings
        self.db = db
        self.store = store
        self.validator = image_validator()
        self._base_attributes = frozenset(self.validator.schema["properties"])
        self._schema_bodies = {
            name: json.dumps(document).encode("utf-8") for name, document in all_schemas().items()
        }
        self.routes: RouteTable[Handler] = RouteTable(self._route_list())

    def _route_list(self) -> list[tuple[str, dict[str, Handler]]]:
        """Every route, in matching order (``/v1/images/detail`` before ``{image_id}``)."""
        schemas = [
            (f"/v2/schemas/{name}", {"GET": partial(self.schema, name=name)})
            for name in self._schema_bodies
        ]
        return [
            ("/", {"GET": partial(self.versions, explicit=False)}),
            ("/versions", {"GET": partial(self.versions, explicit=True)}),
            *schemas,
            ("/v2/images", {"GET": self.list_images, "POST": self.create_image}),
            (
                "/v2/images/{image_id}",
                {"GET": self.show_image, "PATCH": self.update_image, "DELETE": self.delete_image},
            ),
            ("/v2/images/{image_id}/file", {"GET": self.download, "PUT": self.upload}),
            (
                "/v2/images/{image_id}/tags/{tag}",
                {"PUT": partial(self.set_tag, present=True), "DELETE": partial(self.set_tag, present=False)},
            ),
            (
                "/v2/images/{image_id}/actions/deactivate",
                {"POST": partial(self.set_activation, action="deactivate")},
            ),
            (
                "/v2/images/{image_id}/actions/reactivate",
                {"POST": partial(self.set_activation, action="reactivate")},
            ),
            ("/v1/images", {"GET": partial(self.v1_list, detail=False)}),
            ("/v1/images/detail", {"GET": partial(self.v1_list, detail=True)}),
            (
                "/v1/images/{image_id}",
                {"GET": self.v1_download, "HEAD": self.v1_head, "DELETE": self.v1_delete},
            ),
        ]

    # -- WSGI --------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = webob.Request(environ)
        try:
            response = self.handle(request)
        except Exception:
            LOG.exception("unexpected failure in %s %s", request.method, environ.get("PATH_INFO"))
            response = Refusal(500, "The server could not complete the request.").response(request)
        app_iter: Iterable[bytes] = response(environ, start_response)
        return app_iter

    def handle(self, request: webob.Request) -> webob.Response:
        """Route ``request`` to its handler (404 and 405 answered here)."""
        match = self.routes.match(request.environ.get("PATH_INFO", ""), request.method)
        if match is None:
            return not_found("The resource could not be found.").response(request)
        if match.handler is None:
            allowed = ", ".join(match.allowed)
            return Refusal(405, f"Allowed methods: {allowed}.", (("Allow", allowed),)).response(request)
        return match.handler(request, **match.params)

    def lookup(self, context: RequestContext, image_id: str) -> Image | None:
        """The image ``context`` may see under ``image_id``, for in-process callers."""
        found = self._find(context, image_id)
        return None if isinstance(found, Refusal) else found

    def _find(self, context: RequestContext, image_id: str) -> Image | Refusal:
        canonical = canonical_id(image_id)
        if canonical is None:
            return not_found("No image found: image ids are UUIDs.")
        image = self.db.get(canonical)
        if image is None or not policy.may_see(context, image):
            return not_found(f"No image found with ID {canonical}")
        return image

    def _json_body(self, request: webob.Request) -> Any | Refusal:
        try:
            body = read_body(request.environ, MAX_JSON_BODY)
        except BodyError as error:
            return error.refusal()
        return parsing.load_json(body)

    def _valid_document(self, image: Image) -> Refusal | None:
        """Every image we store must render to a document our own schema accepts."""
        error = next(iter(self.validator.iter_errors(views.image_document(image))), None)
        if error is None:
            return None
        return bad_request(f"Provided object does not match schema 'image': {error.message[:200]}")

    # -- versions and schemas ----------------------------------------------------------

    def versions(self, request: webob.Request, explicit: bool) -> webob.Response:
        """300 Multiple Choices on ``/``, 200 on ``/versions``, as Glance answers."""
        return _json_response(views.versions_document(request.application_url), 200 if explicit else 300)

    def schema(self, request: webob.Request, name: str) -> webob.Response:
        return webob.Response(
            body=self._schema_bodies[name], content_type="application/json", charset="UTF-8"
        )

    # -- image metadata (v2) -----------------------------------------------------------

    def create_image(self, request: webob.Request) -> webob.Response:
        context = get_context(request.environ)
        if not policy.may_create(context):
            return forbidden("You are not authorized to complete add_image action.").response(request)
        document = self._json_body(request)
        if isinstance(document, Refusal):
            return document.response(request)
        parsed = parsing.parse_create(document, self.validator)
        if isinstance(parsed, Refusal):
            return parsed.response(request)
        image = self._new_image(context, parsed)
        if isinstance(image, Refusal):
            return image.response(request)
        if not self.db.insert(image):
            return conflict(f"Image with identifier {image.id} already exists!").response(request)
        response = _json_response(views.image_document(image), 201)
        response.location = views.image_path(image.id)
        return response

    def _new_image(self, context: RequestContext, parsed: parsing.NewImage) -> Image | Refusal:
        attributes = dict(parsed.attributes)
        owner = attributes.pop("owner", context.project_id)
        if "owner" in parsed.attributes and not policy.may_set_owner(context, owner):
            return forbidden("You are not permitted to create images owned by another project.")
        if not policy.may_set_visibility(context, attributes.get("visibility", "shared")):
            return forbidden("You are not authorized to complete publicize_image action.")
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
        return self._valid_document(image) or image

    def list_images(self, request: webob.Request) -> webob.Response:
        context = get_context(request.environ)
        pairs = _query_pairs(request.environ)
        query = parse_list_params(pairs)
        if isinstance(query, Refusal):
            return query.response(request)
        marker = None
        if query.marker is not None:
            marker = self.lookup(context, query.marker)
            if marker is None:
                return bad_request("The marker names no image you can see.").response(request)
        images, more = self.db.list(context, query, marker)
        kept = [(name, value) for name, value in pairs if name != "marker"]
        document: dict[str, Any] = {
            "images": [views.image_document(image) for image in images],
            "first": "/v2/images" + (f"?{urllib.parse.urlencode(kept)}" if kept else ""),
            "schema": "/v2/schemas/images",
        }
        if more and images:
            document["next"] = "/v2/images?" + urllib.parse.urlencode([*kept, ("marker", images[-1].id)])
        return _json_response(document)

    def show_image(self, request: webob.Request, image_id: str) -> webob.Response:
        found = self._find(get_context(request.environ), image_id)
        if isinstance(found, Refusal):
            return found.response(request)
        return _json_response(views.image_document(found))

    def update_image(self, request: webob.Request, image_id: str) -> webob.Response:
        if request.content_type not in parsing.PATCH_MEDIA_TYPES:
            return parsing.unsupported_patch_type().response(request)
        context = get_context(request.environ)
        found = self._find(context, image_id)
        if isinstance(found, Refusal):
            return found.response(request)
        if not policy.may_modify(context, found):
            return forbidden("You do not own this image.").response(request)
        document = self._json_body(request)
        if isinstance(document, Refusal):
            return document.response(request)
        changes = parsing.parse_patch(request.content_type, document, self.validator)
        if isinstance(changes, Refusal):
            return changes.response(request)

        def change(current: Image) -> Image | Refusal:
            if not policy.may_modify(context, current):
                return forbidden("You do not own this image.")
            updated = parsing.apply_changes(context, current, changes, self._base_attributes, utcnow())
            if isinstance(updated, Refusal):
                return updated
            return self._valid_document(updated) or updated

        result = self.db.modify(found.id, change)
        if result is None:
            return not_found(f"No image found with ID {found.id}").response(request)
        if isinstance(result, Refusal):
            return result.response(request)
        return _json_response(views.image_document(result))

    def delete_image(self, request: webob.Request, image_id: str) -> webob.Response:
        outcome = self._delete(request, image_id)
        if isinstance(outcome, Refusal):
            return outcome.response(request)
        return webob.Response(status=204)

    def _delete(self, request: webob.Request, image_id: str) -> Image | Refusal:
        context = get_context(request.environ)
        found = self._find(context, image_id)
        if isinstance(found, Refusal):
            return found

        def veto(current: Image) -> Refusal | None:
            if not policy.may_modify(context, current):
                return forbidden("You are not permitted to delete this image.")
            if current.protected:
                return forbidden(f"Image {current.id} is protected and cannot be deleted.")
            return None

        deleted = self.db.delete(found.id, veto)
        if deleted is None:
            return not_found(f"No image found with ID {found.id}")
        if isinstance(deleted, Refusal):
            return deleted
        self.store.delete(deleted.id)
        return deleted

    def set_activation(self, request: webob.Request, image_id: str, action: str) -> webob.Response:
        """``deactivate`` (active -> deactivated) or ``reactivate`` (the reverse); admins only."""
        context = get_context(request.environ)
        found = self._find(context, image_id)
        if isinstance(found, Refusal):
            return found.response(request)
        if not policy.may_change_activation(context):
            return forbidden(f"You are not authorized to complete {action} action.").response(request)
        source, target = ("active", "deactivated") if action == "deactivate" else ("deactivated", "active")

        def change(current: Image) -> Image | Refusal:
            if current.status == target:
                return current  # Glance: a no-op, still 204
            if current.status != source:
                return Refusal(
                    WRONG_STATUS_FOR_ACTION, f"Not allowed to {action} image in status '{current.status}'"
                )
            return current.evolve(status=target, updated_at=utcnow())

        result = self.db.modify(found.id, change)
        if result is None:
            return not_found(f"No image found with ID {found.id}").response(request)
        if isinstance(result, Refusal):
            return result.response(request)
        return webob.Response(status=204)

    def set_tag(self, request: webob.Request, image_id: str, tag: str, present: bool) -> webob.Response:
        """``PUT`` (add) or ``DELETE`` (remove) ``/v2/images/{id}/tags/{tag}``: 204."""
        try:
            value = tag.encode("latin-1").decode("utf-8")  # PATH_INFO carries UTF-8 bytes as latin-1
        except UnicodeError:
            return bad_request("Tags must be UTF-8 text.").response(request)
        invalid = parsing.tag_refusal(value, self.validator)
        if invalid:
            return invalid.response(request)
        context = get_context(request.environ)
        found = self._find(context, image_id)
        if isinstance(found, Refusal):
            return found.response(request)

        def change(current: Image) -> Image | Refusal:
            if not policy.may_modify(context, current):
                return forbidden(f"Not allowed to update tags for image {current.id}.")
            if present:
                tags = unique_tags((*current.tags, value))
            elif value in current.tags:
                tags = tuple(t for t in current.tags if t != value)
            else:
                return not_found(f"Tag {value[:255]} not found on image {current.id}.")
            return current if tags == current.tags else current.evolve(tags=tags, updated_at=utcnow())

        result = self.db.modify(found.id, change)
        if result is None:
            return not_found(f"No image found with ID {found.id}").response(request)
        if isinstance(result, Refusal):
            return result.response(request)
        return webob.Response(status=204)

    # -- image data (v2) ---------------------------------------------------------------

    def upload(self, request: webob.Request, image_id: str) -> webob.Response:
        """``PUT /v2/images/{id}/file``: queued -> saving -> active, 204."""
        if request.content_type != _OCTET_STREAM:
            shown = (request.content_type or "None")[:100]
            message = f"Content type {shown} is not supported; send {_OCTET_STREAM}."
            return Refusal(415, message).response(request)
        context = get_context(request.environ)
        found = self._find(context, image_id)
        if isinstance(found, Refusal):
            return found.response(request)
        if not policy.may_modify(context, found):
            return forbidden(f"Not allowed to upload image data for image {found.id}").response(request)
        expected = request.headers.get("x-openstack-image-size")
        if expected is not None and not (expected.isascii() and expected.strip().isdigit()):
            return bad_request("Invalid or missing image size in request headers.").response(request)

        started = self.db.modify(found.id, _start_saving)
        if started is None:
            return not_found(f"No image found with ID {found.id}").response(request)
        if isinstance(started, Refusal):
            return started.response(request)

        finished = False
        try:
            outcome = self._receive(request, started, None if expected is None else int(expected))
            if isinstance(outcome, Refusal):
                return outcome.response(request)
            finished = True
        finally:
            if not finished:
                self.db.modify(found.id, _back_to_queued)
        return webob.Response(status=204)

    def _receive(self, request: webob.Request, image: Image, expected: int | None) -> Image | Refusal:
        try:
            data = self.store.write(image.id, body_chunks(request.environ))
        except BodyError as error:
            return error.refusal()
        except OSError as error:
            LOG.error("storing data of image %s failed: %s", image.id, error)
            return _storage_refusal(error)
        if expected is not None and data.size != expected:
            self.store.delete(image.id)
            return bad_request(f"Image size mismatch: expected {expected} bytes, received {data.size}.")
        activated = self.db.modify(image.id, partial(_activate, data=data))
        if not isinstance(activated, Image):
            self.store.delete(image.id)
            return Refusal(
                410,
                f"Image {image.id} could not be found after upload. The image may have been "
                "deleted during the upload.",
            )
        return activated

    def download(self, request: webob.Request, image_id: str) -> webob.Response:
        """``GET /v2/images/{id}/file``: 200, 206 for a Range, 416, or 204 without data."""
        opened = self._open_data(request, image_id)
        if isinstance(opened, webob.Response):
            return opened
        image, verdict, file = opened
        if file is None:
            if verdict is policy.Download.ALLOWED:
                LOG.warning("image %s is %s but has no data file", image.id, image.status)
            return webob.Response(status=204)
        return file_response(request, image, file, [], content_md5=image.checksum)

    def _open_data(
        self, request: webob.Request, image_id: str
    ) -> tuple[Image, policy.Download, BinaryIO | None] | webob.Response:
        """What v1 and v2 downloads share: the visible image, the policy's verdict
        and its open data file (None when there is none to send), or the refusal
        (404 for an image the caller cannot see, 403 when deactivated)."""
        context = get_context(request.environ)
        found = self._find(context, image_id)
        if isinstance(found, Refusal):
            return found.response(request)
        verdict = policy.download(context, found)
        if verdict is policy.Download.DEACTIVATED:
            return forbidden(
                "The requested image has been deactivated. Image data download is forbidden."
            ).response(request)
        file = self.store.open(found.id) if verdict is policy.Download.ALLOWED else None
        return found, verdict, file

    # -- legacy v1 ---------------------------------------------------------------------

    def v1_list(self, request: webob.Request, detail: bool) -> webob.Response:
        """``GET /v1/images[/detail]``: the images the caller may list, v1-shaped."""
        context = get_context(request.environ)
        pairs = [
            (name.removeprefix("property-"), value)
            for name, value in _query_pairs(request.environ)
            if name in _V1_LIST_PARAMS or name.startswith("property-")
        ]
        query = parse_list_params(pairs)
        if isinstance(query, Refusal):
            return query.response(request)
        marker = self.lookup(context, query.marker) if query.marker is not None else None
        if query.marker is not None and marker is None:
            return bad_request("The marker names no image you can see.").response(request)
        images, _ = self.db.list(context, query, marker)
        brief = ("id", "name", "disk_format", "container_format", "size", "checksum")
        documents = [views.v1_document(image) for image in images]
        if not detail:
            documents = [{key: document[key] for key in brief} for document in documents]
        return _json_response({"images": documents})

    def v1_head(self, request: webob.Request, image_id: str) -> webob.Response:
        found = self._find(get_context(request.environ), image_id)
        if isinstance(found, Refusal):
            return found.response(request)
        response = webob.Response(headerlist=views.v1_headers(found))
        response.content_length = found.size if found.has_data and found.size is not None else 0
        return response

    def v1_download(self, request: webob.Request, image_id: str) -> webob.Response:
        opened = self._open_data(request, image_id)
        if isinstance(opened, webob.Response):
            return opened
        found, _, file = opened
        if file is None:
            return not_found(f"Image {found.id} is not active").response(request)
        return file_response(request, found, file, views.v1_headers(found))

    def v1_delete(self, request: webob.Request, image_id: str) -> webob.Response:
        """Legacy delete: 200 with an empty body, as Glance v1 answered."""
        outcome = self._delete(request, image_id)
        if isinstance(outcome, Refusal):
            return outcome.response(request)
        return webob.Response(status=200, body=b"")


# -- status transitions (pure; run inside ImageDB.modify) -------------------------------------


def _start_saving(image: Image) -> Image | Refusal:
    if image.status != "queued":
        return conflict(f"Image status transition from {image.status} to saving is not allowed")
    missing = [name for name in ("disk_format", "container_format") if not getattr(image, name)]
    if missing:
        noun = "Property" if len(missing) == 1 else "Properties"
        return bad_request(f"{noun} {', '.join(missing)} must be set prior to saving data.")
    return image.evolve(status="saving", updated_at=utcnow())


def _back_to_queued(image: Image) -> Image:
    """Undo :func:`_start_saving` after a failed upload, so the client may retry."""
    return image.evolve(status="queued", updated_at=utcnow()) if image.status == "saving" else image


def _activate(image: Image, data: ImageData) -> Image | Refusal:
    if image.status != "saving":
        return conflict(f"Image {image.id} left the saving status during the upload.")
    return image.with_data(data, utcnow())
