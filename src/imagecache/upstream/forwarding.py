"""What the proxy does alike both ways: the fields it never forwards, its Via entry, its body pieces.

A proxy must not forward hop-by-hop fields (RFC 9110 §7.6.1) in either
direction, and says who it is in ``Via`` (§7.6.3) on what it forwards.
"""

from __future__ import annotations

import logging

#: The proxy's one logger, whichever of its modules speaks.
LOG = logging.getLogger("imagecache.upstream")

#: Largest piece of a body read or sent at once, either way.
CHUNK_SIZE = 1 << 20
VIA_PSEUDONYM = "imagecache"
#: Hop-by-hop fields (RFC 9110 §7.6.1, plus the obsolete ones still seen),
#: never forwarded either way; so is every field named in ``Connection``.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "te", "transfer-encoding",
    "upgrade", "proxy-authorization", "proxy-authenticate", "trailer",
})
#: Characters left as they are when a decoded path has to be quoted again.
PATH_SAFE = "/:@!$&'()*+,;=~"


def connection_tokens(value: str | None) -> set[str]:
    """The field names a ``Connection`` header lists (lower case): hop-by-hop too."""
    return {token.strip().lower() for token in (value or "").split(",") if token.strip()}
