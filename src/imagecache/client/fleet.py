"""The shape of ``GET /v2/cache/nodes``'s answer, checked before a caller relies on it. Pure.

A node that answers 200 with anything else (an older or foreign server, a
proxy's page) must not become a table of ``None``: the client says the
answer is not one the API sends.
"""

from __future__ import annotations

from typing import Any

#: Every field of a node's copy, and the types it may have.
NODE_FIELDS: dict[str, tuple[type, ...]] = {
    "url": (str,),
    "site": (str,),
    "state": (str,),
    "size": (int, type(None)),
    "bytes": (int,),
    "live": (bool,),
}
STATES = ("cached", "filling")


def _is_node(node: Any) -> bool:
    if not isinstance(node, dict):
        return False
    for name, kinds in NODE_FIELDS.items():
        value = node.get(name)
        # bool is an int to isinstance: a count that is true or false is no count.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            return False
    return node["state"] in STATES


def _is_image(image: Any) -> bool:
    return (
        isinstance(image, dict)
        and isinstance(image.get("image_id"), str)
        and isinstance(image.get("nodes"), list)
        and all(_is_node(node) for node in image["nodes"])
    )


def fleet_images(document: Any) -> list[dict[str, Any]] | None:
    """The ``images`` of an answer of the fleet route, or None when it is not one."""
    images = document.get("images") if isinstance(document, dict) else None
    if not isinstance(images, list) or not all(_is_image(image) for image in images):
        return None
    return images
