"""ImageCache's public API, run against every local driver."""

from __future__ import annotations

import os
import uuid

import pytest

from imagecache.cache import ImageNotCached, ImageVerificationError, InvalidImageId

from .conftest import cache_it, make_image


# -- caching and reading ------------------------------------------------------
def test_cache_image_iter_publishes_a_verified_file(cache):
    image = make_image()
    assert not cache.is_cached(image.image_id)
    assert cache_it(cache, image) is True
    assert cache.is_cached(image.image_id)
    assert cache.get_image_size(image.image_id) == len(image.data)
    with open(os.path.join(cache.layout.root, image.image_id), "rb") as fh:
        assert fh.read() == image.data
    assert os.listdir(cache.layout.incomplete_dir) == []


def test_records_carry_the_facts(cache, clock):
    image = make_image(1000)
    cache_it(cache, image)
    [rec] = cache.get_cached_images()
    assert rec.image_id == image.image_id
    assert (rec.size, rec.hits, rec.checksum) == (1000, 0, image.checksum)
    assert (rec.os_hash_algo, rec.os_hash_value) == ("sha512", image.sha512)
    assert rec.last_accessed == rec.last_modified == clock.now
    assert set(rec.to_dict()) >= {"image_id", "size", "hits", "last_accessed", "last_modified", "checksum"}


def test_caching_twice_is_refused(cache):
    image = make_image()
    assert cache_it(cache, image) is True
    assert cache_it(cache, image) is False


def test_cache_image_file(cache, tmp_path):
    image = make_image(3 << 20)
    source = tmp_path / "src"
    source.write_bytes(image.data)
    with open(source, "rb") as fh:
        assert cache.cache_image_file(image.image_id, fh, image.checksum) is True
    assert cache.get_image_size(image.image_id) == len(image.data)


def test_caching_without_any_checksum_checks_the_size_and_records_no_hash(cache):
    image = make_image()
    assert cache.cache_image_iter(image.image_id, image.chunks(), size=len(image.data)) is True
    rec = cache.get_cached_image(image.image_id)
    assert rec.size == len(image.data)
    assert (rec.checksum, rec.os_hash_algo, rec.os_hash_value) == (None, None, None)  # nothing vouches for one


@pytest.mark.parametrize("mode", ["strongest", "all"])
def test_the_record_holds_the_md5_the_multihash_vouched_for(make_cache, mode):
    cache = make_cache(image_cache_verify=mode)
    image = make_image()
    assert cache.cache_image_iter(image.image_id, image.chunks(), image.checksum.upper(), os_hash_value=image.sha512)
    rec = cache.get_cached_image(image.image_id)
    assert (rec.checksum, rec.os_hash_algo, rec.os_hash_value) == (image.checksum, "sha512", image.sha512)


def test_other_multihash_algorithms_are_computed_and_checked(cache):
    import hashlib

    image = make_image()
    sha256 = hashlib.sha256(image.data).hexdigest()
    assert cache.cache_image_iter(image.image_id, image.chunks(), os_hash_algo="sha256", os_hash_value=sha256)
    assert cache.get_cached_image(image.image_id).os_hash_algo == "sha256"


def test_caching_iter_yields_every_chunk_and_caches(cache):
    image = make_image(1 << 20)
    out = b"".join(cache.get_caching_iter(image.image_id, image.checksum, image.chunks(), os_hash_value=image.sha512))
    assert out == image.data
    assert cache.is_cached(image.image_id)


def test_cache_tee_iter_has_glances_argument_order(cache):
    image = make_image()
    assert b"".join(cache.cache_tee_iter(image.image_id, image.chunks(), image.checksum)) == image.data
    assert cache.is_cached(image.image_id)


def test_an_unconsumed_caching_iter_holds_nothing(cache):
    image = make_image()
    cache.get_caching_iter(image.image_id, image.checksum, image.chunks())
    assert not cache.is_being_cached(image.image_id)
    assert cache_it(cache, image) is True


def test_abandoned_caching_iter_leaves_nothing(cache):
    image = make_image(1 << 20)
    it = cache.get_caching_iter(image.image_id, image.checksum, image.chunks())
    next(it)
    assert cache.is_being_cached(image.image_id)
    it.close()  # the client went away
    assert not cache.is_cached(image.image_id)
    assert not cache.is_being_cached(image.image_id)
    assert os.listdir(cache.layout.incomplete_dir) == []


def test_failing_source_leaves_nothing_and_propagates(cache):
    image = make_image()

    def broken():
        yield image.data[:1000]
        raise ConnectionError("upstream went away")

    with pytest.raises(ConnectionError):
        b"".join(cache.get_caching_iter(image.image_id, image.checksum, broken()))
    assert not cache.is_cached(image.image_id)
    assert os.listdir(cache.layout.incomplete_dir) == []


