"""The client's fixed numbers, and its name on the wire."""

from __future__ import annotations

from imagecache import __version__

#: Seconds a request may wait for the connection or for the next bytes when
#: the caller gives no timeout (``timeout=0`` means no limit, as in Glance).
DEFAULT_TIMEOUT = 60.0
#: Redirects followed per request, as Glance's client did.
MAX_REDIRECTS = 5
USER_AGENT = f"imagecache-client/{__version__}"
