"""Which requests the cache filter cares about: pure matching, no I/O.

``PATH_INFO`` arrives percent-decoded, so an encoded traversal such as
``%2e%2e%2f`` is already ``../`` here and fails the id check like any other.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from imagecache.cache.layout import is_image_id


class Action(enum.Enum):
    DOWNLOAD_V2 = "download-v2"  # GET /v2/images/{id}/file
    DOWNLOAD_V1 = "download-v1"  # GET /v1/images/{id}
    DELETE = "delete"  # DELETE /v1|v2/images/{id}
    CHANGE = "change"  # any other write under /v2/images/{id}: forget memoised metadata
    HEAD = "head"  # HEAD of image data (v2 file, v1 image): the app answers, Cache-Status says so


@dataclass(frozen=True)
class ImageRoute:
    action: Action
    image_id: str  # canonical (lower-case) UUID


_V2_FILE = re.compile(r"\A/v2/images/([^/]+)/file/?\Z")
_V1_IMAGE = re.compile(r"\A/v1/images/([^/]+)/?\Z")
_V2_IMAGE = re.compile(r"\A/v2/images/([^/]+)/?\Z")
_V2_UNDER_IMAGE = re.compile(r"\A/v2/images/([^/]+)/.+\Z")

# (method, pattern, action): the first row that matches wins.
_TABLE: tuple[tuple[str, re.Pattern[str], Action], ...] = (
    ("GET", _V2_FILE, Action.DOWNLOAD_V2),
    ("GET", _V1_IMAGE, Action.DOWNLOAD_V1),
    ("HEAD", _V2_FILE, Action.HEAD),
    ("HEAD", _V1_IMAGE, Action.HEAD),
    ("DELETE", _V2_IMAGE, Action.DELETE),
    ("DELETE", _V1_IMAGE, Action.DELETE),
    ("PATCH", _V2_IMAGE, Action.CHANGE),
    ("PUT", _V2_UNDER_IMAGE, Action.CHANGE),
    ("POST", _V2_UNDER_IMAGE, Action.CHANGE),
)


def match(method: str, path: str) -> ImageRoute | None:
    """The filter's route for a request, or None to pass it through untouched.

    Ids that are not UUIDs never match: such requests go to the app, which
    answers them, and never come near the cache directory.
    """
    for route_method, pattern, action in _TABLE:
        if method != route_method:
            continue
        found = pattern.match(path)
        if found is None:
            continue
        candidate = found.group(1).lower()
        return ImageRoute(action, candidate) if is_image_id(candidate) else None
    return None
