"""Why a fill did not store its image: each reason the pipeline gives, reached for real.

``imagecache_not_stored_total{reason}`` counts each one once, whichever
way the fill came in (a claim for a background fill, a tee, a copy).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

from imagecache import ImageCache, Settings
from imagecache.cache import Declined, FillClaim, ImageVerificationError
from imagecache.metrics import NOT_STORED_REASONS
from tests.support.waiting import wait_until

from .conftest import Image, make_image
from .scratch_fs import mounted


def not_stored(cache: ImageCache) -> dict[str, float]:
    """The reasons counted so far (those above zero)."""
    counts = {reason: cache.metrics.not_stored.labels(reason=reason)._value.get() for reason in NOT_STORED_REASONS}
    return {reason: count for reason, count in counts.items() if count}


def claim(cache: ImageCache, image: Image, size: int | None = None) -> FillClaim | Declined:
    return cache.try_claim_fill(image.image_id, image.checksum, os_hash_value=image.sha512,
                                size=len(image.data) if size is None else size)


def fill_to_the_end(cache: ImageCache, claimed: FillClaim | Declined, source: Iterator[bytes]) -> None:
    assert isinstance(claimed, FillClaim)
    reader = claimed.start(source)
    try:
        for _ in reader.pieces():
            pass
    except Exception:  # noqa: BLE001 - how the reader ends is not what these tests look at
        pass
    finally:
        reader.close()
    assert claimed.thread is not None
    claimed.thread.join(30)


def test_a_claim_is_declined_with_the_reason_or_none_when_someone_has_it(make_cache) -> None:
    cache = make_cache(image_cache_max_size=1000)
    big, small = make_image(5000), make_image(500)
    assert claim(cache, big) == Declined("too-large")
    first = claim(cache, small)
    assert isinstance(first, FillClaim)
    assert claim(cache, small) == Declined(None)  # being filled: follow it instead
    first.cancel()
    assert not_stored(cache) == {"too-large": 1}  # a fill someone else runs is no not-stored outcome


def test_bytes_that_fail_verification(make_cache) -> None:
    cache = make_cache()
    image = make_image(100_000)
    with pytest.raises(ImageVerificationError):
        cache.cache_image_iter(image.image_id, image.chunks(), "0" * 32, size=len(image.data))
    assert not_stored(cache) == {"verify-failed": 1}


def test_an_image_that_grows_past_its_size_or_the_cache(make_cache) -> None:
    cache = make_cache(image_cache_max_size=50_000)
    image = make_image(100_000)
    assert cache.cache_image_iter(image.image_id, image.chunks(), image.checksum, size=40_000) is False
    assert not_stored(cache) == {"verify-failed": 1}  # more bytes than the image has: not its bytes
    assert cache.cache_image_iter(image.image_id, image.chunks(), image.checksum) is False  # size unknown
    assert not_stored(cache) == {"verify-failed": 1, "too-large": 1}


def test_a_fill_with_no_room_left_when_it_publishes(make_cache) -> None:
    cache = make_cache(image_cache_min_free=1 << 60)  # a free-space floor no disk can keep
    image = make_image(10_000)
    assert cache.cache_image_iter(image.image_id, image.chunks(), image.checksum) is False
    assert not_stored(cache) == {"no-room": 1}


def test_a_source_that_breaks_and_a_consumer_that_leaves(make_cache) -> None:
    cache = make_cache()
    image = make_image(300_000)

    def breaking() -> Iterator[bytes]:
        yield image.data[:65536]
        raise OSError("the origin went away")

    fill_to_the_end(cache, claim(cache, image), breaking())
    assert not_stored(cache) == {"origin-error": 1}
    tee = cache.get_caching_iter(image.image_id, image.checksum, image.chunks())
    next(tee)
    tee.close()  # the consumer stopped reading
    assert not_stored(cache) == {"origin-error": 1, "abandoned": 1}


def test_a_fill_nobody_reads_is_abandoned(make_cache) -> None:
    cache = make_cache(fill_abandon_after=0.01)
    image = make_image(200_000)
    claimed = claim(cache, image)
    assert isinstance(claimed, FillClaim)
    gate = threading.Event()

    def slow() -> Iterator[bytes]:
        for chunk in image.chunks(1000):
            gate.wait(0.005)
            yield chunk

    claimed.start(slow()).close()  # its only reader leaves at once
    assert claimed.thread is not None
    claimed.thread.join(30)
    assert not_stored(cache) == {"abandoned": 1}


def test_a_full_disk_during_a_fill(tmp_path) -> None:
    with mounted("tmpfs", str(tmp_path / "tiny"), "size=512k") as root:
        cache = ImageCache(Settings(image_cache_dir=os.path.join(root, "cache"), image_cache_min_free=0))
        try:
            image = make_image(2 << 20)
            assert b"".join(cache.get_caching_iter(image.image_id, image.checksum, image.chunks())) == image.data
            wait_until(lambda: not_stored(cache), "the fill to be counted")
            assert not_stored(cache) == {"disk-full": 1}
        finally:
            cache.close()
