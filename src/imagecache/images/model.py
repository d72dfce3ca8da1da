"""The image record and the vocabulary of the image API (Glance v2's).

Pure data: no I/O, no HTTP.  The names, statuses and formats are Glance's so
that clients (python-glanceclient, nova) see what they expect.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from imagecache.cache.layout import is_image_id

STATUSES = (
    "queued",
    "saving",
    "active",
    "killed",
    "deleted",
    "uploading",
    "importing",
    "pending_delete",
    "deactivated",
)
VISIBILITIES = ("community", "public", "private", "shared")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")

#: Statuses in which the image has data on disk that may be served.
WITH_DATA = ("active", "deactivated")

#: Attributes a client may set when creating an image (besides custom properties).
WRITABLE = (
    "name",
    "visibility",
    "protected",
    "os_hidden",
    "owner",
    "container_format",
    "disk_format",
    "min_ram",
    "min_disk",
    "tags",
)
#: Attributes only the service sets: naming them is refused with 403.
READ_ONLY = (
    "id",
    "status",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "size",
    "virtual_size",
    "created_at",
    "updated_at",
    "direct_url",
    "self",
    "file",
    "schema",
    "stores",
)
#: Names that are neither base attributes nor allowed as custom properties.
RESERVED = ("location", "locations", "deleted", "deleted_at")
RESERVED_PREFIX = "os_glance"

#: Upper bound Glance keeps for min_ram/min_disk (a 4-byte database INT).
MAX_DB_INT = 2**31 - 1


def canonical_id(text: str) -> str | None:
    """The lower-case dashed UUID form of ``text``, or None if it is not one.

    The cache's own rule (:func:`imagecache.cache.layout.is_image_id`): only
    the 8-4-4-4-12 form is accepted, so an id can never carry a path
    separator, a dot or a NUL, and an image's id is the name the cache files
    its bytes under.
    """
    lowered = text.lower()
    return lowered if is_image_id(lowered) else None


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


def isotime(moment: datetime) -> str:
    """Glance's timestamp format: seconds, UTC, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_reserved_name(name: str) -> bool:
    return name in RESERVED or name.startswith(RESERVED_PREFIX)


@dataclass(frozen=True)
class ImageData:
    """What the store learned while writing an image's bytes."""

    size: int
    checksum: str
    os_hash_algo: str
    os_hash_value: str


@dataclass(frozen=True)
class Image:
    """One image's metadata, as kept in the database."""

    id: str
    owner: str | None
    created_at: datetime
    updated_at: datetime
    name: str | None = None
    status: str = "queued"
    visibility: str = "shared"
    protected: bool = False
    os_hidden: bool = False
    checksum: str | None = None
    os_hash_algo: str | None = None
    os_hash_value: str | None = None
    size: int | None = None
    virtual_size: int | None = None
    min_ram: int = 0
    min_disk: int = 0
    container_format: str | None = None
    disk_format: str | None = None
    tags: tuple[str, ...] = ()
    properties: Mapping[str, str] = field(default_factory=dict)

    @property
    def has_data(self) -> bool:
        return self.status in WITH_DATA

    def evolve(self, **changes: Any) -> Image:
        """A copy with ``changes`` applied (the record itself never changes)."""
        return dataclasses.replace(self, **changes)

    def with_data(self, data: ImageData, now: datetime) -> Image:
        return self.evolve(
            status="active",
            size=data.size,
            checksum=data.checksum,
            os_hash_algo=data.os_hash_algo,
            os_hash_value=data.os_hash_value,
            updated_at=now,
        )


def unique_tags(tags: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Tags are a set in Glance; we keep the first occurrence's order."""
    return tuple(dict.fromkeys(tags))
