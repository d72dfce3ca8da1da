"""header_scan.scan: finds the end of a request header and holds the limits, fed any way."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from imagecache.serving.header_scan import Complete, HeaderLimits, Incomplete, Refused, scan

LIMITS = HeaderLimits(limit_request_line=100, limit_request_fields=5, limit_request_field_size=40)

field_names = st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=10)
field_values = st.text("abcdefghijklmnopqrstuvwxyz0123456789 /.", max_size=20)
paths = st.text("abcdefghijklmnopqrstuvwxyz0123456789/._-", min_size=0, max_size=30).map(lambda p: "/" + p)


@st.composite
def headers(draw: st.DrawFn) -> tuple[bytes, str, str]:
    method = draw(st.sampled_from(["GET", "PUT", "DELETE", "HEAD", "POST"]))
    path = draw(paths)
    query = draw(st.sampled_from(["", "?limit=1", "?a=b&c=d"]))
    fields = draw(st.lists(st.tuples(field_names, field_values), max_size=LIMITS.limit_request_fields))
    head = f"{method} {path}{query} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields) + "\r\n"
    return head.encode(), method, path


@given(headers(), st.binary(max_size=50), st.data())
def test_a_whole_header_is_found_however_it_is_split(
        header: tuple[bytes, str, str], body: bytes, data: st.DataObject) -> None:
    raw, method, path = header
    stream = raw + body
    cut = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    assert scan(stream[:cut], LIMITS) == Incomplete()  # no prefix of a valid header is refused or complete
    assert scan(stream, LIMITS) == Complete(method=method, path=path, length=len(raw))


def test_empty_lines_before_the_request_line_are_allowed() -> None:
    assert scan(b"\r\n\r\nGET /x HTTP/1.1\r\n\r\n", LIMITS) == Complete("GET", "/x", 23)


def test_a_long_request_line_is_refused_before_it_ends() -> None:
    assert scan(b"GET /" + b"a" * 200, LIMITS) == Refused(414, "Request line too long")


def test_too_many_fields_are_refused_before_the_header_ends() -> None:
    raw = b"GET / HTTP/1.1\r\n" + b"a: b\r\n" * 6
    assert scan(raw, LIMITS) == Refused(431, "Too many header fields")


def test_a_long_field_is_refused_while_it_still_grows() -> None:
    assert scan(b"GET / HTTP/1.1\r\nX-Long: " + b"v" * 50, LIMITS) == Refused(431, "Header field too large")


def test_a_bad_request_line_is_400() -> None:
    for line in (b"GET\r\n\r\n", b"get / HTTP/1.1\r\n\r\n", b"GET  / HTTP/1.1\r\n\r\n", b"\x00\x01 / x\r\n\r\n"):
        assert scan(line, LIMITS) == Refused(400, "Bad request line"), line


@given(st.binary(max_size=300)
       | st.builds(lambda n, tail: b"\r\n" * n + tail, st.integers(0, 200), st.binary(max_size=20)))
def test_anything_gets_one_of_three_answers_and_the_buffer_stays_bounded(garbage: bytes) -> None:
    verdict = scan(garbage, LIMITS)
    assert isinstance(verdict, Incomplete | Complete | Refused)
    if isinstance(verdict, Incomplete):
        # What the node may have to hold before it decides.
        assert len(garbage) <= LIMITS.max_header_bytes + LIMITS.limit_request_line + LIMITS.limit_request_field_size


def test_endless_empty_lines_are_refused() -> None:
    assert scan(b"\r\n" * 200, LIMITS) == Refused(400, "Bad request line")
