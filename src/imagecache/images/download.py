"""Image data as an HTTP answer: the whole file, a part of it, or 416.

The embedded image service's v1 and v2 downloads both answer here, by the
node's one Range rule (:func:`imagecache.http.ranges.select`), the same rule
the cache filter applies to hits: an answer never depends on whether a
cache in front of this app holds the image.
"""

from __future__ import annotations

import logging
import os
from typing import BinaryIO

import webob

from imagecache.http import ranges
from imagecache.http.file_body import CHUNK_SIZE, FileRangeBody
from imagecache.images.model import Image

LOG = logging.getLogger(__name__)

_OCTET_STREAM = "application/octet-stream"


def file_response(
    request: webob.Request,
    image: Image,
    file: BinaryIO,
    headers: list[tuple[str, str]],
    *,
    content_md5: str | None = None,
) -> webob.Response:
    """``file`` (the image's open data, closed here or by the body) as the answer to ``request``.

    ``headers`` go with every 200 and 206 (v1's ``x-image-meta-*``);
    ``content_md5`` only with a whole-image 200, where it is the body's digest.
    """
    try:
        size = os.fstat(file.fileno()).st_size
        if image.size is not None and size != image.size:
            LOG.error("image %s: file has %d bytes, metadata says %d", image.id, size, image.size)
        etag = ranges.entity_tag(image.checksum)
        selected = ranges.select(request.headers.get("Range"), request.headers.get("If-Range"), size, etag)
        status = ranges.status_line(selected)
        if isinstance(selected, ranges.Unsatisfiable):
            file.close()
            return webob.Response(status=status, headerlist=ranges.response_headers(selected, etag), app_iter=[b""])
        content = ranges.response_headers(selected, etag, content_md5=content_md5)
        wrapper = request.environ.get("wsgi.file_wrapper")
        if isinstance(selected, ranges.Whole) and wrapper is not None:
            body = wrapper(file, CHUNK_SIZE)  # the server may sendfile() it
        else:
            body = FileRangeBody(file, selected.first, selected.length)
        # app_iter given at once: assigning it later would drop the Content-Length.
        return webob.Response(
            status=status, headerlist=[*headers, ("Content-Type", _OCTET_STREAM), *content], app_iter=body
        )
    except BaseException:
        file.close()
        raise
