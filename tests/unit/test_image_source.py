"""ImageSource releases the app's body even when nobody reads it."""

from __future__ import annotations

from imagecache.wsgi.image_source import ImageSource


class TrackedBody:
    def __init__(self) -> None:
        self.closed = False

    def __iter__(self):
        yield b"data"

    def close(self) -> None:
        self.closed = True


def test_an_unread_data_body_is_still_closed():
    body = TrackedBody()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "4")])
        return body

    status, _, chunks = ImageSource(app).data({}, "12345678-1234-1234-1234-123456789abc")
    assert status == 200
    chunks.close()  # e.g. the cache refused the fill before reading
    assert body.closed


def test_a_read_body_yields_the_apps_bytes():
    def app(environ, start_response):
        start_response("200 OK", [])
        return [b"a", b"b"]

    _, _, chunks = ImageSource(app).data({}, "12345678-1234-1234-1234-123456789abc")
    assert b"".join(chunks) == b"ab"
