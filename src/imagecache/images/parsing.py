"""Request bodies to validated values, and changes to images, without I/O.

Status codes and messages follow Glance's: malformed or ill-typed input is
400, naming a read-only or reserved attribute is 403, changing a custom
property that does not exist is 409.  Nothing here raises on bad input.
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


def load_json(body: bytes) -> Any | Refusal:
    """The JSON document in ``body``, or 400 (Glance's wording)."""
    if not body.strip():
        return bad_request("Body expected in request.")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return bad_request("Malformed JSON in request body.")
    if _has_bad_text(document):
        return bad_request("Malformed JSON in request body.")
    return document


def _schema_refusal(validator: Validator, document: Mapping[str, Any]) -> Refusal | None:
    try:
        error = best_match(validator.iter_errors(document))
    except RecursionError:
        return bad_request("Provided object does not match schema 'image'.")
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path)
    detail = error.message
    if len(detail) > _ERROR_DETAIL_LIMIT:
        detail = detail[: _ERROR_DETAIL_LIMIT - 3] + "..."
    prefix = f"'{where}': " if where else ""
    return bad_request(f"Provided object does not match schema 'image': {prefix}{detail}")


def _integer_refusal(name: str, value: Any) -> Refusal | None:
    if value is None:
        return None
    if value < 0:
        return bad_request(f"Invalid value '{value}' for parameter '{name}': Cannot be a negative value")
    if value > MAX_DB_INT:
        return bad_request(f"'{name}' value out of range, must not exceed {MAX_DB_INT}.")
    return None


def _property_name_refusal(name: str) -> Refusal | None:
    if not name:
        return bad_request("Property names must not be empty.")
    if len(name) > _MAX_PROPERTY_NAME:
        return bad_request("Custom property should not be greater than 255 characters.")
    if is_reserved_name(name):
        return forbidden(f"Attribute '{name}' is reserved.")
    return None


def parse_create(document: Any, validator: Validator) -> NewImage | Refusal:
    """Validate a ``POST /v2/images`` document (already JSON-decoded)."""
    if not isinstance(document, dict):
        return bad_request("Request body must be a JSON object.")
    for name in _NEVER_SENT:
        if name in document:
            return forbidden(f"Attribute '{name}' is read-only.")
    refusal = _schema_refusal(validator, document)
    if refusal:
        return refusal
    for name in READ_ONLY:
        if name != "id" and name in document:
            return forbidden(f"Attribute '{name}' is read-only.")
    base = set(validator.schema["properties"])
    properties = {k: v for k, v in document.items() if k not in base}
    for name in properties:
        refusal = _property_name_refusal(name)
        if refusal:
            return refusal
    attributes = {k: v for k, v in document.items() if k in base and k not in ("id", "tags")}
    for name in ("min_ram", "min_disk"):
        if name in attributes:
            attributes[name] = int(attributes[name])
            refusal = _integer_refusal(name, attributes[name])
            if refusal:
                return refusal
    if "locations" in attributes:
        return forbidden("Attribute 'locations' is reserved.")
    image_id = None
    if "id" in document:
        image_id = canonical_id(document["id"])
        if image_id is None:
            return bad_request("Image id must be a UUID.")
    return NewImage(
        id=image_id,
        attributes=attributes,
        tags=unique_tags(document.get("tags", [])),
        properties=properties,
    )


def tag_refusal(tag: str, validator: Validator) -> Refusal | None:
    """400 unless ``tag`` is a valid tag (``PUT /v2/images/{id}/tags/{tag}``)."""
    return _schema_refusal(validator, {"tags": [tag]})


# -- JSON patch ------------------------------------------------------------------------


def _pointer_refusal(pointer: str) -> Refusal | None:
    """Glance's restricted JSON pointer rules."""
    if not pointer.startswith("/"):
        return bad_request(f'Pointer `{pointer}` does not start with "/".')
    if re.search(r"/\s*?/", pointer[1:]):
        return bad_request(f'Pointer `{pointer}` contains adjacent "/".')
    if len(pointer) > 1 and pointer.endswith("/"):
        return bad_request(f'Pointer `{pointer}` end with "/".')
    if pointer[1:].strip() == "/":
        return bad_request(f"Pointer `{pointer}` does not contains valid token.")
    if re.search("~[^01]", pointer) or pointer.endswith("~"):
        return bad_request(f'Pointer `{pointer}` contains "~" not part of a recognized escape sequence.')
    return None


def _decode_pointer(pointer: str) -> list[str]:
    return [part.replace("~1", "/").replace("~0", "~").strip() for part in pointer.lstrip("/").split("/")]


