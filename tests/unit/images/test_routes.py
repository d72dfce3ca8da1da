"""The route table, on its own."""

from __future__ import annotations

from imagecache.images.routes import RouteTable

TABLE: RouteTable[str] = RouteTable(
    [
        ("/", {"GET": "root"}),
        ("/v1/images/detail", {"GET": "detail"}),
        ("/v1/images/{image_id}", {"GET": "show", "HEAD": "head", "DELETE": "delete"}),
        ("/v2/images/{image_id}/file", {"GET": "download", "PUT": "upload"}),
    ]
)


def test_literal_and_placeholder_routes() -> None:
    match = TABLE.match("/v1/images/abc", "HEAD")
    assert match is not None and match.handler == "head" and match.params == {"image_id": "abc"}
    match = TABLE.match("/v2/images/abc/file", "PUT")
    assert match is not None and match.handler == "upload"


def test_first_fitting_template_decides() -> None:
    match = TABLE.match("/v1/images/detail", "GET")
    assert match is not None and match.handler == "detail" and match.params == {}
    refused = TABLE.match("/v1/images/detail", "DELETE")
    assert refused is not None and refused.handler is None and refused.allowed == ("GET",)


def test_method_not_allowed_lists_methods() -> None:
    match = TABLE.match("/v2/images/abc/file", "DELETE")
    assert match is not None and match.handler is None
    assert match.allowed == ("GET", "PUT")


def test_no_match() -> None:
    for path in ("/v1/images", "/v1/images/", "/v1/images//", "/v2/images//file", "/v2/images/a/b/file", "/x", "//"):
        assert TABLE.match(path, "GET") is None, path


def test_root_and_empty_path() -> None:
    for path in ("/", ""):
        match = TABLE.match(path, "GET")
        assert match is not None and match.handler == "root"
