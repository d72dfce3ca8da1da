"""Request bodies to validated values, and changes to images, without I/O.

Status codes and messages follow Glance's: malformed or ill-typed input is
400, naming a read-only or reserved attribute is 403, changing a custom
property that does not exist is 409.  Bad input raises a
:class:`~imagecache.images.refusals.Refusal` at the first check it fails.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator

from imagecache.http.context import RequestContext
from imagecache.images import policy
from imagecache.images.model import (
    MAX_DB_INT,
    READ_ONLY,
    Image,
    canonical_id,
    is_reserved_name,
    unique_tags,
)
from imagecache.images.refusals import Refusal, bad_request, conflict, forbidden
from imagecache.images.schemas import base_attributes

#: JSON patch media types and the JSON-schema draft style of their operations.
PATCH_MEDIA_TYPES = {
    "application/openstack-images-v2.0-json-patch": 4,
    "application/openstack-images-v2.1-json-patch": 10,
}
OPERATIONS = ("add", "remove", "replace")

#: Attributes that may never be sent, even on create (Glance's "disallowed").
_NEVER_SENT = ("direct_url", "self", "file", "schema", "stores")
_MAX_PROPERTY_NAME = 255
_ERROR_DETAIL_LIMIT = 200


@dataclass(frozen=True)
class NewImage:
    """A validated ``POST /v2/images`` body."""

    id: str | None
    attributes: Mapping[str, Any]
    tags: tuple[str, ...]
    properties: Mapping[str, str]


@dataclass(frozen=True)
class Change:
    """One validated json-patch operation on a top-level attribute."""

    op: str
    name: str
    value: Any = None
    draft: int = 10


def _has_bad_text(value: Any, depth: int = 0) -> bool:
    """True for strings that cannot be stored as UTF-8 (lone surrogates) or deep nesting."""
    if depth > 32:
        return True
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_bad_text(k, depth + 1) or _has_bad_text(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_bad_text(item, depth + 1) for item in value)
    return False


def load_json(body: bytes) -> Any:
    """The JSON document in ``body``; 400 (Glance's wording) when there is none."""
    if not body.strip():
        raise bad_request("Body expected in request.")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise bad_request("Malformed JSON in request body.") from None
    if _has_bad_text(document):
        raise bad_request("Malformed JSON in request body.")
    return document


def _check_schema(validator: Validator, document: Mapping[str, Any]) -> None:
    try:
        error = best_match(validator.iter_errors(document))
    except RecursionError:
        raise bad_request("Provided object does not match schema 'image'.") from None
    if error is None:
        return
    where = "/".join(str(part) for part in error.absolute_path)
    detail = error.message
    if len(detail) > _ERROR_DETAIL_LIMIT:
        detail = detail[: _ERROR_DETAIL_LIMIT - 3] + "..."
    prefix = f"'{where}': " if where else ""
    raise bad_request(f"Provided object does not match schema 'image': {prefix}{detail}")


def _check_integer(name: str, value: Any) -> None:
    if value is None:
        return
    if value < 0:
        raise bad_request(f"Invalid value '{value}' for parameter '{name}': Cannot be a negative value")
    if value > MAX_DB_INT:
        raise bad_request(f"'{name}' value out of range, must not exceed {MAX_DB_INT}.")


def _check_property_name(name: str) -> None:
    if not name:
        raise bad_request("Property names must not be empty.")
    if len(name) > _MAX_PROPERTY_NAME:
        raise bad_request("Custom property should not be greater than 255 characters.")
    if is_reserved_name(name):
        raise forbidden(f"Attribute '{name}' is reserved.")


def parse_create(document: Any, validator: Validator) -> NewImage:
    """Validate a ``POST /v2/images`` document (already JSON-decoded)."""
    if not isinstance(document, dict):
        raise bad_request("Request body must be a JSON object.")
    for name in _NEVER_SENT:
        if name in document:
            raise forbidden(f"Attribute '{name}' is read-only.")
    _check_schema(validator, document)
    for name in READ_ONLY:
        if name != "id" and name in document:
            raise forbidden(f"Attribute '{name}' is read-only.")
    base = base_attributes(validator)
    properties = {k: v for k, v in document.items() if k not in base}
    for name in properties:
        _check_property_name(name)
    attributes = {k: v for k, v in document.items() if k in base and k not in ("id", "tags")}
    for name in ("min_ram", "min_disk"):
        if name in attributes:
            attributes[name] = int(attributes[name])
            _check_integer(name, attributes[name])
    if "locations" in attributes:
        raise forbidden("Attribute 'locations' is reserved.")
    image_id = None
    if "id" in document:
        image_id = canonical_id(document["id"])
        if image_id is None:
            raise bad_request("Image id must be a UUID.")
    return NewImage(
        id=image_id,
        attributes=attributes,
        tags=unique_tags(document.get("tags", [])),
        properties=properties,
    )


def check_tag(tag: str, validator: Validator) -> None:
    """400 unless ``tag`` is a valid tag (``PUT /v2/images/{id}/tags/{tag}``)."""
    _check_schema(validator, {"tags": [tag]})


# -- JSON patch ------------------------------------------------------------------------


def _check_pointer(pointer: str) -> None:
    """Glance's restricted JSON pointer rules."""
    if not pointer.startswith("/"):
        raise bad_request(f'Pointer `{pointer}` does not start with "/".')
    if re.search(r"/\s*?/", pointer[1:]):
        raise bad_request(f'Pointer `{pointer}` contains adjacent "/".')
    if len(pointer) > 1 and pointer.endswith("/"):
        raise bad_request(f'Pointer `{pointer}` end with "/".')
    if pointer[1:].strip() == "/":
        raise bad_request(f"Pointer `{pointer}` does not contains valid token.")
    if re.search("~[^01]", pointer) or pointer.endswith("~"):
        raise bad_request(f'Pointer `{pointer}` contains "~" not part of a recognized escape sequence.')


def _decode_pointer(pointer: str) -> list[str]:
    return [part.replace("~1", "/").replace("~0", "~").strip() for part in pointer.lstrip("/").split("/")]


def _operation(raw: dict[str, Any], draft: int) -> tuple[str, Any]:
    """(op, raw path) of one operation object in either draft's style."""
    if draft == 10:
        op = raw.get("op")
        if op not in OPERATIONS:
            raise bad_request(
                f"Invalid operation: `{op}`. It must be one of the following: {', '.join(OPERATIONS)}."
            )
        if "path" not in raw:
            raise bad_request("Unable to find 'path' in JSON Schema change")
        return op, raw["path"]
    named = [key for key in OPERATIONS if key in raw]
    if len(named) != 1:
        raise bad_request(
            'Operation objects must contain exactly one member named "add", "remove", or "replace".'
        )
    return named[0], raw[named[0]]


def _parse_change(raw: Any, draft: int, validator: Validator) -> Change:
    if not isinstance(raw, dict):
        raise bad_request("Operations must be JSON objects.")
    op, pointer = _operation(raw, draft)
    if not isinstance(pointer, str):
        raise bad_request("JSON pointers must be strings.")
    _check_pointer(pointer)
    path = _decode_pointer(pointer)
    name = path[0]
    if name in ("locations", "location"):
        raise forbidden("Image locations are not supported by this service.")
    if len(path) != 1:
        raise bad_request(f"Invalid JSON pointer for this resource: '/{'/'.join(path)}'")
    if op != "remove" and "value" not in raw:
        raise bad_request(f'Operation "{op}" requires a member named "value".')
    if name in READ_ONLY:
        raise forbidden(f"Attribute '{name}' is read-only.")
    _check_property_name(name)
    if op == "remove":
        return Change(op, name, draft=draft)
    value = raw["value"]
    _check_schema(validator, {name: value})
    return Change(op, name, value, draft)


def parse_patch(content_type: str, document: Any, validator: Validator) -> list[Change]:
    """Validate a ``PATCH /v2/images/{id}`` body (already JSON-decoded)."""
    draft = PATCH_MEDIA_TYPES.get(content_type)
    if draft is None:  # checked by the caller before reading the body; kept for safety
        raise unsupported_patch_type()
    if not isinstance(document, list):
        raise bad_request("Request body must be a JSON array of operation objects.")
    return [_parse_change(raw, draft, validator) for raw in document]


def unsupported_patch_type() -> Refusal:
    """415 naming the patch media types we accept (also in ``Accept-Patch``)."""
    allowed = ", ".join(sorted(PATCH_MEDIA_TYPES))
    return Refusal(
        415,
        f"Image PATCH expects Content-Type one of: {allowed}",
        (("Accept-Patch", allowed),),
    )


# -- applying changes ------------------------------------------------------------------

_FORMAT_ATTRIBUTES = ("container_format", "disk_format")


def _set_base(context: RequestContext, image: Image, name: str, value: Any) -> Image:
    if name == "visibility" and not policy.may_set_visibility(context, value):
        raise forbidden("You are not authorized to make images public.")
    if name == "owner" and not context.is_admin:
        raise forbidden("Owner can't be updated by non admin.")
    changes_format = name in _FORMAT_ATTRIBUTES and value != getattr(image, name)
    if changes_format and image.status not in ("queued", "importing"):
        raise forbidden(f"Attribute {name} can be only replaced for a queued image.")
    if name in ("min_ram", "min_disk"):
        value = int(value)
        _check_integer(name, value)
    if name == "tags":
        value = unique_tags(value)
    return image.evolve(**{name: value})


def apply_changes(
    context: RequestContext,
    image: Image,
    changes: list[Change],
    base: frozenset[str],
    now: datetime,
) -> Image:
    """``image`` with ``changes`` applied, as Glance's PATCH semantics say.

    ``base`` names the schema's base attributes; every other name is a custom
    property.  The caller has already checked that ``context`` may modify the
    image at all.
    """
    result = image
    for change in changes:
        is_base = change.name in base
        properties = dict(result.properties)
        if change.op == "remove":
            if is_base:
                raise forbidden(f"Property {change.name} may not be removed.")
            if change.name not in properties:
                raise conflict(f"Property {change.name} does not exist.")
            del properties[change.name]
            result = result.evolve(properties=properties)
            continue
        if change.op == "add" and change.draft == 4 and (is_base or change.name in properties):
            raise conflict(f"Property {change.name} already present.")
        if is_base:
            result = _set_base(context, result, change.name, change.value)
            continue
        if change.op == "replace" and change.name not in properties:
            raise conflict(f"Property {change.name} does not exist.")
        properties[change.name] = change.value
        result = result.evolve(properties=properties)
    if result == image:
        return image
    return result.evolve(updated_at=now)
