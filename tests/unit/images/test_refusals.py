"""Refusals are raised where they are decided and answered once, at the app's entry, Glance-style."""

from __future__ import annotations

import pickle
import uuid

import pytest
import webob
import webob.exc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagecache.http.context import RequestContext, set_context
from imagecache.images import ImagesApp
from imagecache.images.refusals import Refusal, bad_request, conflict, forbidden, not_found

from .conftest import ALICE, Client

#: The error statuses webob renders itself (others would be answered as a 400).
ERROR_STATUSES = sorted(code for code in webob.exc.status_map if code >= 400)
#: Statuses whose webob page has its own text in place of the explanation (as Glance's have).
OWN_TEXT = (405, 406, 415, 501)


def test_factories_and_what_a_refusal_carries() -> None:
    assert [(r.status, r.message) for r in (bad_request("b"), forbidden("f"), not_found("n"), conflict("c"))] == [
        (400, "b"),
        (403, "f"),
        (404, "n"),
        (409, "c"),
    ]
    refusal = Refusal(415, "no", (("Accept-Patch", "x"),))
    assert isinstance(refusal, Exception)
    assert refusal.headers == (("Accept-Patch", "x"),)
    assert str(refusal) == "415 no"
    copy = pickle.loads(pickle.dumps(refusal))
    assert (copy.status, copy.message, copy.headers) == (415, "no", (("Accept-Patch", "x"),))


@pytest.mark.parametrize(
    ("accept", "content_type", "body"),
    [
        (None, "text/plain; charset=UTF-8", b"404 Not Found\n\nThe resource could not be found.\n\n   "),
        ("text/plain", "text/plain; charset=UTF-8", b"404 Not Found\n\nThe resource could not be found.\n\n   "),
        (
            "application/json",
            "application/json",
            b'{"message": "The resource could not be found.<br /><br />\\n\\n\\n", '
            b'"code": "404 Not Found", "title": "Not Found"}',
        ),
        (
            "text/html",
            "text/html; charset=UTF-8",
            b"<html>\n <head>\n  <title>404 Not Found</title>\n </head>\n <body>\n  <h1>404 Not Found</h1>\n"
            b"  The resource could not be found.<br /><br />\n\n\n\n </body>\n</html>",
        ),
    ],
)
def test_error_pages_are_webobs_in_the_kind_the_client_accepts(
    client: Client, accept: str | None, content_type: str, body: bytes
) -> None:
    headers = {"Accept": accept} if accept else {}
    response = client.request("GET", "/no/such/resource", headers=headers)
    assert response.status == "404 Not Found"
    assert response.content_type == content_type.partition(";")[0]
    assert response.headers["Content-Type"] == content_type
    assert response.body == body


def test_extra_headers_go_with_the_refusal(client: Client) -> None:
    response = client.request("DELETE", "/versions")
    assert response.status_int == 405
    assert response.headers["Allow"] == "GET"


def test_a_refusal_from_the_database_layer_is_answered_at_the_entry(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(image: object) -> None:
        raise conflict("Taken, as the database found out.")

    monkeypatch.setattr(client.app.db, "insert", refuse)
    response = client.request("POST", "/v2/images", json_body={"name": "x"})
    assert response.status_int == 409
    assert "Taken, as the database found out." in response.text


def test_any_other_failure_is_a_bare_500(app: ImagesApp, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(image_id: str) -> None:
        raise RuntimeError("a secret detail")

    monkeypatch.setattr(app.db, "get", broken)
    request = webob.Request.blank(f"/v2/images/{uuid.uuid4()}")
    set_context(request.environ, ALICE)
    response = request.get_response(app)
    assert response.status_int == 500
    assert "The server could not complete the request." in response.text
    assert "secret" not in response.text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    status=st.sampled_from(ERROR_STATUSES),
    message=st.text(alphabet=st.characters(categories=["L", "N"]) | st.just(" "), min_size=1, max_size=40),
    extra=st.lists(st.sampled_from(["X-One", "X-Two", "Retry-After"]), unique=True, max_size=2),
)
def test_whatever_a_handler_raises_is_its_answer(
    app: ImagesApp, monkeypatch: pytest.MonkeyPatch, status: int, message: str, extra: list[str]
) -> None:
    headers = tuple((name, f"value-{i}") for i, name in enumerate(extra))
    refusal = Refusal(status, message, headers)

    def refuse(context: RequestContext, image_id: str) -> None:
        raise refusal

    monkeypatch.setattr(app.catalog, "find", refuse)
    request = webob.Request.blank(f"/v2/images/{uuid.uuid4()}", headers={"Accept": "text/plain"})
    response = request.get_response(app)
    assert response.status_int == status
    for name, value in headers:
        assert response.headers[name] == value
    if status not in OWN_TEXT:
        assert message.strip() in response.text
