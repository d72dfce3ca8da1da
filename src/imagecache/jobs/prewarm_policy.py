"""Which images the pre-warm policy wants cached: pure decisions, no I/O.

The policy (``prewarm_tags``, ``prewarm_properties``, ``prewarm_visibility``)
selects an image when it is ``active``, of an allowed visibility, and
either carries any one of the tags or has every one of the properties with
exactly that value (string equality; both rules may be given, either
selects).  The image service is asked with the same filters (one listing per
tag, one for the properties), and every image it answers is checked again
here, so a service that ignores a filter never widens the policy.

What a run fetches (:func:`plan`) stays within ``image_cache_max_size``: the
selected images are taken in the service's order (newest first) while their
sizes add up to at most the limit, so a policy wider than the cache never
evicts one pre-warmed image to make room for the next, run after run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imagecache.config import Settings

#: Images per listing page (Glance's largest page).
PAGE_SIZE = 1000


@dataclass(frozen=True)
class PrewarmPolicy:
    tags: frozenset[str] = frozenset()
    properties: tuple[tuple[str, str], ...] = ()
    visibilities: frozenset[str] = frozenset({"public"})

    @classmethod
    def from_settings(cls, settings: Settings) -> PrewarmPolicy:
        return cls(frozenset(settings.prewarm_tags), settings.prewarm_properties,
                   frozenset(settings.prewarm_visibility))

    @property
    def enabled(self) -> bool:
        """A policy with neither tags nor properties selects nothing: there is nothing to run."""
        return bool(self.tags or self.properties)

    def matches(self, image: Mapping[str, Any]) -> bool:
        """Whether the policy wants ``image`` (its Glance v2 JSON) cached."""
        if image.get("status") != "active" or image.get("visibility") not in self.visibilities:
            return False
        tags = image.get("tags")
        if self.tags and isinstance(tags, list) and self.tags & {tag for tag in tags if isinstance(tag, str)}:
            return True
        return bool(self.properties) and all(
            isinstance(image.get(name), str) and image[name] == value for name, value in self.properties
        )

    def listings(self) -> list[list[tuple[str, str]]]:
        """The query parameters of the listings that find every image the policy may want."""
        common = [("status", "active"), ("visibility", "all"), ("limit", str(PAGE_SIZE))]
        queries = [[("tag", tag), *common] for tag in sorted(self.tags)]
        if self.properties:
            queries.append([*self.properties, *common])
        return queries


@dataclass(frozen=True)
class Candidate:
    """An image the policy selected, with what a plan needs to know of it."""

    image_id: str
    size: int | None  # from its metadata; None: unknown (never fetched: it cannot be budgeted)
    cached: bool


@dataclass(frozen=True)
class Plan:
    wanted: tuple[str, ...]  # selected and within the budget (what the policy keeps, and pins)
    fetch: tuple[str, ...]  # of those, the ones not cached yet
    over_budget: tuple[str, ...]  # selected, but past the budget (or of unknown size)


def plan(candidates: Sequence[Candidate], budget: int) -> Plan:
    """Take candidates in order while their sizes fit ``budget``; skip those that do not (pure).

    A candidate that does not fit is skipped, not the end of the run: a
    smaller image after it may still fit.
    """
    wanted: list[str] = []
    fetch: list[str] = []
    over: list[str] = []
    used = 0
    for candidate in candidates:
        if candidate.size is None or used + candidate.size > budget:
            over.append(candidate.image_id)
            continue
        used += candidate.size
        wanted.append(candidate.image_id)
        if not candidate.cached:
            fetch.append(candidate.image_id)
    return Plan(tuple(wanted), tuple(fetch), tuple(over))


def selected(policy: PrewarmPolicy, listed: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The images of ``listed`` the policy wants, once each, in the order first listed."""
    seen: set[str] = set()
    chosen = []
    for image in listed:
        image_id = image.get("id")
        if isinstance(image_id, str) and image_id not in seen and policy.matches(image):
            seen.add(image_id)
            chosen.append(image)
    return chosen


def image_size(image: Mapping[str, Any]) -> int | None:
    size = image.get("size")
    return size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None
