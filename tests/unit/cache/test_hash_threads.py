"""Each digest a fill computes runs on its own thread, and every way a fill ends stops them all."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from imagecache import ImageCache
from imagecache.cache import FillClaim, FillFailed, FillResult, ImageVerificationError
from imagecache.cache.hashing import THREAD_NAME
from tests.support.waiting import wait_until

from .conftest import Image, make_image


def hash_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == THREAD_NAME and t.is_alive()}


def no_new_hash_threads(before: set[threading.Thread]) -> None:
    wait_until(lambda: not (hash_threads() - before), "every hashing thread of the fill to stop",
               describe=lambda: hash_threads() - before)


@pytest.mark.parametrize(("mode", "threads"), [("strongest", 1), ("all", 2)])
def test_each_digest_hashes_on_a_thread_of_its_own_while_the_copy_goes_on(make_cache, mode, threads):
    cache = make_cache(image_cache_verify=mode)
    image = make_image(400_000)
    before = hash_threads()
    body = cache.get_caching_iter(image.image_id, image.checksum, image.chunks(), os_hash_value=image.sha512)
    next(body)
    next(body)
    assert len(hash_threads() - before) == threads  # sha512 alone, or md5 beside it
    assert b"".join(body)
    assert cache.is_cached(image.image_id)
    no_new_hash_threads(before)


def _claim(cache: ImageCache, image: Image, sha512: str | None = None) -> FillClaim:
    claim = cache.claim_fill(image.image_id, image.checksum, os_hash_value=sha512 or image.sha512,
                             size=len(image.data))
    assert claim is not None
    return claim


def _broken(image: Image) -> Iterator[bytes]:
    yield image.data[:65536]
    yield image.data[65536:131072]
    raise OSError("the origin reset the connection")


@pytest.mark.parametrize("mode", ["strongest", "all"])
@pytest.mark.parametrize("how", ["failed verification", "source fails"])
def test_a_background_fill_that_fails_leaves_no_hashing_thread(make_cache, mode, how):
    cache = make_cache(image_cache_verify=mode)
    image = make_image(300_000)
    before = hash_threads()
    claim = _claim(cache, image, "0" * 128) if how == "failed verification" else _claim(cache, image)
    results: list[FillResult] = []
    claim.on_done(lambda done, result: results.append(result))
    reader = claim.start(image.chunks() if how == "failed verification" else _broken(image))
    with pytest.raises((ImageVerificationError, FillFailed)):
        b"".join(reader)
    reader.close()
    wait_until(lambda: results, "the fill to end")
    assert results == [FillResult.FAILED]
    no_new_hash_threads(before)


def test_a_cancelled_claim_leaves_no_hashing_thread(cache):
    before = hash_threads()
    claim = _claim(cache, make_image())
    claim.cancel()
    no_new_hash_threads(before)


@pytest.mark.parametrize("mode", ["strongest", "all"])
@pytest.mark.parametrize("how", ["client gone", "source fails", "failed verification", "too large"])
def test_a_tee_that_ends_early_or_fails_leaves_no_hashing_thread(make_cache, mode, how):
    cache = make_cache(image_cache_verify=mode)
    image = make_image(400_000)
    before = hash_threads()
    source = _broken(image) if how == "source fails" else image.chunks()
    sha512 = "0" * 128 if how == "failed verification" else image.sha512
    size = 100_000 if how == "too large" else len(image.data)
    body = cache.get_caching_iter(image.image_id, image.checksum, source, os_hash_value=sha512, size=size)
    if how == "client gone":
        next(body)
        next(body)
        body.close()  # type: ignore[attr-defined]  # the client went away
    elif how == "source fails":
        with pytest.raises(OSError, match="reset"):
            b"".join(body)
    elif how == "failed verification":
        with pytest.raises(ImageVerificationError):
            b"".join(body)
    else:
        assert b"".join(body) == image.data  # the stream goes on; the cache just does not keep it
    assert not cache.is_cached(image.image_id)
    no_new_hash_threads(before)
