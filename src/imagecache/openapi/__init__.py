"""The node's API contract: ``openapi.yaml`` beside this file, and ``GET /openapi.json`` serving it.

The YAML file is the one source (``docs/openapi.yaml`` is the same file);
the JSON a client fetches is derived from it when first asked for, so the two
cannot disagree.
"""

from __future__ import annotations

from imagecache.openapi.app import OpenAPIApp
from imagecache.openapi.document import DOCUMENT_NAME, load_document

__all__ = ["DOCUMENT_NAME", "OpenAPIApp", "load_document"]