def _operation(raw: dict[str, Any], draft: int) -> tuple[str, Any] | Refusal:
    """(op, raw path) of one operation object in either draft's style."""
    if draft == 10:
        op = raw.get("op")
        if op not in OPERATIONS:
            return bad_request(
                f"Invalid operation: `{op}`. It must be one of the following: {', '.join(OPERATIONS)}."
            )
        if "path" not in raw:
            return bad_request("Unable to find 'path' in JSON Schema change")
        return op, raw["path"]
    named = [key for key in OPERATIONS if key in raw]
    if len(named) != 1:
        return bad_request(
            'Operation objects must contain exactly one member named "add", "remove", or "replace".'
        )
    return named[0], raw[named[0]]


def _parse_change(raw: Any, draft: int, validator: Validator) -> Change | Refusal:
    if not isinstance(raw, dict):
        return bad_request("Operations must be JSON objects.")
    parsed = _operation(raw, draft)
    if isinstance(parsed, Refusal):
        return parsed
    op, pointer = parsed
    if not isinstance(pointer, str):
        return bad_request("JSON pointers must be strings.")
    refusal = _pointer_refusal(pointer)
    if refusal:
        return refusal
    path = _decode_pointer(pointer)
    name = path[0]
    if name in ("locations", "location"):
        return forbidden("Image locations are not supported by this service.")
    if len(path) != 1:
        return bad_request(f"Invalid JSON pointer for this resource: '/{'/'.join(path)}'")
    if op != "remove" and "value" not in raw:
        return bad_request(f'Operation "{op}" requires a member named "value".')
    if name in READ_ONLY:
        return forbidden(f"Attribute '{name}' is read-only.")
    refusal = _property_name_refusal(name)
    if refusal:
        return refusal
    if op == "remove":
        return Change(op, name, draft=draft)
    value = raw["value"]
    refusal = _schema_refusal(validator, {name: value})
    if refusal:
        return refusal
    return Change(op, name, value, draft)


def parse_patch(content_type: str, document: Any, validator: Validator) -> list[Change] | Refusal:
    """Validate a ``PATCH /v2/images/{id}`` body (already JSON-decoded)."""
    draft = PATCH_MEDIA_TYPES.get(content_type)
    if draft is None:  # checked by the caller before reading the body; kept for safety
        return unsupported_patch_type()
    if not isinstance(document, list):
        return bad_request("Request body must be a JSON array of operation objects.")
    changes: list[Change] = []
    for raw in document:
        change = _parse_change(raw, draft, validator)
        if isinstance(change, Refusal):
            return change
        changes.append(change)
    return changes


def unsupported_patch_type() -> Refusal:
    allowed = ", ".join(sorted(PATCH_MEDIA_TYPES))
    return Refusal(
        415,
        f"Image PATCH expects Content-Type one of: {allowed}",
        (("Accept-Patch", allowed),),
    )


# -- applying changes ------------------------------------------------------------------

_FORMAT_ATTRIBUTES = ("container_format", "disk_format")


def _set_base(context: RequestContext, image: Image, name: str, value: Any) -> Image | Refusal:
    if name == "visibility" and not policy.may_set_visibility(context, value):
        return forbidden("You are not authorized to make images public.")
    if name == "owner" and not context.is_admin:
        return forbidden("Owner can't be updated by non admin.")
    changes_format = name in _FORMAT_ATTRIBUTES and value != getattr(image, name)
    if changes_format and image.status not in ("queued", "importing"):
        return forbidden(f"Attribute {name} can be only replaced for a queued image.")
    if name in ("min_ram", "min_disk"):
        value = int(value)
        refusal = _integer_refusal(name, value)
        if refusal:
            return refusal
    if name == "tags":
        value = unique_tags(value)
    return image.evolve(**{name: value})


def apply_changes(
    context: RequestContext,
    image: Image,
    changes: list[Change],
    base: frozenset[str],
    now: datetime,
) -> Image | Refusal:
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
                return forbidden(f"Property {change.name} may not be removed.")
            if change.name not in properties:
                return conflict(f"Property {change.name} does not exist.")
            del properties[change.name]
            result = result.evolve(properties=properties)
            continue
        if change.op == "add" and change.draft == 4 and (is_base or change.name in properties):
            return conflict(f"Property {change.name} already present.")
        if is_base:
            updated = _set_base(context, result, change.name, change.value)
            if isinstance(updated, Refusal):
                return updated
            result = updated
            continue
        if change.op == "replace" and change.name not in properties:
            return conflict(f"Property {change.name} does not exist.")
        properties[change.name] = change.value
        result = result.evolve(properties=properties)
    if result == image:
        return image
    return result.evolve(updated_at=now)
