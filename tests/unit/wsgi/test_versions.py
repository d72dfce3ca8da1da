"""The cache API versions an edge node adds to its upstream's version document."""

from __future__ import annotations

import json

import webob
from hypothesis import given
from hypothesis import strategies as st

from imagecache.wsgi.versions import CACHE_VERSIONS, CacheVersions, with_cache_versions

# What Glance 33 answers without an image cache (glance/api/versions.py), shortened.
GLANCE_NO_CACHE = {"versions": [
    {"id": f"v2.{n}", "status": "CURRENT" if n == 17 else "SUPPORTED",
     "links": [{"rel": "self", "href": "http://glance:9292/v2/"}]}
    for n in (15, 13, 12, 9, 17, 7, 0)
]}


def test_the_cache_versions_are_added_and_2_18_becomes_current():
    document = with_cache_versions(GLANCE_NO_CACHE)
    ids = [v["id"] for v in document["versions"]]
    assert set(CACHE_VERSIONS) <= set(ids) and len(ids) == len(set(ids)) == 10
    assert [v["id"] for v in document["versions"] if v["status"] == "CURRENT"] == ["v2.18"]
    assert document["versions"][0]["links"] == GLANCE_NO_CACHE["versions"][0]["links"]
    assert GLANCE_NO_CACHE["versions"][4]["status"] == "CURRENT"  # the input is not changed


def test_a_document_that_has_them_is_left_alone():
    full = with_cache_versions(GLANCE_NO_CACHE)
    assert with_cache_versions(full) is full


@given(st.one_of(st.none(), st.integers(), st.text(), st.dictionaries(st.text(), st.integers()),
                 st.fixed_dictionaries({"versions": st.lists(st.one_of(st.integers(), st.text()))})))
def test_odd_documents_never_break_it(document):
    assert with_cache_versions(document) == document


def upstream(environ, start_response):
    body = json.dumps(GLANCE_NO_CACHE).encode()
    start_response("300 Multiple Choices", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def test_the_filter_rewrites_versions_and_nothing_else():
    app = CacheVersions(upstream)
    for path in ("/", "/versions"):
        answer = webob.Request.blank(path).get_response(app)
        assert answer.status_int == 300 and "v2.14" in {v["id"] for v in answer.json["versions"]}
        assert int(answer.headers["Content-Length"]) == len(answer.body)
    other = webob.Request.blank("/v2/images").get_response(app)
    assert "v2.14" not in {v["id"] for v in other.json["versions"]}