# -- verification -------------------------------------------------------------
@pytest.mark.parametrize(("wrong", "mode"), [
    ("checksum", "all"), ("sha512", "strongest"), ("sha512", "all"), ("size", "strongest"), ("size", "all"),
])
def test_mismatch_is_not_cached_and_goes_to_invalid(make_cache, wrong, mode):
    cache = make_cache(image_cache_verify=mode)
    image = make_image()
    facts = {"image_checksum": image.checksum, "os_hash_value": image.sha512, "size": len(image.data)}
    facts[{"checksum": "image_checksum", "sha512": "os_hash_value", "size": "size"}[wrong]] = (
        len(image.data) + 1 if wrong == "size" else "0" * (32 if wrong == "checksum" else 128)
    )
    got = []
    with pytest.raises(ImageVerificationError):
        for chunk in cache.get_caching_iter(
            image.image_id, facts["image_checksum"], image.chunks(),
            os_hash_value=facts["os_hash_value"], size=facts["size"],
        ):
            got.append(chunk)
    if wrong != "size":  # a size mismatch is noticed as the bytes arrive
        streamed = b"".join(got)
        # Everything but the last chunk was streamed: a wrong image is never handed out whole.
        assert streamed == image.data[:len(streamed)]
        assert 0 < len(streamed) < len(image.data)
        assert os.path.exists(cache.layout.invalid_path(image.image_id))
    assert not cache.is_cached(image.image_id)
    assert cache.get_cached_images() == []


def test_a_wrong_md5_beside_a_right_multihash_is_cached_under_strongest(cache):
    image = make_image()
    assert cache.cache_image_iter(image.image_id, image.chunks(), "0" * 32, os_hash_value=image.sha512) is True
    assert cache.get_cached_image(image.image_id).checksum == "0" * 32  # the metadata's, as the listing shows it


def test_cache_image_iter_raises_on_mismatch(cache):
    image = make_image()
    with pytest.raises(ImageVerificationError):
        cache.cache_image_iter(image.image_id, image.chunks(), "0" * 32)
    assert os.path.exists(cache.layout.invalid_path(image.image_id))


def test_checksums_compare_case_insensitively(cache):
    image = make_image()
    assert cache.cache_image_iter(image.image_id, image.chunks(), image.checksum.upper())


# -- hits -----------------------------------------------------------------------
def test_completed_reads_count_as_hits(cache, clock):
    image = make_image()
    cache_it(cache, image)
    clock.advance(10)
    for _ in range(3):
        with cache.open_for_read(image.image_id) as fh:
            assert fh.read() == image.data
    assert cache.get_hit_count(image.image_id) == 3
    assert cache.get_cached_image(image.image_id).last_accessed == clock.now


def test_a_read_that_fails_is_not_a_hit(cache):
    image = make_image()
    cache_it(cache, image)
    with pytest.raises(RuntimeError), cache.open_for_read(image.image_id) as fh:
        fh.read(10)
        raise RuntimeError("client disconnected")
    assert cache.get_hit_count(image.image_id) == 0


def test_reading_an_uncached_image_raises(cache):
    with pytest.raises(ImageNotCached), cache.open_for_read(str(uuid.uuid4())):
        pass
    assert cache.get_hit_count(str(uuid.uuid4())) == 0
    assert cache.get_image_size(str(uuid.uuid4())) is None


# -- queue ------------------------------------------------------------------
def test_queue_order_and_duplicates(cache):
    ids = [str(uuid.uuid4()) for _ in range(5)]
    assert all(cache.queue_image(i) for i in ids)
    assert cache.queue_image(ids[2]) is False
    assert cache.get_queued_images() == ids
    assert cache.is_queued(ids[0])
    assert cache.delete_queued_image(ids[0]) is True
    assert cache.get_queued_images() == ids[1:]
    assert cache.delete_all_queued_images() == 4
    assert cache.get_queued_images() == []


def test_queueing_a_cached_image_is_refused(cache):
    image = make_image()
    cache_it(cache, image)
    assert cache.queue_image(image.image_id) is False
    assert cache.get_queued_images() == []


def test_queueing_an_image_being_cached_is_refused(cache):
    image = make_image()
    it = cache.get_caching_iter(image.image_id, None, image.chunks())
    next(it)
    assert cache.queue_image(image.image_id) is False
    it.close()


# -- deleting -----------------------------------------------------------------
def test_delete_cached_image(cache):
    a, b = make_image(), make_image()
    cache_it(cache, a)
    cache_it(cache, b)
    assert cache.delete_cached_image(a.image_id) is True
    assert not cache.is_cached(a.image_id) and cache.is_cached(b.image_id)
    assert [r.image_id for r in cache.get_cached_images()] == [b.image_id]
    assert cache.delete_cached_image(a.image_id) is False


def test_delete_all_cached_images(cache):
    for _ in range(3):
        cache_it(cache, make_image())
    assert cache.delete_all_cached_images() == 3
    assert cache.get_cached_images() == [] and cache.get_cache_size() == 0


def test_an_open_reader_survives_eviction(cache):
    image = make_image(1 << 20)
    cache_it(cache, image)
    with cache.open_for_read(image.image_id) as fh:
        first = fh.read(1000)
        cache.delete_cached_image(image.image_id)
        assert first + fh.read() == image.data


