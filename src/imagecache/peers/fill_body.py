"""A fill in progress sent to a peer node, from an offset on: :class:`PeerFillBody`.

Like a local follower's body, the worker sends it from its event loop
(``next_run``) while the file grows and a thread finishes it (``pieces``),
and its last byte waits until the image is verified.  Unlike it, nothing is
fetched elsewhere when the fill stops: the peer's own fill moves on to
another source from where the body was cut off, so here the response is
only cut off, visibly (the connection is reset before the body's end).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Literal, TypeVar

from imagecache.cache import FillFailed, ImageVerificationError, TailReader
from imagecache.cache.tail import Edge

LOG = logging.getLogger(__name__)

#: (descriptor, offset, length) of a run of the file that may be sent now.
Run = tuple[int, int, int]
T = TypeVar("T")
_EDGES: dict[Edge, Literal["wait", "handoff"]] = {Edge.WAIT: "wait", Edge.HANDOFF: "handoff"}


class PeerResponseCut(ConnectionResetError):
    """The fill being sent stopped or failed verification: the peer's response is cut off.

    ECONNRESET, so the worker drops the connection without a traceback: the
    fill has logged its own failure already.
    """


class PeerFillBody:
    """The image's bytes from ``offset`` as its fill writes them, the last one after verification.

    ``on_bytes(n)`` counts what was sent (a server sending runs itself calls
    :meth:`on_bytes` too).  Of a fill whose size is not known the reader
    cannot tell the last byte, so the last byte on disk is held back here
    until the fill is verified: a peer never holds a whole image that then
    fails verification, whatever framing the answer has.
    """

    def __init__(self, reader: TailReader, offset: int, on_bytes: Callable[[int], None]) -> None:
        if offset < 0:
            raise ValueError(f"not an offset: {offset}")
        reader.offset = offset  # the reader hands out runs from here on
        self._reader = reader
        self._on_bytes = on_bytes

    def __iter__(self) -> Iterator[bytes]:
        for _fd, offset, length in self.pieces():
            for chunk in self._cut_on_failure(self._reader.read(offset, length)):
                self._on_bytes(len(chunk))
                yield chunk

    def on_bytes(self, n: int) -> None:
        self._on_bytes(n)

    # -- for a server that sends the runs itself, from its loop --------------------------
    def next_run(self) -> Run | Literal["wait", "handoff"]:
        """A run to send now, ``"wait"`` (see :meth:`call_on_change`) or ``"handoff"`` (go on with :meth:`pieces`)."""
        run = self._reader.next_run()
        if isinstance(run, Edge):
            return _EDGES[run]
        return (self._reader.fd, *run)

    def call_on_change(self, callback: Callable[[], None]) -> bool:
        """After ``"wait"``: ``callback()``, from another thread, once the fill moves; False if it moved already."""
        return self._reader.call_on_change(callback)

    def pieces(self) -> Iterator[Run]:
        """The rest as runs of the file, in order; ends once the image is verified, else raises PeerResponseCut.

        A run counts as sent once the next one is asked for; the reader is
        closed when the fill is over, after the last run was sent.
        """
        try:
            runs = self._reader.pieces() if self._reader.size is not None else self._held_back()
            for offset, length in self._cut_on_failure(runs):
                yield self._reader.fd, offset, length
        finally:
            self._reader.close()

    def _held_back(self) -> Iterator[tuple[int, int]]:
        """The reader's runs less the last byte on disk, which comes once the fill ended verified."""
        start = end = self._reader.offset
        for offset, length in self._reader.pieces():
            end = offset + length
            if end - 1 > start:
                yield start, end - 1 - start
                start = end - 1
        if end > start:
            yield start, end - start

    def _cut_on_failure(self, items: Iterable[T]) -> Iterator[T]:
        """``items``, with the fill's failure turned into the cut-off of the response."""
        image_id = self._reader.image_id
        try:
            yield from items
        except ImageVerificationError as exc:
            raise PeerResponseCut(errno.ECONNRESET, f"cut off a peer's read of image {image_id}: {exc}") from exc
        except FillFailed as exc:
            LOG.info("cut off a peer's read of image %s: %s", image_id, exc)
            raise PeerResponseCut(errno.ECONNRESET, f"the fill of image {image_id} stopped") from exc

    def close(self) -> None:
        self._reader.close()
