"""The facts a fill is checked against, and what it computed (the check itself: :mod:`.verify_plan`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: Algorithms Glance's os_hash_algo may name that hashlib computes.
SUPPORTED_HASH_ALGOS = frozenset({"md5", "sha1", "sha224", "sha256", "sha384", "sha512"})


@dataclass(frozen=True)
class Expected:
    """What the image's metadata says its bytes are; None means "unknown"."""

    checksum: str | None = None
    os_hash_algo: str | None = None
    os_hash_value: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class Digest:
    """What a fill actually wrote: its size, and the hex digest of each hash it computed, by algorithm."""

    size: int
    hexdigests: Mapping[str, str] = field(default_factory=dict)
