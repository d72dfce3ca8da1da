"""``GET /openapi.json``: the node's OpenAPI document, open to anyone like ``/versions``."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from imagecache.http.errors import send_error
from imagecache.http.types import StartResponse, WSGIEnvironment
from imagecache.openapi.document import load_document, render_json


class OpenAPIApp:
    """Serves the document as JSON; it is read and rendered on the first request, then kept."""

    #: The methods the route answers (the route-table test reads them too).
    METHODS = ("GET", "HEAD")

    def __init__(self, load: Callable[[], bytes] | None = None) -> None:
        self._load = load if load is not None else (lambda: render_json(load_document()))
        self._body: bytes | None = None
        self._lock = threading.Lock()

    def body(self) -> bytes:
        """The rendered document (read once per app)."""
        with self._lock:
            if self._body is None:
                self._body = self._load()
            return self._body

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in self.METHODS:
            allowed = ", ".join(self.METHODS)
            return send_error(environ, start_response, 405, f"Use {allowed}.", [("Allow", allowed)])
        body = self.body()
        start_response("200 OK", [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-cache"),
        ])
        return [] if method == "HEAD" else [body]
