"""The JSON schemas the service publishes under ``/v2/schemas/...``.

python-glanceclient downloads the image, metadefs/namespace and
metadefs/resource_type schemas before its first command and builds (and
validates) its image models from the image schema, so every image document we
send must validate against :func:`image_schema`.  The documents follow
Glance's, property for property; custom properties are strings
(``additionalProperties: {"type": "string"}``), as in Glance.

Each function returns a fresh document: callers may keep or change it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from imagecache.images.model import CONTAINER_FORMATS, DISK_FORMATS, STATUSES, VISIBILITIES

JSON = dict[str, Any]

_UUID_PATTERN = (
    "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
)


def _string(description: str, *, nullable: bool = False, read_only: bool = False, **extra: Any) -> JSON:
    prop: JSON = {"type": ["null", "string"] if nullable else "string", "description": description}
    if read_only:
        prop["readOnly"] = True
    prop.update(extra)
    return prop


def image_properties() -> JSON:
    """The base (non-custom) attributes of an image, as Glance declares them."""
    return {
        "id": _string("An identifier for the image", pattern=_UUID_PATTERN),
        "name": _string("Descriptive name for the image", nullable=True, maxLength=255),
        "status": _string("Status of the image", read_only=True, enum=list(STATUSES)),
        "visibility": _string("Scope of image accessibility", enum=list(VISIBILITIES)),
        "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
        "os_hidden": {
            "type": "boolean",
            "description": "If true, image will not appear in default image list response.",
        },
        "checksum": _string("md5 hash of image contents.", nullable=True, read_only=True, maxLength=32),
        "os_hash_algo": _string(
            "Algorithm to calculate the os_hash_value", nullable=True, read_only=True, maxLength=64
        ),
        "os_hash_value": _string(
            "Hexdigest of the image contents using the algorithm specified by the os_hash_algo",
            nullable=True,
            read_only=True,
            maxLength=128,
        ),
        "owner": _string("Owner of the image", nullable=True, maxLength=255),
        "size": {
            "type": ["null", "integer"],
            "readOnly": True,
            "description": "Size of image file in bytes",
        },
        "virtual_size": {
            "type": ["null", "integer"],
            "readOnly": True,
            "description": "Virtual size of image in bytes",
        },
        "container_format": {
            "type": ["null", "string"],
            "description": "Format of the container",
            "enum": [None, *CONTAINER_FORMATS],
        },
        "disk_format": {
            "type": ["null", "string"],
            "description": "Format of the disk",
            "enum": [None, *DISK_FORMATS],
        },
        "created_at": _string("Date and time of image registration", read_only=True),
        "updated_at": _string("Date and time of the last image modification", read_only=True),
        "tags": {
            "type": "array",
            "description": "List of strings related to the image",
            "items": {"type": "string", "maxLength": 255},
        },
        "direct_url": _string(
            "URL to access the image file kept in external store", read_only=True
        ),
        "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
        "min_disk": {
            "type": "integer",
            "description": "Amount of disk space (in GB) required to boot image.",
        },
        "self": _string("An image self url", read_only=True),
        "file": _string("An image file url", read_only=True),
        "stores": _string(
            "Store in which image data resides.  Only present when the operator has enabled "
            "multiple stores.  May be a comma-separated list of store identifiers.",
            read_only=True,
        ),
        "schema": _string("An image schema url", read_only=True),
        "locations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "url": {"type": "string", "maxLength": 255},
                    "metadata": {"type": "object"},
                },
                "required": ["url", "metadata"],
            },
            "description": "A set of URLs to access the image file kept in external store",
        },
    }


def image_schema() -> JSON:
    """``GET /v2/schemas/image``: Glance's permissive image schema."""
    return {
        "name": "image",
        "properties": image_properties(),
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def _collection(name: str, item: JSON, definitions: JSON | None = None) -> JSON:
    document: JSON = {
        "name": name,
        "properties": {
            name: {"type": "array", "items": item},
            "first": {"type": "string"},
            "next": {"type": "string"},
            "schema": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }
    if definitions:
        document["definitions"] = definitions
    return document


def images_schema() -> JSON:
    """``GET /v2/schemas/images``: a page of images."""
    return _collection("images", image_schema())


def _metadef_definitions() -> JSON:
    type_enum = ["array", "boolean", "integer", "number", "object", "string", None]
    return {
        "positiveInteger": {"type": "integer", "minimum": 0},
        "positiveIntegerDefault0": {
            "allOf": [{"$ref": "#/definitions/positiveInteger"}, {"default": 0}]
        },
        "stringArray": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "property": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["title", "type"],
                "properties": {
                    "name": {"type": "string", "maxLength": 80},
                    "title": {"type": "string"},
                    "description": {"type": "string"},
                    "operators": {"type": "array", "items": {"type": "string"}},
                    "type": {"type": "string", "enum": type_enum},
                    "required": {"$ref": "#/definitions/stringArray"},
                    "minimum": {"type": "number"},
                    "maximum": {"type": "number"},
                    "maxLength": {"$ref": "#/definitions/positiveInteger"},
                    "minLength": {"$ref": "#/definitions/positiveIntegerDefault0"},
                    "pattern": {"type": "string", "format": "regex"},
                    "enum": {"type": "array"},
                    "readonly": {"type": "boolean"},
                    "default": {},
                    "items": {
                        "type": "object",
                        "properties": {
                            "type": {"type": "string", "enum": type_enum},
                            "enum": {"type": "array"},
                        },
                    },
                    "maxItems": {"$ref": "#/definitions/positiveInteger"},
                    "minItems": {"$ref": "#/definitions/positiveIntegerDefault0"},
                    "uniqueItems": {"type": "boolean", "default": False},
                    "additionalItems": {"type": "boolean"},
                },
            },
        },
    }


