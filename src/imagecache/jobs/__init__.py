"""The cache's housekeeping jobs, callable from the CLI (cron) and from the server.

Each is a :class:`CacheApp` with a ``run()`` (Glance's cleaner, pruner and
prefetcher); :class:`~imagecache.jobs.scheduler.PeriodicJobs` runs them
inside a server, one process at a time.
"""

from imagecache.jobs.base import CacheApp
from imagecache.jobs.cleaner import Cleaner
from imagecache.jobs.prefetcher import Prefetcher
from imagecache.jobs.pruner import Pruner
from imagecache.jobs.scheduler import Job, PeriodicJobs

__all__ = ["CacheApp", "Cleaner", "Job", "PeriodicJobs", "Prefetcher", "Pruner"]
