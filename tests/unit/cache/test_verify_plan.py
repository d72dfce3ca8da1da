"""The verification plan over every shape of metadata (pure: no I/O)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagecache.cache.verify import SUPPORTED_HASH_ALGOS, Expected
from imagecache.cache.verify_plan import CHECKSUM, MULTIHASH, VerifyPlan, plan_for
from imagecache.config import VERIFY_MODES

hexes = st.text("0123456789abcdef", min_size=1, max_size=128)
#: An absent field as metadata writes it: missing, empty, or blank.
nothing = st.sampled_from([None, "", "  "])
#: A case the metadata might use (Glance's are lower; anything else must not matter).
cased = st.sampled_from([str.lower, str.upper, lambda text: f" {text.title()}\t"])
supported = st.sampled_from(sorted(SUPPORTED_HASH_ALGOS))
unsupported = st.sampled_from(["whirlpool", "sha3_512", "blake2b", "md4", "crc32"])
sizes = st.none() | st.integers(0, 10**12)


@st.composite
def metadata(draw: st.DrawFn) -> Expected:
    """Every combination: each field absent, empty, present in any case; the algorithm supported or not."""
    case = draw(cased)
    checksum = draw(nothing | hexes.map(case))
    algo = draw(nothing | supported.map(case) | unsupported)
    value = draw(nothing | hexes.map(case))
    return Expected(checksum, algo, value, draw(sizes))


def _present(text: str | None) -> bool:
    return bool(text and text.strip())


def _usable_multihash(expected: Expected) -> bool:
    algo = (expected.os_hash_algo or "").strip().lower() or "sha512"  # Glance's default
    return algo in SUPPORTED_HASH_ALGOS and _present(expected.os_hash_value)


@given(metadata())
def test_strongest_is_the_multihash_else_md5_else_the_size(expected):
    plan = plan_for(expected, "strongest")
    assert plan.size == expected.size
    if _usable_multihash(expected):
        assert [c.field for c in plan.checks] == [MULTIHASH]
        assert plan.algos == ((expected.os_hash_algo or "").strip().lower() or "sha512",)
    elif _present(expected.checksum):
        assert [(c.algo, c.field) for c in plan.checks] == [("md5", CHECKSUM)]
    else:
        assert plan.checks == ()
        assert plan.algos == ()


@given(metadata())
def test_all_is_every_digest_offered(expected):
    plan = plan_for(expected, "all")
    fields = {c.field for c in plan.checks}
    assert (MULTIHASH in fields) == _usable_multihash(expected)
    assert (CHECKSUM in fields) == _present(expected.checksum)
    assert len(plan.algos) == len(set(plan.algos)) <= len(plan.checks)  # md5 twice is hashed once


@given(metadata(), st.sampled_from(VERIFY_MODES))
def test_strongest_checks_a_subset_of_all(expected, mode):
    assert set(plan_for(expected, "strongest").checks) <= set(plan_for(expected, "all").checks)
    plan = plan_for(expected, mode)
    assert all(c.expected == c.expected.strip().lower() and c.algo in SUPPORTED_HASH_ALGOS for c in plan.checks)


@given(st.binary(max_size=4096), supported, cased, st.sampled_from(VERIFY_MODES), st.booleans())
def test_the_true_digests_pass_in_any_case(data, algo, case, mode, with_size):
    expected = Expected(
        case(hashlib.md5(data).hexdigest()),
        case(algo),
        case(hashlib.new(algo, data).hexdigest()),
        len(data) if with_size else None,
    )
    plan = plan_for(expected, mode)
    digests = {name: hashlib.new(name, data).hexdigest() for name in plan.algos}
    assert plan.mismatch(len(data), digests) is None


@given(st.binary(max_size=4096), supported, st.sampled_from(["size", "checksum", "value"]))
def test_a_wrong_fact_fails_when_it_is_checked(data, algo, wrong):
    md5, value = hashlib.md5(data).hexdigest(), hashlib.new(algo, data).hexdigest()
    expected = Expected(
        md5[::-1] + "0" if wrong == "checksum" else md5,
        algo,
        value[::-1] + "0" if wrong == "value" else value,
        len(data) + 1 if wrong == "size" else len(data),
    )
    for mode in VERIFY_MODES:
        plan = plan_for(expected, mode)
        digests = {name: hashlib.new(name, data).hexdigest() for name in plan.algos}
        fields = {c.field for c in plan.checks}
        checked = wrong == "size" or {"checksum": CHECKSUM, "value": MULTIHASH}[wrong] in fields
        assert (plan.mismatch(len(data), digests) is not None) == checked, (mode, plan)


@given(st.binary(max_size=1024))
def test_a_right_multihash_with_a_wrong_md5_passes_only_under_strongest(data):
    expected = Expected("0" * 32, "sha512", hashlib.sha512(data).hexdigest(), len(data))
    for mode, passes in (("strongest", True), ("all", False)):
        plan = plan_for(expected, mode)
        digests = {name: hashlib.new(name, data).hexdigest() for name in plan.algos}
        assert (plan.mismatch(len(data), digests) is None) == passes


def test_a_digest_not_computed_is_a_mismatch():
    plan = plan_for(Expected(checksum="ab" * 16), "strongest")
    assert plan.mismatch(0, {}) == "md5 (not computed) != expected " + "ab" * 16


@given(metadata(), st.sampled_from(VERIFY_MODES), st.integers(0, 10**6))
def test_the_record_holds_only_what_was_computed_or_vouched_for(expected, mode, size):
    plan = plan_for(expected, mode)
    digests = {name: f"{name}-digest" for name in plan.algos}
    recorded = plan.recorded(digests)
    if not plan.checks:
        assert recorded.checksum is None  # a size check vouches for nothing
    elif "md5" in plan.algos:
        assert recorded.checksum == "md5-digest"
    else:
        assert recorded.checksum == plan.offered_checksum  # vouched for by the multihash
    multihash = [c for c in plan.checks if c.field == MULTIHASH]
    if multihash:
        assert (recorded.os_hash_algo, recorded.os_hash_value) == (multihash[0].algo, f"{multihash[0].algo}-digest")
    else:
        assert (recorded.os_hash_algo, recorded.os_hash_value) == (None, None)


def test_an_unknown_mode_is_refused_by_name():
    with pytest.raises(ValueError, match="image_cache_verify must be one of strongest, all"):
        plan_for(Expected(), "md5")


def test_a_plan_that_checks_nothing_computes_nothing():
    assert VerifyPlan(None, ()).algos == ()
    assert VerifyPlan(None, ()).mismatch(123, {}) is None