# -- size, prune and limits ---------------------------------------------------
def test_cache_size_sums_cached_images(cache):
    for size in (1000, 2000):
        cache_it(cache, make_image(size))
    assert cache.get_cache_size() == 3000


def test_prune_evicts_least_recently_used_first(make_cache, clock):
    # Hits written at once: the prune runs in another cache (as in another process), which cannot
    # flush this one's batch (tests/unit/cache/test_hit_flush.py covers pruning with pending hits).
    cache = make_cache(image_cache_max_size=10_000_000, image_cache_hit_flush_interval=0)
    images = []
    for _ in range(4):
        clock.advance(10)
        image = make_image(1000)
        cache_it(cache, image)
        images.append(image)
    clock.advance(10)
    with cache.open_for_read(images[0].image_id) as fh:  # touching the oldest saves it
        fh.read()
    small = make_cache(image_cache_max_size=2000)
    assert small.prune() == (2, 2000)
    assert {r.image_id for r in small.get_cached_images()} == {images[0].image_id, images[3].image_id}


def test_prune_within_limit_does_nothing(cache):
    cache_it(cache, make_image(1000))
    assert cache.prune() == (0, 0)


def test_publishing_evicts_lru_to_stay_within_max_size(make_cache, clock):
    cache = make_cache(image_cache_max_size=3000)
    images = []
    for _ in range(5):
        clock.advance(1)
        image = make_image(1000)
        assert cache_it(cache, image)
        images.append(image)
        assert cache.get_cache_size() <= 3000
    assert {r.image_id for r in cache.get_cached_images()} == {i.image_id for i in images[-3:]}


def test_an_image_larger_than_the_cache_streams_but_is_not_cached(make_cache):
    cache = make_cache(image_cache_max_size=1000)
    image = make_image(5000)
    assert b"".join(cache.get_caching_iter(image.image_id, image.checksum, image.chunks(1000))) == image.data
    assert not cache.is_cached(image.image_id)
    assert os.listdir(cache.layout.incomplete_dir) == []
    # Known in advance: not even started.
    assert cache.cache_image_iter(image.image_id, image.chunks(), size=5000) is False


def test_min_free_is_kept(make_cache):
    cache = make_cache()
    free = cache.layout.disk_usage().free
    greedy = make_cache(image_cache_min_free=free + (1 << 40))
    image = make_image()
    assert b"".join(greedy.get_caching_iter(image.image_id, image.checksum, image.chunks())) == image.data
    assert not greedy.is_cached(image.image_id)


# -- clean ------------------------------------------------------------------
def test_clean_removes_invalid_files_and_only_stalled_incomplete_ones(cache, clock):
    bad = make_image()
    with pytest.raises(ImageVerificationError):
        cache.cache_image_iter(bad.image_id, bad.chunks(), "0" * 32)
    stalled_id = str(uuid.uuid4())
    path = cache.layout.incomplete_path(stalled_id)
    with open(path, "wb") as fh:
        fh.write(b"partial")
    os.utime(path, (clock.now - 100, clock.now - 100))
    assert cache.clean(stall_time=1000) == (1, 0)  # too young to be stalled
    assert os.path.exists(path)
    clock.advance(1000)
    assert cache.clean(stall_time=1000) == (0, 1)
    assert not os.path.exists(path)


def test_clean_uses_the_configured_stall_time(make_cache, clock):
    cache = make_cache(image_cache_stall_time=50)
    path = cache.layout.incomplete_path(str(uuid.uuid4()))
    open(path, "wb").close()
    os.utime(path, (clock.now - 60, clock.now - 60))
    assert cache.clean().stalled_removed == 1


# -- ids ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad_id",
    ["../x", "..", "/etc/passwd", "a/b", "", "not-a-uuid", "%2e%2e%2fx", "{12345678-1234-1234-1234-123456789abc}",
     "12345678123412341234123456789abc", "12345678-1234-1234-1234-123456789abc/..",
     "12345678-1234-1234-1234-123456789abc\n"],
)
def test_unsafe_ids_are_refused_everywhere(cache, bad_id, tmp_path):
    calls = [
        lambda: cache.is_cached(bad_id),
        lambda: cache.is_queued(bad_id),
        lambda: cache.queue_image(bad_id),
        lambda: cache.delete_cached_image(bad_id),
        lambda: cache.delete_queued_image(bad_id),
        lambda: cache.get_hit_count(bad_id),
        lambda: cache.get_image_size(bad_id),
        lambda: cache.cache_image_iter(bad_id, [b"x"]),
        lambda: cache.get_caching_iter(bad_id, None, [b"x"]),
        lambda: cache.open_for_read(bad_id).__enter__(),
    ]
    for call in calls:
        with pytest.raises(InvalidImageId):
            call()
    assert isinstance(InvalidImageId("x"), ValueError)
    assert sorted(os.listdir(tmp_path)) == ["cache"]


def test_upper_case_ids_name_the_same_image(cache):
    image = make_image()
    cache_it(cache, image)
    assert cache.is_cached(image.image_id.upper())
