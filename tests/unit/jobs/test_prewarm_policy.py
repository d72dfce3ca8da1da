"""The pre-warm policy's pure decisions: which images it selects, how it asks, what a run fetches."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from imagecache import Settings
from imagecache.jobs.prewarm_policy import PAGE_SIZE, Candidate, PrewarmPolicy, image_size, plan, selected

TAGS = st.sampled_from(["golden", "base", "gpu", "old"])
VISIBILITIES = st.sampled_from(["public", "community", "shared", "private"])
STATUSES = st.sampled_from(["active", "queued", "deactivated", "killed"])
DISTROS = st.sampled_from(["ubuntu", "debian", "Ubuntu"])

images = st.fixed_dictionaries(
    {
        "id": st.uuids().map(str),
        "status": STATUSES,
        "visibility": VISIBILITIES,
        "tags": st.lists(TAGS, max_size=3),
        "size": st.one_of(st.none(), st.integers(0, 10**6)),
    },
    optional={"os_distro": DISTROS, "hw_arch": st.sampled_from(["x86_64", "aarch64"])},
)
policies = st.builds(
    PrewarmPolicy,
    tags=st.frozensets(TAGS, max_size=2),
    properties=st.lists(st.tuples(st.sampled_from(["os_distro", "hw_arch"]), st.sampled_from(["ubuntu", "x86_64"])),
                        max_size=2, unique_by=lambda pair: pair[0]).map(tuple),
    visibilities=st.frozensets(VISIBILITIES, min_size=1),
)


def oracle(policy: PrewarmPolicy, image: dict[str, Any]) -> bool:
    """The README's words: active, an allowed visibility, and any tag or every property."""
    if image["status"] != "active" or image["visibility"] not in policy.visibilities:
        return False
    by_tag = any(tag in policy.tags for tag in image["tags"])
    by_properties = bool(policy.properties) and all(image.get(name) == value for name, value in policy.properties)
    return by_tag or by_properties


@given(policies, images)
def test_an_image_is_selected_exactly_when_the_documentation_says(policy, image) -> None:
    assert policy.matches(image) is oracle(policy, image)


@given(policies, st.lists(images, max_size=20))
def test_selected_keeps_the_listing_order_once_per_image(policy, listed) -> None:
    doubled = listed + listed  # two listings (two tags) may both answer an image
    chosen = selected(policy, doubled)
    ids = [image["id"] for image in chosen]
    assert len(ids) == len(set(ids))
    expected: list[str] = []
    for image in listed:
        if oracle(policy, image) and image["id"] not in expected:
            expected.append(image["id"])
    assert ids == expected


def test_unexpected_shapes_are_not_selected() -> None:
    policy = PrewarmPolicy(frozenset({"golden"}), (("os_distro", "ubuntu"),))
    base = {"id": "x", "status": "active", "visibility": "public"}
    assert not policy.matches({**base, "tags": "golden"})  # a string is no list of tags
    assert not policy.matches({**base, "tags": [["golden"]]})
    assert not policy.matches({**base, "os_distro": ["ubuntu"]})
    assert policy.matches({**base, "tags": ["golden", 3]})
    assert selected(policy, [{**base, "id": 7, "tags": ["golden"]}]) == []  # an id must be a string


def test_an_empty_policy_is_off_and_a_default_one_takes_public_images_only() -> None:
    assert not PrewarmPolicy.from_settings(Settings()).enabled
    policy = PrewarmPolicy.from_settings(Settings(prewarm_tags=("golden",)))
    assert policy.enabled and policy.visibilities == {"public"}


def test_one_listing_per_tag_and_one_for_the_properties() -> None:
    policy = PrewarmPolicy(frozenset({"b", "a"}), (("os_distro", "ubuntu"), ("hw_arch", "x86_64")))
    common = [("status", "active"), ("visibility", "all"), ("limit", str(PAGE_SIZE))]
    assert policy.listings() == [
        [("tag", "a"), *common],
        [("tag", "b"), *common],
        [("os_distro", "ubuntu"), ("hw_arch", "x86_64"), *common],
    ]
    assert PrewarmPolicy(frozenset({"a"})).listings() == [[("tag", "a"), *common]]


candidates = st.lists(
    st.builds(Candidate, image_id=st.uuids().map(str), size=st.one_of(st.none(), st.integers(0, 1000)),
              cached=st.booleans()),
    unique_by=lambda c: c.image_id, max_size=20,
)


@given(candidates, st.integers(0, 5000))
def test_a_plan_takes_what_fits_in_order_and_fetches_only_what_is_missing(listed, budget) -> None:
    result = plan(listed, budget)
    by_id = {c.image_id: c for c in listed}
    assert set(result.wanted) | set(result.over_budget) == set(by_id)
    assert not set(result.wanted) & set(result.over_budget)
    assert sum(by_id[i].size or 0 for i in result.wanted) <= budget
    assert list(result.wanted) == [c.image_id for c in listed if c.image_id in result.wanted]  # the listing's order
    assert result.fetch == tuple(i for i in result.wanted if not by_id[i].cached)
    used = 0
    for candidate in listed:  # every candidate left out did not fit when its turn came
        if candidate.image_id in result.wanted:
            used += candidate.size or 0
        else:
            assert candidate.size is None or used + candidate.size > budget


def test_sizes_are_whole_non_negative_numbers() -> None:
    assert image_size({"size": 5}) == 5
    assert [image_size({"size": bad}) for bad in (None, -1, True, "5", 1.5)] == [None] * 5
    assert image_size({}) is None
