"""The server's one JSON error: its bytes, its headers, its WSGI answer."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from imagecache.http.errors import error_answer, error_body, send_error

STATUSES = st.sampled_from([s.value for s in HTTPStatus if s.value >= 400])


def test_the_body_byte_for_byte() -> None:
    assert error_body(404, "No such image cache resource.") == (
        b'{"error": {"code": 404, "title": "Not Found", "message": "No such image cache resource."}}'
    )


def test_the_answer_names_its_type_and_length_first_then_the_extra_headers() -> None:
    answer = error_answer(503, "busy", [("Retry-After", "5"), ("Connection", "close")])
    assert answer.status == "503 Service Unavailable"
    assert answer.headers == [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(answer.body))),
        ("Retry-After", "5"),
        ("Connection", "close"),
    ]


@given(status=STATUSES, message=st.text())
def test_any_status_and_message_round_trip(status: int, message: str) -> None:
    answer = error_answer(status, message)
    phrase = HTTPStatus(status).phrase
    assert json.loads(answer.body) == {"error": {"code": status, "title": phrase, "message": message}}
    assert answer.status == f"{status} {phrase}"
    assert answer.body.isascii()  # non-ASCII is escaped, so the length is the length on the wire
    assert dict(answer.headers)["Content-Length"] == str(len(answer.body))


def _call(method: str) -> tuple[list[Any], list[bytes]]:
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.append((status, headers))
        return lambda _data: None

    body = send_error({"REQUEST_METHOD": method}, start_response, 401, "who?", [("WWW-Authenticate", "Token")])
    return started, body


def test_send_error_answers_get_with_the_body_and_head_without() -> None:
    started, body = _call("GET")
    answer = error_answer(401, "who?", [("WWW-Authenticate", "Token")])
    assert started == [(answer.status, answer.headers)] and body == [answer.body]
    started, body = _call("HEAD")
    assert started == [(answer.status, answer.headers)] and body == []
