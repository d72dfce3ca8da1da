"""PeerEndpoint: what other nodes of the cluster read images from (docs/peer-fill.md).

``GET`` (and ``HEAD``) ``/peer/v1/images/{image_id}`` with the cluster's
``X-Imagecache-Peer-Token``: the verified cached file, else the fill in
progress as a local follower reads it (its last byte held until the image
is verified), from ``Range: bytes=<offset>-`` when asked.  A WSGI filter in
front of the user authentication: a peer has no user token, and a user's
token opens nothing here.

What it never does: start a fill, ask the image service, or ask another
peer.  A node that has neither the file nor a fill says 404 and the peer
moves on; it is the peer's own fill that verifies what it receives.  The
answer carries no user-visible metadata beyond the image's size, and says
in its ``Cache-Status`` whether it is the verified file (``hit``) or the fill
in progress (``fwd=miss; collapsed``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import BinaryIO

from imagecache.cache import ImageCache, ImageNotCached, InvalidImageId, TailReader
from imagecache.cache.fill_size import recorded_size
from imagecache.cache.layout import validate_image_id
from imagecache.config import Settings
from imagecache.http import ranges
from imagecache.http.cache_status import CacheStatus, with_status
from imagecache.http.errors import send_error
from imagecache.http.file_body import FileRangeBody
from imagecache.http.types import StartResponse, WSGIApplication, WSGIEnvironment
from imagecache.metrics import Metrics
from imagecache.peers import protocol
from imagecache.peers.fill_body import PeerFillBody

__all__ = ["PeerEndpoint"]

LOG = logging.getLogger(__name__)

_OCTET_STREAM = "application/octet-stream"
#: What a 401 of this endpoint challenges for (RFC 9110 requires a challenge on every 401).
CHALLENGE = ("WWW-Authenticate", 'Token realm="imagecache-peers"')
#: The methods the endpoint answers.
METHODS = ("GET", "HEAD")
ALLOW = ("Allow", ", ".join(METHODS))
_FILE = CacheStatus(hit=True)
_FILL = CacheStatus(fwd="miss", collapsed=True)


class PeerEndpoint:
    """The peer endpoint over ``app``, which gets every other request untouched."""

    def __init__(self, app: WSGIApplication, cache: ImageCache, settings: Settings, metrics: Metrics) -> None:
        if not settings.peer_token:
            raise ValueError("the peer endpoint needs the cluster's peer_token")
        self.app = app
        self.cache = cache
        self.metrics = metrics
        self._token = settings.peer_token

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        raw_id = protocol.path_image_id(environ.get("PATH_INFO", ""))
        if raw_id is None:
            return self.app(environ, start_response)
        presented = environ.get(protocol.TOKEN_KEY)
        if not protocol.token_matches(presented, self._token):
            LOG.info("refused a peer request from %s: %s", environ.get("REMOTE_ADDR", "an unknown address"),
                     "no peer token" if presented is None else "a wrong peer token")
            message = f"This is the cluster's peer endpoint: {protocol.TOKEN_HEADER} is missing or wrong."
            return send_error(environ, start_response, 401, message, [CHALLENGE])
        if environ.get("REQUEST_METHOD") not in METHODS:
            return send_error(environ, start_response, 405, "The peer endpoint answers GET and HEAD only.", [ALLOW])
        try:
            image_id = validate_image_id(raw_id)
            offset = protocol.requested_offset(environ.get("HTTP_RANGE"))
        except (InvalidImageId, protocol.BadRange) as exc:
            return send_error(environ, start_response, 400, str(exc))
        return self._serve(environ, start_response, image_id, offset)

    def _serve(
        self, environ: WSGIEnvironment, start_response: StartResponse, image_id: str, offset: int | None
    ) -> Iterable[bytes]:
        """The cached file, else the fill, else 404 (a fill may publish between the two looks)."""
        for _ in range(2):
            fh = self._open_cached(image_id)
            if fh is not None:
                return self._send_file(environ, start_response, fh, offset)
            reader = self.cache.follow(image_id, recorded_size(self.cache.layout, image_id))
            if reader is not None:
                return self._send_fill(environ, start_response, reader, offset)
            if not self.cache.is_cached(image_id):
                break
        return send_error(environ, start_response, 404, f"Image {image_id} is neither cached nor being cached here.")

    def _open_cached(self, image_id: str) -> BinaryIO | None:
        try:
            return self.cache.open_cached(image_id)
        except ImageNotCached:
            return None
        except OSError:
            LOG.exception("cannot open cached image %s for a peer", image_id)
            return None

    def _send_file(
        self, environ: WSGIEnvironment, start_response: StartResponse, fh: BinaryIO, offset: int | None
    ) -> Iterable[bytes]:
        try:
            selected = protocol.select(offset, os.fstat(fh.fileno()).st_size)
            answered = self._start(environ, start_response, selected, _FILE)
        except BaseException:
            fh.close()
            raise
        if answered is not None or isinstance(selected, protocol.Unknown | ranges.Unsatisfiable):
            fh.close()
            return answered or []
        return FileRangeBody(fh, selected.first, selected.length, on_bytes=self.metrics.peer_served_bytes.inc)

    def _send_fill(
        self, environ: WSGIEnvironment, start_response: StartResponse, reader: TailReader, offset: int | None
    ) -> Iterable[bytes]:
        try:
            selected = protocol.select(offset, reader.size)
            answered = self._start(environ, start_response, selected, _FILL)
        except BaseException:
            reader.close()
            raise
        if answered is not None or isinstance(selected, ranges.Unsatisfiable):
            reader.close()
            return answered or []
        return PeerFillBody(reader, selected.first, self.metrics.peer_served_bytes.inc)

    def _start(
        self, environ: WSGIEnvironment, start_response: StartResponse, selected: ranges.Selection | protocol.Unknown,
        cache_status: CacheStatus,
    ) -> list[bytes] | None:
        """Start the answer for ``selected``: None when the image's bytes follow, else the whole answer's body
        (a 416's, or nothing for a HEAD)."""
        if isinstance(selected, ranges.Unsatisfiable):
            message = f"Image of {selected.size} bytes: nothing to send from that offset."
            extra = [("Content-Range", selected.content_range), (protocol.SIZE_HEADER, str(selected.size))]
            return send_error(environ, start_response, 416, message, extra)
        headers = [("Content-Type", _OCTET_STREAM)]
        if isinstance(selected, protocol.Unknown):
            headers.append(("Accept-Ranges", "bytes"))
            start_response("200 OK", with_status(headers, cache_status))
        else:
            headers += [(protocol.SIZE_HEADER, str(selected.size)), *ranges.response_headers(selected, None)]
            start_response(ranges.status_line(selected), with_status(headers, cache_status))
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else None
