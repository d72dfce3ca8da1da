"""A part of an uncached image from the app: what the filter does with each kind of answer."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from imagecache.http.ranges import ByteRange
from imagecache.metrics import Metrics, PassReason
from imagecache.wsgi.app_data import Passed, Representation, pass_range, relay

IMAGE = bytes(range(200))
ENTITY = Representation(md5="m" * 32, etag='"' + "m" * 32 + '"')
IMAGE_ID = "8d5ff07e-3b8b-4c6a-9d77-0f2f2b4dfa0c"
PASSED_RANGE = "imagecache; fwd=uri-miss; detail=range-uncached"


def app_answering(status: str, headers: list[tuple[str, str]], body: Iterable[bytes], seen: list[dict[str, Any]]):
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        seen.append(dict(environ))
        start_response(status, headers)
        return body

    return app


def run(app, selected: ByteRange, environ: dict[str, Any] | None = None) -> tuple[str, dict[str, str], bytes]:
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        captured["status"], captured["headers"] = status, dict(headers)

    base = {"REQUEST_METHOD": "GET", "PATH_INFO": f"/v2/images/{IMAGE_ID}/file", "HTTP_RANGE": "bytes = 5-9",
            "HTTP_IF_RANGE": ENTITY.etag, **(environ or {})}
    body = pass_range(app, base, IMAGE_ID, selected, ENTITY, Passed("range-uncached", Metrics()), start_response)
    try:
        data = b"".join(body)
    finally:
        getattr(body, "close", lambda: None)()
    return captured["status"], captured["headers"], data


def test_the_app_gets_a_plain_range_and_no_if_range() -> None:
    seen: list[dict[str, Any]] = []
    selected = ByteRange(5, 9, len(IMAGE))
    app = app_answering("206 Partial Content", [("Content-Range", "bytes 5-9/200"), ("Content-Length", "5"),
                                                ("ETag", '"theirs"'), ("Content-MD5", "x")], [IMAGE[5:10]], seen)
    status, headers, body = run(app, selected)
    assert seen[0]["HTTP_RANGE"] == "bytes=5-9" and "HTTP_IF_RANGE" not in seen[0]
    assert status == "206 Partial Content" and body == IMAGE[5:10]
    assert headers["ETag"] == ENTITY.etag and headers["Accept-Ranges"] == "bytes" and "Content-MD5" not in headers
    assert headers["Cache-Status"] == PASSED_RANGE


def test_a_whole_image_answer_is_cut_to_the_part() -> None:
    app = app_answering("200 OK", [("Content-Length", "200"), ("Content-MD5", "x"), ("Content-Type", "a/b")],
                        [IMAGE[:7], IMAGE[7:150], IMAGE[150:]], [])
    status, headers, body = run(app, ByteRange(5, 9, len(IMAGE)))
    assert status == "206 Partial Content" and body == IMAGE[5:10]
    assert headers["Content-Range"] == "bytes 5-9/200" and headers["Content-Length"] == "5"
    assert headers["Content-Type"] == "a/b" and "Content-MD5" not in headers


def test_a_whole_image_answer_that_ends_early_breaks_the_transfer() -> None:
    app = app_answering("200 OK", [("Content-Length", "200")], [IMAGE[:7]], [])
    with pytest.raises(OSError, match="ended 3 bytes early"):
        run(app, ByteRange(5, 9, len(IMAGE)))


@pytest.mark.parametrize(("status", "headers"), [
    ("206 Partial Content", [("Content-Range", "bytes 0-4/200")]),  # another part: the app's answer, as it is
    ("206 Partial Content", [("Content-Range", "bytes 5-9/300")]),
    ("404 Not Found", [("Content-Type", "text/plain")]),
    ("416 Requested Range Not Satisfiable", [("Content-Range", "bytes */3")]),
])
def test_other_answers_are_passed_on_as_they_are(status: str, headers: list[tuple[str, str]]) -> None:
    app = app_answering(status, headers, [b"as is"], [])
    got_status, got_headers, body = run(app, ByteRange(5, 9, len(IMAGE)))
    assert (got_status, got_headers, body) == (status, {**dict(headers), "Cache-Status": PASSED_RANGE}, b"as is")


def test_relay_puts_the_nodes_validator_on_image_data_only() -> None:
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        captured[status] = dict(headers)

    theirs = [("ETag", '"theirs"'), ("Content-MD5", "x")]
    passed = Passed("too-large", Metrics())
    status_field = {"Cache-Status": "imagecache; fwd=uri-miss; detail=too-large"}
    for status in ("200 OK", "206 Partial Content", "403 Forbidden"):
        b"".join(relay(status, list(theirs), [b""], start_response, ENTITY, passed, passed.request()))
    assert captured["200 OK"] == {"ETag": ENTITY.etag, "Accept-Ranges": "bytes", "Content-MD5": "x", **status_field}
    assert captured["206 Partial Content"] == {"ETag": ENTITY.etag, "Accept-Ranges": "bytes", **status_field}
    assert captured["403 Forbidden"] == {**dict(theirs), **status_field}
    b"".join(relay("200 OK", list(theirs), [b""], start_response, None, passed, passed.request()))
    assert captured["200 OK"] == {**dict(theirs), **status_field}  # the image unknown: only the Cache-Status


def test_relay_counts_image_data_not_stored_and_keeps_the_apps_cache_status() -> None:
    """The origin's own Cache-Status comes first (nearest the origin), ours last; refusals are not counted."""
    answers: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answers.append((status, headers))

    metrics = Metrics()
    theirs = [("Cache-Status", "OriginCache; hit")]
    cases: list[tuple[str, PassReason, bool]] = [
        ("200 OK", "not-active", False), ("404 Not Found", "no-metadata", False), ("200 OK", "too-large", True)]
    for status, reason, counted in cases:
        passed = Passed(reason, metrics, counted=counted)  # too-large: counted already, by the cache
        b"".join(relay(status, list(theirs), [b"abc"], start_response, None, passed, passed.request()))
    assert [dict(headers)["Cache-Status"] for _, headers in answers] == [
        "OriginCache; hit, imagecache; fwd=bypass; detail=not-active",
        "OriginCache; hit, imagecache; fwd=uri-miss; detail=no-metadata",
        "OriginCache; hit, imagecache; fwd=uri-miss; detail=too-large",
    ]
    samples = {(s.name, tuple(s.labels.values())): s.value
               for family in text_string_to_metric_families(metrics.render()[1].decode()) for s in family.samples}
    assert [samples["imagecache_not_stored_total", (r,)] for r in ("not-active", "no-metadata", "too-large")] \
        == [1, 0, 0]
    assert samples["imagecache_origin_requests_total", ("no-metadata",)] == 1  # forwarded, whatever the answer
    assert samples["imagecache_upstream_bytes_total", ()] == 6  # image bytes only: not the 404's body