def metadef_namespace_schema() -> JSON:
    """``GET /v2/schemas/metadefs/namespace`` (we serve no namespaces, only the schema)."""
    timestamp = {"type": "string", "readOnly": True, "format": "date-time"}
    return {
        "name": "namespace",
        "properties": {
            "namespace": {
                "type": "string",
                "description": "The unique namespace text.",
                "maxLength": 80,
            },
            "display_name": {
                "type": "string",
                "description": "The user friendly name for the namespace. Used by UI if available.",
                "maxLength": 80,
            },
            "description": {
                "type": "string",
                "description": "Provides a user friendly description of the namespace.",
                "maxLength": 500,
            },
            "visibility": {
                "type": "string",
                "description": "Scope of namespace accessibility.",
                "enum": ["public", "private"],
            },
            "protected": {
                "type": "boolean",
                "description": "If true, namespace will not be deletable.",
            },
            "owner": {"type": "string", "description": "Owner of the namespace.", "maxLength": 255},
            "created_at": {**timestamp, "description": "Date and time of namespace creation."},
            "updated_at": {
                **timestamp,
                "description": "Date and time of the last namespace modification.",
            },
            "schema": {"type": "string", "readOnly": True},
            "self": {"type": "string", "readOnly": True},
            "resource_type_associations": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "prefix": {"type": "string"},
                        "properties_target": {"type": "string"},
                    },
                },
            },
            "properties": {"$ref": "#/definitions/property"},
            "objects": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "description": {"type": "string"},
                        "required": {"$ref": "#/definitions/stringArray"},
                        "properties": {"$ref": "#/definitions/property"},
                    },
                },
            },
            "tags": {
                "type": "array",
                "items": {"type": "object", "properties": {"name": {"type": "string"}}},
            },
        },
        "additionalProperties": False,
        "required": ["namespace"],
        "definitions": _metadef_definitions(),
    }


def metadef_resource_type_schema() -> JSON:
    """``GET /v2/schemas/metadefs/resource_type``."""
    timestamp = {"type": "string", "readOnly": True, "format": "date-time"}
    return {
        "name": "resource_type_association",
        "properties": {
            "name": {
                "type": "string",
                "description": "Resource type names should be aligned with Heat resource types "
                "whenever possible.",
                "maxLength": 80,
            },
            "prefix": {
                "type": "string",
                "description": "Specifies the prefix to use for the given resource type. Any "
                "properties in the namespace should be prefixed with this prefix when being "
                "applied to the specified resource type. Must include prefix separator "
                "(e.g. a colon :).",
                "maxLength": 80,
            },
            "properties_target": {
                "type": "string",
                "description": "Some resource types allow more than one key / value pair per "
                "instance.  This property allows a namespace target to remove the ambiguity.",
                "maxLength": 80,
            },
            "created_at": {**timestamp, "description": "Date and time of resource type association."},
            "updated_at": {
                **timestamp,
                "description": "Date and time of the last resource type association modification.",
            },
        },
        "additionalProperties": False,
        "required": ["name"],
    }


def all_schemas() -> dict[str, JSON]:
    """Every published schema by its path below ``/v2/schemas/``."""
    return {
        "image": image_schema(),
        "images": images_schema(),
        "metadefs/namespace": metadef_namespace_schema(),
        "metadefs/resource_type": metadef_resource_type_schema(),
    }


def image_validator() -> Validator:
    """A validator for image documents, with the draft Glance's ``jsonschema.validate`` picks."""
    schema = image_schema()
    return validator_for(schema)(schema)


def base_attributes(validator: Validator) -> frozenset[str]:
    """The attributes ``validator``'s schema declares; every other name is a custom property."""
    schema = validator.schema
    properties = schema.get("properties", {}) if isinstance(schema, Mapping) else {}
    return frozenset(properties)
