"""The pieces of a cache API URL: image ids as path segments, doc roots, version segments. Pure."""

from __future__ import annotations

import re
from urllib.parse import quote

#: A path segment that names an API version (``v1``, ``v2.1``).
VERSION_SEGMENT = re.compile(r"v\d+(\.\d+)*")


def quote_image_id(image_id: str) -> str:
    """``image_id`` as one path segment, whatever it contains.

    Every reserved character is percent-encoded, dots too: urllib3 removes
    ``.``/``..`` segments, so an id of ``..`` would otherwise address the
    collection above it.  The server decides whether the id is valid.
    """
    if not isinstance(image_id, str):
        raise TypeError(f"an image id is a string, not {type(image_id).__name__}")
    if not image_id:
        # An empty segment would name the collection: DELETE it means "all".
        raise ValueError("an image id must not be empty")
    return quote(image_id, safe="").replace(".", "%2E")


def normalize_doc_root(doc_root: str) -> str:
    """``'v2'``, ``'/v2/'`` -> ``'/v2'``; ``''`` stays the root."""
    stripped = doc_root.strip("/")
    return f"/{stripped}" if stripped else ""
