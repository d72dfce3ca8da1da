"""The ``imagecache`` command line: ``main`` (the root group, :mod:`.root`) and its commands.

``serve`` (:mod:`.serve`) runs the node; ``clean``, ``prune`` and
``prefetch`` (:mod:`.jobs`) run one cache job against a cache directory and
exit, as cron jobs do; ``manage`` (:mod:`.manage`) manages a node's cache over
its API, as ``glance-cache-manage`` did; ``top`` (:mod:`.top`, its frame
:mod:`.top_view`) shows what a node is doing now; ``db`` (:mod:`.db`) looks after the
central index's database.  What they share is in :mod:`._common`.

The command modules import only click, the standard library and
:mod:`imagecache.config` when loaded: heavy modules (gunicorn, the cache,
the image service, SQLAlchemy, prometheus_client, rich, urllib3) are
imported inside the commands that need them, so ``imagecache --help`` and a
cron line start fast.
"""

from __future__ import annotations

from imagecache.cli._common import ByteSize, UsageProblem, format_size, parse_size
from imagecache.cli.root import main

__all__ = ["ByteSize", "UsageProblem", "format_size", "main", "parse_size"]
