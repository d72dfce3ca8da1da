"""Pure checks of a fill's result against what the image's metadata promises."""

from __future__ import annotations

from dataclasses import dataclass

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
    """What a fill actually wrote."""

    size: int
    checksum: str
    os_hash_algo: str
    os_hash_value: str


def mismatch(digest: Digest, expected: Expected) -> str | None:
    """Why ``digest`` is not the expected image, or None when every known fact matches."""
    if expected.size is not None and digest.size != expected.size:
        return f"size {digest.size} != expected {expected.size}"
    if expected.checksum and digest.checksum != expected.checksum.strip().lower():
        return f"md5 {digest.checksum} != expected {expected.checksum}"
    if expected.os_hash_value:
        algo = (expected.os_hash_algo or "sha512").lower()
        if algo != digest.os_hash_algo:
            return f"multihash computed with {digest.os_hash_algo}, metadata names {algo}"
        if digest.os_hash_value != expected.os_hash_value.strip().lower():
            return f"{algo} {digest.os_hash_value[:16]}... != expected {expected.os_hash_value[:16]}..."
    return None


def multihash_algo(expected: Expected, default: str) -> str:
    """The algorithm a fill must compute: the image's own, else the configured one."""
    algo = (expected.os_hash_algo or default).lower()
    return algo if algo in SUPPORTED_HASH_ALGOS else default
