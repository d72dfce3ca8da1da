"""Which digests a fill computes and compares, decided from the image's metadata alone.

Every digest costs a core for the length of a fill (md5 and sha512 each
run at about the speed of the copy), so a fill computes only what it will
compare.  ``image_cache_verify`` chooses:

* ``strongest`` (the default): the multihash (``os_hash_algo`` and
  ``os_hash_value``) when the metadata has both and hashlib computes the
  algorithm, else md5 (``checksum``) when present, else the size alone.
  The multihash is what python-glanceclient itself verifies.  md5 is broken
  for collisions and sha512 is not: whoever can hand us bytes that pass
  sha512 has already beaten the stronger hash, so checking md5 as well adds
  no protection and costs a second core.
* ``all``: every digest the metadata offers (for a policy that wants md5 too).

The size, when known, is always compared.  A multihash whose algorithm
hashlib cannot compute counts as not offered: it can neither pass nor fail.
A value without an algorithm is taken as sha512, Glance's default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from imagecache.cache.verify import SUPPORTED_HASH_ALGOS, Expected
from imagecache.config.settings import VERIFY_MODES

#: The multihash of a value whose metadata names no algorithm (Glance's default ``hashing_algorithm``).
DEFAULT_MULTIHASH = "sha512"
#: Metadata fields a digest is compared with (Glance's names).
CHECKSUM = "checksum"
MULTIHASH = "os_hash_value"


@dataclass(frozen=True)
class DigestCheck:
    """One digest to compute (``algo``, a hashlib name) and the hex it must equal."""

    algo: str
    expected: str
    field: str
    """The metadata field ``expected`` comes from: :data:`CHECKSUM` or :data:`MULTIHASH`."""


@dataclass(frozen=True)
class Recorded:
    """The digests the index keeps for a verified image (None: not known)."""

    checksum: str | None
    os_hash_algo: str | None
    os_hash_value: str | None


@dataclass(frozen=True)
class VerifyPlan:
    """What a fill computes and compares, and what it may record once they match."""

    size: int | None
    checks: tuple[DigestCheck, ...]
    offered_checksum: str | None = None
    """The metadata's md5, normalised, whether or not it is checked."""

    @property
    def algos(self) -> tuple[str, ...]:
        """The hashes to compute, each once (an ``os_hash_algo`` of md5 shares md5's)."""
        return tuple(dict.fromkeys(check.algo for check in self.checks))

    def mismatch(self, size: int, digests: Mapping[str, str]) -> str | None:
        """Why the bytes (``size`` of them, ``digests`` by algo) are not the image; None when they are."""
        if self.size is not None and size != self.size:
            return f"size {size} != expected {self.size}"
        for check in self.checks:
            got = digests.get(check.algo)
            if got != check.expected:
                return f"{check.algo} {_short(got)} != expected {_short(check.expected)}"
        return None

    def recorded(self, digests: Mapping[str, str]) -> Recorded:
        """What the index keeps of a fill that passed: the digests computed, and the md5.

        The md5 is kept even when it was not computed, as the metadata
        states it, once a multihash has vouched for the bytes: the image
        service computed both from the same upload, so it names these bytes
        (the ETag and the changed-image check use it).  After a size-only
        check nothing vouches for it, and nothing is kept.
        """
        multihash = next((c for c in self.checks if c.field == MULTIHASH), None)
        checksum = digests.get("md5") if "md5" in self.algos else None
        if checksum is None and self.checks:
            checksum = self.offered_checksum
        if multihash is None:
            return Recorded(checksum, None, None)
        return Recorded(checksum, multihash.algo, digests.get(multihash.algo))


def plan_for(expected: Expected, mode: str) -> VerifyPlan:
    """The plan for an image with ``expected`` metadata under ``image_cache_verify = mode``."""
    if mode not in VERIFY_MODES:
        raise ValueError(f"image_cache_verify must be one of {', '.join(VERIFY_MODES)}, not {mode!r}")
    offered: list[DigestCheck] = []
    algo, value = _clean(expected.os_hash_algo) or DEFAULT_MULTIHASH, _clean(expected.os_hash_value)
    if algo in SUPPORTED_HASH_ALGOS and value:
        offered.append(DigestCheck(algo, value, MULTIHASH))
    checksum = _clean(expected.checksum)
    if checksum:
        offered.append(DigestCheck("md5", checksum, CHECKSUM))
    checks = tuple(offered) if mode == "all" else tuple(offered[:1])
    return VerifyPlan(expected.size, checks, checksum or None)


def _clean(text: str | None) -> str:
    """Metadata text as compared: hex digests and algorithm names are case-insensitive."""
    return (text or "").strip().lower()


def _short(hexdigest: str | None) -> str:
    if hexdigest is None:
        return "(not computed)"
    return hexdigest if len(hexdigest) <= 32 else hexdigest[:16] + "..."
