"""``GET /openapi.json``: the packaged document as JSON, read once, GET and HEAD only."""

from __future__ import annotations

import json

from imagecache.openapi import OpenAPIApp, load_document
from imagecache.openapi.document import parse, render_json
from tests.support.wsgi import call


def test_get_serves_the_packaged_document_as_json() -> None:
    response = call(OpenAPIApp(), "GET", "/openapi.json")
    assert response.status_int == 200
    assert response.content_type == "application/json"
    assert json.loads(response.body) == load_document()
    assert response.content_length == len(response.body)


def test_head_has_the_headers_and_no_body() -> None:
    app = OpenAPIApp(lambda: b'{"openapi": "3.1.0"}')
    response = call(app, "HEAD", "/openapi.json")
    assert response.status_int == 200 and response.body == b""
    assert response.headers["Content-Length"] == "20"


def test_other_methods_are_a_405_in_the_node_s_json_error() -> None:
    response = call(OpenAPIApp(lambda: b"{}"), "PUT", "/openapi.json")
    assert response.status_int == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert response.json["error"]["code"] == 405


def test_the_document_is_read_once_per_app() -> None:
    reads: list[int] = []

    def load() -> bytes:
        reads.append(1)
        return b"{}"

    app = OpenAPIApp(load)
    for _ in range(3):
        call(app, "GET", "/openapi.json")
    assert len(reads) == 1


def test_yaml_anchors_are_resolved_into_plain_json() -> None:
    document = parse("a: &shared {x: 1}\nb: *shared\nopenapi: 3.1.0\n")
    assert json.loads(render_json(document)) == {"a": {"x": 1}, "b": {"x": 1}, "openapi": "3.1.0"}
