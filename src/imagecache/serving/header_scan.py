"""Has a request's header arrived whole, and is it within limits?  No I/O.

The worker reads a connection's first bytes on its event loop, without a
thread, and hands the connection to a thread only once the whole header is
buffered.  :func:`scan` decides, from the bytes so far, which of three
things is true: more is needed, the header is complete (with its method and
path, so health checks can take their own lane), or the client broke a
limit (answered 431 or 400 and closed).  The full parse stays gunicorn's,
on the thread; this only finds the end and enforces the sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Complete", "HeaderLimits", "Incomplete", "Refused", "scan"]

_END = b"\r\n\r\n"


@dataclass(frozen=True)
class HeaderLimits:
    """Sizes a request header may reach (gunicorn's names and defaults)."""

    #: Bytes in the request line.
    limit_request_line: int = 8190
    #: Number of header fields.
    limit_request_fields: int = 100
    #: Bytes in one header field line.
    limit_request_field_size: int = 8190

    @property
    def max_header_bytes(self) -> int:
        """The most a complete header can take: every line at its limit."""
        return (self.limit_request_line + 2) + self.limit_request_fields * (self.limit_request_field_size + 2) + 2


@dataclass(frozen=True)
class Incomplete:
    """Nothing wrong yet: wait for more bytes."""


@dataclass(frozen=True)
class Complete:
    """The header ends within the buffer; ``length`` bytes of it are the header."""

    method: str
    path: str
    length: int


@dataclass(frozen=True)
class Refused:
    """The client broke a limit: answer ``status`` and close."""

    status: int
    reason: str


INCOMPLETE = Incomplete()


def _request_target(line: bytes) -> tuple[str, str] | None:
    parts = line.split(b" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        return None
    method, target = parts[0], parts[1]
    if not method.isalpha() or not method.isupper():
        return None
    path = target.split(b"?", 1)[0]
    try:
        return method.decode("ascii"), path.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - ascii letters only, checked above
        return None


def scan(buffer: bytes, limits: HeaderLimits) -> Incomplete | Complete | Refused:
    """What ``buffer`` (a connection's first bytes) says about its request header.

    Empty lines before the request line are allowed (RFC 9112 section 2.2).
    A line longer than its limit is refused even before the header ends, so
    a client cannot make the node buffer more than the limits allow.
    """
    start = 0
    while buffer.startswith(b"\r\n", start):
        start += 2
    if start > limits.limit_request_line:
        return Refused(400, "Bad request line")  # an endless run of empty lines
    first_end = buffer.find(b"\r\n", start)
    line_end = len(buffer) if first_end < 0 else first_end
    if line_end - start > limits.limit_request_line:
        return Refused(414, "Request line too long")
    if first_end < 0:
        return INCOMPLETE
    target = _request_target(buffer[start:first_end])
    if target is None:
        return Refused(400, "Bad request line")
    end = buffer.find(_END, first_end)
    header_end = len(buffer) if end < 0 else end + 2  # through the last field's CRLF
    fields = buffer[first_end + 2:header_end].split(b"\r\n")
    if fields and fields[-1] in (b"", b"\r"):
        fields.pop()  # nothing yet after the last CRLF, or the start of the empty line that ends the header
    # While incomplete, the last field may still be growing: count it too.
    if len(fields) > limits.limit_request_fields:
        return Refused(431, "Too many header fields")
    if any(len(field) > limits.limit_request_field_size for field in fields):
        return Refused(431, "Header field too large")
    if end < 0:
        return INCOMPLETE
    return Complete(method=target[0], path=target[1], length=end + 4)
