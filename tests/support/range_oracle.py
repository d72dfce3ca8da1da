"""What a GET with Range and If-Range should answer, by Python slicing: the tests' oracle.

Requests are generated from their structure (which form of range, which
kind of validator), so the expected answer is computed without parsing a
header: :meth:`Ask.expect` slices the image and never calls the code under
test.  The rule it encodes (RFC 9110 13.1.5 and 14, with the node's
validators): a strong ``ETag`` equal to ``"<md5>"`` in If-Range, or no
If-Range at all, lets the Range be evaluated; anything else (weak, another
tag, a date, garbage) means the whole image with 200; so does a Range the
node ignores (bad syntax, other units, several ranges).
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

#: Range values the node ignores (whole image, 200), whatever the size.
IGNORED_RANGES = (
    "bytes=5-1", "bytes=0-1,3-4", "bytes=0-0, -1", "items=0-1", "bytes=", "bytes=-", "garbage",
    "bytes=1-2-3", "bytes 0-1/10", "bytes=0x1-2",
)
#: Kinds of If-Range value; only the first two match.
VALIDATORS = ("none", "same", "same-padded", "weak", "other", "upper", "date", "garbage", "empty")


@dataclass(frozen=True)
class Expected:
    status: int
    first: int  # of the part (0 for 200 and 416)
    body: bytes

    def content_range(self, size: int) -> str | None:
        if self.status == 206:
            return f"bytes {self.first}-{self.first + len(self.body) - 1}/{size}"
        if self.status == 416:
            return f"bytes */{size}"
        return None


@dataclass(frozen=True)
class Ask:
    """One GET's Range and If-Range, by structure."""

    form: str  # none, closed, open, suffix, ignored
    a: int
    b: int
    pad: str
    validator: str
    ignored: str = IGNORED_RANGES[0]

    def range_header(self) -> str | None:
        if self.form == "none":
            return None
        if self.form == "ignored":
            return self.ignored
        spec = {"closed": f"{min(self.a, self.b)}-{max(self.a, self.b)}", "open": f"{self.a}-",
                "suffix": f"-{self.a}"}[self.form]
        return f"{self.pad}bytes={self.pad}{spec}{self.pad}"

    def if_range(self, etag: str) -> str | None:
        opaque = etag.strip('"')
        return {
            "none": None,
            "same": etag,
            "same-padded": f" \t{etag} ",
            "weak": f"W/{etag}",
            "other": '"0123456789abcdef0123456789abcdef"' if opaque != "0123456789abcdef0123456789abcdef" else '"x"',
            "upper": f'"{opaque.upper()}"' if opaque.upper() != opaque else f'"{opaque}x"',
            "date": "Sat, 29 Oct 1994 19:43:31 GMT",
            "garbage": opaque,  # not quoted: not an entity tag
            "empty": "",
        }[self.validator]

    def headers(self, etag: str) -> dict[str, str]:
        found = {"Range": self.range_header(), "If-Range": self.if_range(etag)}
        return {name: value for name, value in found.items() if value is not None}

    def expect(self, data: bytes) -> Expected:
        whole = Expected(200, 0, data)
        if self.form in ("none", "ignored") or self.validator not in ("none", "same", "same-padded"):
            return whole
        size = len(data)
        unsatisfiable = Expected(416, 0, b"")
        if self.form == "suffix":
            if self.a == 0 or size == 0:
                return unsatisfiable
            part = data[-self.a:]
            return Expected(206, size - len(part), part)
        first = min(self.a, self.b) if self.form == "closed" else self.a
        if first >= size:
            return unsatisfiable
        end = max(self.a, self.b) + 1 if self.form == "closed" else None
        return Expected(206, first, data[first:end])


def asks(max_position: int) -> st.SearchStrategy[Ask]:
    """Requests over positions up to ``max_position`` (beyond the image, to reach 416)."""
    positions = st.integers(0, max_position)
    return st.builds(
        Ask,
        form=st.sampled_from(["none", "closed", "open", "suffix", "ignored"]),
        a=positions,
        b=positions,
        pad=st.sampled_from(["", " ", "\t"]),
        validator=st.sampled_from(VALIDATORS),
        ignored=st.sampled_from(IGNORED_RANGES),
    )
