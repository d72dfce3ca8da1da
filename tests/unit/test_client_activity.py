"""CacheClient.activity() and the parsing of GET /v2/cache/activity answers."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagecache.client import Activity, FillView, InvalidResponse, Unauthorized
from imagecache.client.activity import NodeView, parse_activity

from .test_client import IMAGE_ID, StubPool, stubbed

ANSWER = {
    "time": 1700000000.5,
    "fills": [{"image_id": IMAGE_ID, "name": "cirros", "bytes": 10, "expected_size": 100, "readers": 2,
               "updated": 1700000000.0, "source": "peer"}],
    "counters": {"hits": 3, "misses": 1, "fill_followers": 2, "served_bytes": {"cache": 7, "upstream": 5},
                 "upstream_bytes": 5, "peer_bytes": 0, "peer_served_bytes": 0, "not_stored": {"too-large": 1},
                 "fills": {"completed": 1}, "evictions": 4, "origin_requests": {"miss": 2}},
    "cache_size": 7, "image_cache_max_size": 100, "queued_images": [IMAGE_ID], "pinned_images": [],
    "pinned_over_limit": True,
    "nodes": [{"url": "http://edge-1:9292", "site": "east", "state": "live", "last_seen": 1699999999.0},
              {"url": "http://tool", "site": "default", "state": "never", "last_seen": None}],
}


def test_activity_is_asked_of_the_v2_route_and_parsed() -> None:
    pool = StubPool((200, ANSWER))
    found = stubbed(pool, doc_root="/v1", auth_token="tok").activity()
    assert [(method, url) for method, url, _ in pool.sent] == [("GET", "http://h:9292/v2/cache/activity")]
    assert found.fills == (FillView(IMAGE_ID, "cirros", 10, 100, 2, "peer"),)
    assert found.counters.hits == 3
    assert found.counters.served_bytes == {"cache": 7, "upstream": 5}
    assert (found.cache_size, found.image_cache_max_size, found.queued_images) == (7, 100, (IMAGE_ID,))
    assert (found.counters.evictions, found.counters.origin_requests) == (4, {"miss": 2})
    assert found.pinned_over_limit is True
    assert found.nodes == (NodeView("http://edge-1:9292", "east", "live", 1699999999.0),
                           NodeView("http://tool", "default", "never", None))


def test_a_node_without_a_central_index_has_no_nodes() -> None:
    found = parse_activity({**ANSWER, "nodes": None})
    assert found is not None and found.nodes is None


@pytest.mark.parametrize("body", [b"not json", b"[]", {}, {"fills": []}, {"time": "now", "fills": []}])
def test_an_activity_answer_the_api_never_sends_is_invalid(body: Any) -> None:
    with pytest.raises(InvalidResponse):
        stubbed(StubPool((200, body))).activity()


def test_a_refusal_is_the_usual_client_error() -> None:
    with pytest.raises(Unauthorized):
        stubbed(StubPool((401, {"error": {"message": "bad token"}}))).activity()


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=4), max_leaves=20)
keys = st.sampled_from([*ANSWER, "image_id", "bytes", "hits", "served_bytes"])


@given(st.dictionaries(keys, json_values, max_size=8) | json_values)
def test_any_json_parses_to_an_activity_or_none(data: Any) -> None:
    found = parse_activity(data)
    assert found is None or isinstance(found, Activity)
    if found is not None:
        assert all(fill.bytes >= 0 for fill in found.fills)


@given(st.dictionaries(st.sampled_from(list(ANSWER)), json_values, max_size=8))
def test_a_good_answer_with_odd_fields_still_parses(odd: dict[str, Any]) -> None:
    fills = odd.get("fills")
    found = parse_activity({**odd, "time": 1.0, "fills": fills if isinstance(fills, list) else []})
    assert isinstance(found, Activity)
