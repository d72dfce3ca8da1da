"""The pre-warmer: cache (and optionally pin) the images a policy names, before anyone asks.

Each run lists the images the policy may want from the image service the
node sits in front of, through the same sub-requests and as the same caller
as the prefetcher (an admin; on an edge node with ``upstream_auth_token``),
so embedded and edge mode read their own image lists: the embedded
service's database, or the upstream Glance's ``GET /v2/images``.  It keeps
the images :mod:`~imagecache.jobs.prewarm_policy` selects within the size
limit, pins them when ``prewarm_pin`` is set (and takes back its own pins
of images that no longer match; an operator's pins are never touched), and
fetches the missing ones, at most ``prewarm_max_concurrent`` at once.

Origin bytes of pre-warm fetches are held to ``prewarm_max_bytes_per_second``
(:mod:`~imagecache.jobs.pacing`), so pre-warming never crowds out clients:
user downloads never wait on the limit, and an image a client starts
downloading while it is being pre-warmed (the client follows that fill) is
fetched at full speed from then on.

A listing that fails ends the run with nothing changed (no pin taken back
on a partial answer); a fetch that fails is logged and tried again next run.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple
from urllib.parse import urlencode

from imagecache.cache import ImageCache
from imagecache.cache.flight import someone_reading
from imagecache.cache.pins import MANUAL, PREWARM
from imagecache.config import Settings
from imagecache.jobs.base import CacheApp
from imagecache.jobs.pacing import Pacer
from imagecache.jobs.prefetcher import Prefetcher, caller_environ
from imagecache.jobs.prewarm_policy import Candidate, PrewarmPolicy, image_size, plan, selected
from imagecache.jobs.scheduler import Job, PeriodicJobs

LOG = logging.getLogger(__name__)

#: Pages of one listing a run follows at most (of PAGE_SIZE images each).
MAX_PAGES = 100
#: How often a paced fetch looks whether a client is now streaming its image.
READER_LOOK_INTERVAL = 0.25


class PrewarmResult(NamedTuple):
    selected: int  # images the policy selects
    fetched: int
    failed: int
    pinned: int  # pins taken this run
    unpinned: int  # this policy's pins given back
    over_budget: int  # selected, left out: past the size limit


NOTHING = PrewarmResult(0, 0, 0, 0, 0, 0)


class ListingFailed(Exception):
    """The image service did not answer a listing (the run changes nothing)."""


class Prewarmer(CacheApp):
    """One pre-warm run per :meth:`run`, reading through ``prefetcher`` (its source, its caller)."""

    def __init__(
        self,
        cache: ImageCache,
        prefetcher: Prefetcher,
        *,
        settings: Settings | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(settings, cache=cache)
        self.prefetcher = prefetcher
        self.policy = PrewarmPolicy.from_settings(self.settings)
        self.pacer = Pacer(self.settings.prewarm_max_bytes_per_second, clock=clock, sleep=sleep)
        self._clock = clock

    # -- one run ------------------------------------------------------------------------
    def run(self) -> PrewarmResult:
        if not self.policy.enabled:
            return NOTHING
        try:
            chosen = selected(self.policy, self.list_images())
        except ListingFailed as exc:
            LOG.warning("pre-warm: %s; nothing done this run", exc)
            return NOTHING
        pins = self.cache.driver.pins()
        the_plan = plan([Candidate(str(image["id"]), image_size(image), self.cache.is_cached(str(image["id"])))
                         for image in chosen], self._budget(pins, {str(image["id"]) for image in chosen}))
        if the_plan.over_budget:
            LOG.warning("pre-warm: %d images the policy selects do not fit image_cache_max_size beside the rest "
                        "(or have no size) and are left out: %s", len(the_plan.over_budget),
                        ", ".join(the_plan.over_budget))
        pinned, unpinned = self._pin(the_plan.wanted, pins)
        with ThreadPoolExecutor(self.settings.prewarm_max_concurrent, thread_name_prefix="imagecache-prewarm") as pool:
            outcomes = list(pool.map(self._fetch, the_plan.fetch))
        result = PrewarmResult(len(chosen), outcomes.count(True), outcomes.count(False), pinned, unpinned,
                               len(the_plan.over_budget))
        if any(result[1:]):
            LOG.info("pre-warm run: %s", result._asdict())
        return result

    def _budget(self, pins: Mapping[str, str], chosen: set[str]) -> int:
        """The size limit, less what an operator's pins of other images hold (they never make room)."""
        held = 0
        for image_id, by in pins.items():
            facts = self.cache.layout.stat(image_id) if by == MANUAL and image_id not in chosen else None
            held += facts.size if facts else 0
        return max(0, self.settings.image_cache_max_size - held)

    def _pin(self, wanted: tuple[str, ...], pins: Mapping[str, str]) -> tuple[int, int]:
        """Pin what the policy keeps (with prewarm_pin); give back this policy's other pins."""
        keep = set(wanted) if self.settings.prewarm_pin else set()
        pinned = sum(1 for image_id in keep if self.cache.pins.pin(image_id, PREWARM))
        unpinned = sum(1 for image_id, by in pins.items()
                       if by == PREWARM and image_id not in keep and self.cache.pins.unpin(image_id))
        return pinned, unpinned

    # -- the listing ------------------------------------------------------------------------
    def list_images(self) -> list[Mapping[str, Any]]:
        """Every image the policy's listings return (ListingFailed when one fails)."""
        environ = caller_environ(self.prefetcher.context)
        found: list[Mapping[str, Any]] = []
        for query in self.policy.listings():
            path: str | None = "/v2/images?" + urlencode(query)
            for _ in range(MAX_PAGES):
                if path is None:
                    break
                page, path = self._page(environ, path)
                found.extend(page)
        return found

    def _page(self, environ: Mapping[str, Any], path: str) -> tuple[list[Mapping[str, Any]], str | None]:
        response = self.prefetcher.source.call(environ, "GET", path)
        if response.status_code != 200:
            hint = " (is upstream_auth_token set, to a token the upstream accepts?)" if response.status_code in (
                401, 403) and self.settings.upstream_url else ""
            raise ListingFailed(f"the image service answered {response.status_code} to GET {path}{hint}")
        try:
            body = json.loads(response.body)
        except ValueError:
            body = None
        images = body.get("images") if isinstance(body, dict) else None
        if not isinstance(images, list):
            raise ListingFailed(f"the image service's answer to GET {path} is no image list")
        following = body.get("next") if isinstance(body, dict) else None
        more = following if isinstance(following, str) and following.startswith("/v2/images?") else None
        return [image for image in images if isinstance(image, dict)], more

    # -- the fetches ------------------------------------------------------------------------
    def _fetch(self, image_id: str) -> bool | None:
        """True: fetched; False: failed (tried again next run); None: someone else's fill has it."""
        if self.cache.is_cached(image_id) or self.cache.is_being_cached(image_id):
            return None
        try:
            return self.prefetcher.fetch_image_into_cache(image_id, throttle=self._throttle(image_id))
        except Exception:  # one image must not stop the run
            LOG.exception("pre-warm of image %s failed", image_id)
            return False

    def _throttle(self, image_id: str) -> Callable[[int], None]:
        """Pace this fetch's bytes, unless a client is streaming the image (then it is theirs: full speed)."""
        layout = self.cache.layout
        look_again = 0.0
        exempt = False

        def throttle(nbytes: int) -> None:
            nonlocal look_again, exempt
            now = self._clock()
            if now >= look_again:
                look_again = now + READER_LOOK_INTERVAL
                exempt = someone_reading(layout, image_id)
            if not exempt:
                self.pacer.pace(nbytes)

        return throttle


def prewarm_jobs(cache: ImageCache, prefetcher: Prefetcher) -> PeriodicJobs | None:
    """The pre-warm job on a thread of its own (a long run never delays the pruner).

    None without a policy, or with ``prewarm_interval`` 0 (disabled, as every job's).
    """
    settings = cache.settings
    if not PrewarmPolicy.from_settings(settings).enabled or settings.prewarm_interval <= 0:
        return None
    prewarmer = Prewarmer(cache, prefetcher)
    return PeriodicJobs(settings.image_cache_dir, [Job("prewarm", settings.prewarm_interval, prewarmer.run)],
                        thread_name="imagecache-prewarm")
