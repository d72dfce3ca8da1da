"""Schemathesis hooks for the fuzzing run (loaded by ``SCHEMATHESIS_HOOKS``).

Glance's JSON patch media types are JSON documents under names of their own,
which schemathesis cannot know: they are sent as JSON.
"""

from __future__ import annotations

import schemathesis

schemathesis.serializer.alias(
    ["application/openstack-images-v2.1-json-patch", "application/openstack-images-v2.0-json-patch"],
    "application/json",
)
