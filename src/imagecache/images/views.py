"""How images and versions look on the wire (Glance v2 and legacy v1), without I/O."""

from __future__ import annotations

import re
from typing import Any

from imagecache.images.model import Image, isotime

#: Every v2 minor version we advertise; the last is CURRENT.  glanceclient
#: needs 2.14 listed for its cache commands and 2.18 for cache clean/prune.
API_VERSIONS = tuple(f"2.{minor}" for minor in range(19))


def versions_document(application_url: str) -> dict[str, Any]:
    """``GET /versions``: every version links to ``<host>/v2/``, newest first."""
    href = application_url.rstrip("/") + "/v2/"
    current = API_VERSIONS[-1]
    return {
        "versions": [
            {
                "id": f"v{version}",
                "status": "CURRENT" if version == current else "SUPPORTED",
                "links": [{"rel": "self", "href": href}],
            }
            for version in reversed(API_VERSIONS)
        ]
    }


def image_path(image_id: str) -> str:
    return f"/v2/images/{image_id}"


def image_document(image: Image) -> dict[str, Any]:
    """An image as Glance v2 shows it: custom properties at the top level."""
    document: dict[str, Any] = dict(image.properties)
    document.update(
        id=image.id,
        name=image.name,
        status=image.status,
        visibility=image.visibility,
        protected=image.protected,
        os_hidden=image.os_hidden,
        checksum=image.checksum,
        os_hash_algo=image.os_hash_algo,
        os_hash_value=image.os_hash_value,
        owner=image.owner,
        size=image.size,
        virtual_size=image.virtual_size,
        min_ram=image.min_ram,
        min_disk=image.min_disk,
        container_format=image.container_format,
        disk_format=image.disk_format,
        created_at=isotime(image.created_at),
        updated_at=isotime(image.updated_at),
        tags=list(image.tags),
        self=image_path(image.id),
        file=image_path(image.id) + "/file",
        schema="/v2/schemas/image",
    )
    return document


def _v1_facts(image: Image) -> list[tuple[str, object]]:
    """What the legacy v1 API said of an image, in its order (listings and headers alike)."""
    return [
        ("id", image.id),
        ("name", image.name),
        ("size", image.size),
        ("checksum", image.checksum),
        ("status", image.status),
        ("disk_format", image.disk_format),
        ("container_format", image.container_format),
        ("is_public", image.visibility == "public"),
        ("owner", image.owner),
        ("protected", image.protected),
        ("min_disk", image.min_disk),
        ("min_ram", image.min_ram),
        ("created_at", isotime(image.created_at)),
        ("updated_at", isotime(image.updated_at)),
    ]


def v1_document(image: Image) -> dict[str, Any]:
    """An image as the legacy v1 API listed it (``is_public``, ``properties``)."""
    return {
        **dict(_v1_facts(image)),
        "deleted_at": None,
        "deleted": False,
        "properties": dict(image.properties),
    }


_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _header_value(value: object) -> str:
    """A header-safe rendering: UTF-8 bytes carried as latin-1 (as WSGI needs),
    control characters (CR, LF, ...) replaced so nothing can split a header."""
    text = _CONTROL.sub(" ", str(value))
    return text.encode("utf-8").decode("latin-1")


def v1_headers(image: Image) -> list[tuple[str, str]]:
    """``x-image-meta-*`` headers of the legacy v1 API.

    Values that are None are left out and booleans read ``True``/``False``,
    as Glance v1 sent them.  Custom properties whose names cannot be header
    names are left out.
    """
    meta = [*_v1_facts(image), ("deleted", False)]
    headers = [(f"x-image-meta-{key}", _header_value(value)) for key, value in meta if value is not None]
    headers.extend(
        (f"x-image-meta-property-{key}", _header_value(value))
        for key, value in image.properties.items()
        if _HEADER_NAME.fullmatch(key)
    )
    return headers
