"""The upstream's base URL, checked once when the app is built: a bad one is a ValueError, not a failure per request."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from imagecache.upstream.forwarding import PATH_SAFE


def parse_base_url(base_url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path prefix without its trailing slash), or ValueError."""
    if not isinstance(base_url, str) or not base_url.strip():
        raise ValueError("the upstream URL is empty; expected http(s)://host[:port][/path]")
    try:
        split = urlsplit(base_url.strip())
        port = split.port
        parsed = parse_url(base_url.strip())
    except (ValueError, LocationParseError):
        raise ValueError(f"the upstream URL {_redacted(base_url)} is not a valid URL (bad port or host?)") from None
    shown = _redacted(base_url)
    if split.scheme.lower() not in ("http", "https"):
        raise ValueError(f"the upstream URL {shown} must start with http:// or https://")
    if not split.hostname or not parsed.host:
        raise ValueError(f"the upstream URL {shown} has no host")
    if split.username is not None or split.password is not None:
        raise ValueError(
            f"the upstream URL {shown} carries credentials; they are not supported "
            "(each caller's X-Auth-Token is forwarded)"
        )
    if split.query or "?" in base_url:
        raise ValueError(f"the upstream URL {shown} has a query string; only a path prefix is allowed")
    if split.fragment or "#" in base_url:
        raise ValueError(f"the upstream URL {shown} has a fragment; only a path prefix is allowed")
    scheme = split.scheme.lower()
    prefix = quote(split.path, safe=PATH_SAFE + "%").rstrip("/")
    return scheme, parsed.host, port or (443 if scheme == "https" else 80), prefix


def _redacted(url: str) -> str:
    """``url`` without any password in it, for messages."""
    return re.sub(r"(//[^/@]*?:)[^/@]*@", r"\1***@", str(url))
