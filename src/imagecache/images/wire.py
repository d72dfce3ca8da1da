"""JSON in and out of the image service: request bodies, query strings, responses."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from typing import Any

import webob

from imagecache.images.body import read_body
from imagecache.images.parsing import load_json

#: Largest JSON request body accepted (create and patch documents are small).
MAX_JSON_BODY = 1 << 20


def json_response(document: Any, status: int = 200) -> webob.Response:
    body = json.dumps(document, ensure_ascii=False).encode("utf-8")
    return webob.Response(body=body, status=status, content_type="application/json", charset="UTF-8")


def query_pairs(environ: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Query parameters in order; undecodable bytes become U+FFFD rather than errors."""
    query = environ.get("QUERY_STRING", "")
    raw = query.encode("latin-1", "replace").decode("utf-8", "replace")
    return urllib.parse.parse_qsl(raw, keep_blank_values=True)


def json_body(request: webob.Request) -> Any:
    """The request's JSON document; 400 or 413 (a Refusal) when it cannot be read as one."""
    return load_json(read_body(request.environ, MAX_JSON_BODY))
