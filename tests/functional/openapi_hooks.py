"""Schemathesis hooks for the fuzzing run (loaded by ``SCHEMATHESIS_HOOKS``).

Glance's JSON patch media types are JSON documents under names of their own,
which schemathesis cannot know: they are sent as JSON.

The stateful phase links operations by the ids they share, the document's
own links and the ones schemathesis infers.  It tells a deleted resource
from a missing one by path: a successful ``DELETE`` of a path removes what
lies below it.  The legacy ``DELETE /v1/images/{image_id}`` removes the very
image ``/v2/images/{image_id}`` names, under another path, so a scenario that
went through it and then used the image's v2 links would be reported as "a
created resource not found" (ST302) although the node did what it was asked.
So no link leads into the legacy delete: those of the document go when it
is loaded, the inferred ones right after schemathesis injects them.  The legacy delete
is still fuzzed in every phase, with ids that no v2 link handed out.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import schemathesis

schemathesis.serializer.alias(
    ["application/openstack-images-v2.1-json-patch", "application/openstack-images-v2.0-json-patch"],
    "application/json",
)

#: The operation no link may lead to (see the module docstring).
LEGACY_DELETE_ID = "deleteImageV1"
LEGACY_DELETE_REF = "#/paths/~1v1~1images~1{image_id}/delete"


def _links(raw: dict[str, Any], keyword: str) -> Iterator[dict[str, Any]]:
    """Every links table of every response in the raw document."""
    for item in raw.get("paths", {}).values():
        if not isinstance(item, dict):
            continue
        for operation in item.values():
            responses = operation.get("responses") if isinstance(operation, dict) else None
            for response in (responses or {}).values():
                links = response.get(keyword) if isinstance(response, dict) else None
                if isinstance(links, dict):
                    yield links


def _into_legacy_delete(link: Any) -> bool:
    return isinstance(link, dict) and (link.get("operationId") == LEGACY_DELETE_ID
                                       or link.get("operationRef") == LEGACY_DELETE_REF)


def _drop_links_into_legacy_delete(schema: Any) -> None:
    for links in _links(schema.raw_schema, schema.adapter.links_keyword):
        for name in [name for name, link in links.items() if _into_legacy_delete(link)]:
            del links[name]
    schema._operations.clear_cache()  # operations built before still hold the links


@schemathesis.hook
def after_load_schema(context: Any, schema: Any) -> None:
    """The document's links into the legacy delete go now, the inferred ones as soon as they are injected.

    The inferred links are injected when a phase first needs them (after the
    node's base URL is known), by the schema's analysis: its class is given
    a subclass (no state of its own) whose injection drops them afterwards.
    """
    analysis = getattr(schema, "analysis", None)
    if analysis is None:
        return
    _drop_links_into_legacy_delete(schema)
    base = type(analysis)

    class Analysis(base):  # type: ignore[misc,valid-type]
        __slots__ = ()

        def inject_links(self) -> int:
            injected: int = super().inject_links()
            _drop_links_into_legacy_delete(self.schema)
            return injected

    analysis.__class__ = Analysis
