"""Reading a request body from ``wsgi.input``, with or without Content-Length.

python-glanceclient uploads image data with ``Transfer-Encoding: chunked`` and
no Content-Length.  Servers that accept chunked requests (gunicorn) hand the
body to the app already de-chunked through ``wsgi.input`` and signal its end
with EOF, so without a Content-Length we read until EOF; with one we read
exactly that many bytes and treat an early EOF as a broken upload.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from imagecache.images.refusals import Refusal

CHUNK_SIZE = 1 << 20


class BodyError(Refusal):
    """The request body could not be read as announced (a client-side failure: 400 or 413)."""


def declared_length(environ: Mapping[str, Any]) -> int | None:
    """Content-Length as an int, None when absent; BodyError when malformed."""
    raw = str(environ.get("CONTENT_LENGTH") or "").strip()
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit():
        raise BodyError(400, "Invalid Content-Length header.")
    return int(raw)


def _read(stream: Any, size: int) -> bytes:
    try:
        data = stream.read(size)
    except Exception as exc:  # each server raises its own kind (gunicorn: NoMoreData, ...)
        raise BodyError(400, f"Could not read the request body: {exc.__class__.__name__}") from exc
    if not isinstance(data, bytes):
        raise BodyError(400, "Could not read the request body.")
    return data


def body_chunks(
    environ: Mapping[str, Any], chunk_size: int = CHUNK_SIZE, limit: int | None = None
) -> Iterator[bytes]:
    """The request body in chunks of at most ``chunk_size`` bytes.

    Raises :class:`BodyError` (413) past ``limit`` bytes, and (400) when the
    body ends before its Content-Length or the server's input stream fails.
    """
    length = declared_length(environ)
    if limit is not None and length is not None and length > limit:
        raise BodyError(413, f"Request body is larger than {limit} bytes.")
    stream = environ.get("wsgi.input")
    if stream is None:
        return
    received = 0
    while length is None or received < length:
        wanted = chunk_size if length is None else min(chunk_size, length - received)
        data = _read(stream, wanted)
        if not data:
            if length is not None:
                raise BodyError(400, f"Incomplete request body: got {received} of {length} bytes.")
            return
        received += len(data)
        if limit is not None and received > limit:
            raise BodyError(413, f"Request body is larger than {limit} bytes.")
        yield data


def read_body(environ: Mapping[str, Any], limit: int) -> bytes:
    """The whole (small) request body; BodyError as for :func:`body_chunks`."""
    return b"".join(body_chunks(environ, limit=limit))
