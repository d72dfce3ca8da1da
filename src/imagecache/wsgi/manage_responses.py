"""The answers of the cache management API: JSON bodies (whole or streamed), empty ones, errors.

Shared by :mod:`~imagecache.wsgi.cache_manage` and :mod:`~imagecache.wsgi.pins_api`.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterable, Iterator
from typing import Any

from webob import Response

from imagecache.http.errors import JSON, error_answer


def json_response(body: Any, status: int = 200) -> Response:
    # webob adds no charset to application/json.
    return Response(status=status, content_type=JSON, body=json.dumps(body).encode("utf-8"))


def streamed_json_response(chunks: Generator[bytes, None, None]) -> Response:
    """A 200 whose JSON body is sent as it is encoded.

    The first chunk is made here, before the answer starts, so what fails
    to begin (an index failing its query) raises to the caller and is
    answered as any failure is, never as a 200 cut short.  No
    Content-Length: gunicorn sends it chunked to HTTP/1.1 clients (the
    connection stays open for the next request) and ends an HTTP/1.0
    client's answer by closing.
    """
    first = next(chunks, b"")
    return Response(status=200, content_type=JSON, app_iter=_then(first, chunks))


def _then(first: bytes, rest: Generator[bytes, None, None]) -> Iterator[bytes]:
    """``first``, then ``rest``; closing this closes ``rest`` (its query ends with it)."""
    try:
        yield first
        yield from rest
    finally:
        rest.close()


def empty_response(status: int) -> Response:
    """A response without a body (204 carries no Content-Length at all)."""
    response = Response(status=status)
    del response.content_type
    if status != 204:
        response.content_length = 0
    return response


def error_response(status: int, message: str, extra: Iterable[tuple[str, str]] = ()) -> Response:
    """The server's JSON error (:mod:`imagecache.http.errors`), which glanceclient shows as it is."""
    answer = error_answer(status, message, extra)
    return Response(status=answer.status, headerlist=answer.headers, app_iter=[answer.body])

