"""``GET /v2/images`` query parameters to a :class:`ListQuery`, without I/O.

Glance's rules: ``limit`` (default 25, at most 1000), ``marker``, sorting with
``sort_key``/``sort_dir`` or ``sort=key:dir,...``, ``visibility``,
``os_hidden`` (hidden images are left out unless ``os_hidden=true``),
``protected``, ``tag`` (repeatable, all must match), ``size_min``/``size_max``,
equality filters on base attributes (``in:a,b`` for several values), and any
other parameter filters on a custom property of that name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from imagecache.images.refusals import bad_request

DEFAULT_LIMIT = 25
MAX_LIMIT = 1000
SORT_KEYS = (
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "id",
    "created_at",
    "updated_at",
)
SORT_DIRS = ("asc", "desc")
LIST_VISIBILITIES = ("community", "public", "private", "shared", "all")
MEMBER_STATUSES = ("pending", "accepted", "rejected", "all")

#: Base attributes a listing may be filtered on by equality (or ``in:``).
EQUALITY_FILTERS = ("id", "name", "status", "owner", "container_format", "disk_format")
#: At most this many values per ``in:`` filter, tags, or property filters (SQL bind limits).
MAX_FILTER_VALUES = 100
#: Sizes beyond SQLite's INTEGER cannot match anything and cannot be bound.
_MAX_SIZE = 2**63 - 1
#: Parameters we recognise but cannot honour: a clear 400 beats a silent empty page.
_UNSUPPORTED = ("changes-since", "created_at", "updated_at")


@dataclass(frozen=True)
class ListQuery:
    """What a caller asked a listing for (who is asking is applied separately)."""

    limit: int = DEFAULT_LIMIT
    marker: str | None = None
    sort: tuple[tuple[str, str], ...] = (("created_at", "desc"),)
    visibility: str | None = None
    os_hidden: bool = False
    protected: bool | None = None
    tags: tuple[str, ...] = ()
    equals: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    properties: Mapping[str, str] = field(default_factory=dict)
    size_min: int | None = None
    size_max: int | None = None


def _boolean(name: str, value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise bad_request(
            f"Invalid value '{value}' for '{name}' filter. Valid values are 'true' or 'false'."
        )
    return value.lower() == "true"


def _non_negative(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise bad_request(f"{name} param must be an integer") from None
    if number < 0:
        raise bad_request(f"{name} param must be positive")
    if number > _MAX_SIZE:
        raise bad_request(f"{name} param is too large")
    return number


def _sorting(keys: list[str], dirs: list[str], sort: str | None) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    if sort is not None:
        if keys or dirs:
            raise bad_request("Old and new sorting syntax cannot be combined")
        for item in sort.strip().split(","):
            key, _, direction = item.partition(":")
            pairs.append((key.strip(), direction.strip() or "desc"))
    else:
        if len(dirs) > 1 and len(dirs) != len(keys):
            raise bad_request("Number of sort dirs does not match the number of sort keys")
        default = dirs[0] if len(dirs) == 1 else "desc"
        pairs = [(key, dirs[i] if len(dirs) > 1 else default) for i, key in enumerate(keys)]
        if not pairs:
            pairs = [("created_at", default)]
    for key, direction in pairs:
        if key not in SORT_KEYS:
            raise bad_request(
                f"Invalid sort key: {key}. It must be one of the following: {', '.join(SORT_KEYS)}."
            )
        if direction not in SORT_DIRS:
            raise bad_request(f"Invalid sort direction: {direction}")
    return tuple(pairs)


def parse_list_params(params: Iterable[tuple[str, str]]) -> ListQuery:
    """A :class:`ListQuery` from query parameters (repeats kept in order); a Refusal (400) for bad ones."""
    values: dict[str, list[str]] = {}
    for name, value in params:
        values.setdefault(name, []).append(value)

    def last(name: str) -> str | None:
        found = values.pop(name, None)
        return found[-1] if found else None

    for name in _UNSUPPORTED:
        if name in values:
            raise bad_request(f"The '{name}' filter is not available on this service.")

    limit = DEFAULT_LIMIT
    raw_limit = last("limit")
    if raw_limit is not None:
        limit = min(_non_negative("limit", raw_limit), MAX_LIMIT)

    sort_keys = [key.strip() for key in values.pop("sort_key", [])]
    sort_dirs = [direction.strip() for direction in values.pop("sort_dir", [])]
    sort = _sorting(sort_keys, sort_dirs, last("sort"))

    visibility = last("visibility")
    if visibility is not None and visibility not in LIST_VISIBILITIES:
        raise bad_request(f"Invalid visibility value: {visibility}")

    member_status = last("member_status")
    if member_status is not None and member_status not in MEMBER_STATUSES:
        raise bad_request(f"Invalid status: {member_status}")

    raw_hidden = last("os_hidden")
    os_hidden = False if raw_hidden is None else _boolean("os_hidden", raw_hidden)
    raw_protected = last("protected")
    protected = None if raw_protected is None else _boolean("protected", raw_protected)

    sizes: dict[str, int | None] = {}
    for name in ("size_min", "size_max"):
        raw = last(name)
        sizes[name] = None if raw is None else _non_negative(name, raw)

    equals: dict[str, tuple[str, ...]] = {}
    for name in EQUALITY_FILTERS:
        raw = last(name)
        if raw is not None:
            equals[name] = tuple(raw[3:].split(",")) if raw.startswith("in:") else (raw,)

    tags = tuple(tag.strip() for tag in values.pop("tag", []))
    marker = last("marker")
    properties = {name: found[-1] for name, found in values.items()}
    counts = [len(tags), len(properties), *(len(v) for v in equals.values())]
    if max(counts) > MAX_FILTER_VALUES:
        raise bad_request(f"At most {MAX_FILTER_VALUES} values per filter are supported.")
    return ListQuery(
        limit=limit,
        marker=marker,
        sort=sort,
        visibility=visibility,
        os_hidden=os_hidden,
        protected=protected,
        tags=tags,
        equals=equals,
        properties=properties,
        size_min=sizes["size_min"],
        size_max=sizes["size_max"],
    )
