"""Reading the OpenAPI document shipped inside the package.

The source is YAML because people edit and review it (comments, anchors for
the responses several routes share); PyYAML, a declared dependency, reads it
with libyaml's safe loader where the wheel has one (tens of milliseconds,
once per worker, on the first request for it).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import yaml

#: The document's file name inside this package (also ``docs/openapi.yaml``).
DOCUMENT_NAME = "openapi.yaml"

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def document_text() -> str:
    """The YAML source, as packaged."""
    return resources.files(__package__).joinpath(DOCUMENT_NAME).read_text(encoding="utf-8")


def parse(text: str) -> dict[str, Any]:
    """The document in ``text`` as plain JSON-able data (YAML anchors resolved)."""
    document = yaml.load(text, Loader=_LOADER)  # a safe loader: plain data only
    if not isinstance(document, dict):
        raise ValueError("the OpenAPI document is not a mapping")
    return document


def load_document() -> dict[str, Any]:
    """The packaged document, parsed (a fresh copy each call)."""
    return parse(document_text())


def render_json(document: dict[str, Any]) -> bytes:
    """The bytes ``GET /openapi.json`` sends."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
