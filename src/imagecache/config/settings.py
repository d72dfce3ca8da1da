"""One settings object for the library, the server and the tools.

Settings are passed explicitly to whatever needs them; nothing reads a global
configuration.  Option names follow Glance's (``image_cache_dir``,
``image_cache_max_size``, ...) so operators can carry their habits over.

This class is the one table of options: a field with its default and its
docstring (the help :mod:`imagecache.config.sample` prints) is all an
option needs to be read from files, the environment and flags.  Reading
files and merging them is :mod:`imagecache.config.files`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

GiB = 1 << 30

#: Index drivers a user may name.  ``central`` needs ``db_url``.
DRIVER_NAMES = ("sqlite", "xattr", "central")
AUTH_STRATEGIES = ("none", "tokens")
HASH_ALGORITHMS = ("sha256", "sha384", "sha512", "md5", "sha1")
#: What a fill verifies (imagecache.cache.verify_plan): the strongest digest offered, or every one.
VERIFY_MODES = ("strongest", "all")
#: Image visibilities the pre-warm policy may be given (Glance's, but "all").
PREWARM_VISIBILITIES = ("public", "community", "shared", "private")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
ACCESS_LOG = ("on", "off")
ENV_PREFIX = "IMAGECACHE_"
#: The type of a table option (``prewarm_properties``): sorted (key, value) pairs, hashable like the rest.
Pairs = tuple[tuple[str, str], ...]


class ConfigError(ValueError):
    """A setting is missing, unknown or has a value of the wrong kind."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Every option of imagecache, with Glance's names and defaults."""

    # -- where things live -------------------------------------------------
    data_dir: str = "var"
    """Root for the embedded image store and, by default, the cache."""
    image_cache_dir: str = ""
    """The cache directory; empty means ``<data_dir>/image-cache``."""
    image_cache_sqlite_db: str = "cache.db"
    """File name of the sqlite index inside ``image_cache_dir``."""

    # -- the cache -----------------------------------------------------------
    image_cache_driver: str = "sqlite"
    """Where the index of cached images lives: sqlite, xattr, or central (PostgreSQL, with db_url)."""
    image_cache_max_size: int = 10 * GiB
    """Hard limit, in bytes, for the verified files the cache keeps."""
    image_cache_min_free: int | None = None
    """Bytes kept free on the cache filesystem; unset: min(1 GiB, 5 %)."""
    image_cache_stall_time: int = 86400
    """Seconds after which an incomplete file counts as stalled."""
    image_cache_hit_flush_interval: float = 1.0
    """Seconds hit counts and access times wait in memory before one transaction writes them
    (0: every hit written at once).  Listings and eviction see their own process's hits at once."""
    hashing_algorithm: str = "sha512"
    """Multihash algorithm used by the embedded store (Glance's option)."""
    image_cache_verify: str = "strongest"
    """Digests a fill checks: strongest (the multihash, else md5, else the size) or all offered."""
    fill_abandon_after: float = 30.0
    """Seconds a fill goes on with no client reading before it is dropped."""
    db_url: str | None = None
    """SQLAlchemy URL of the central index (``central`` driver)."""
    node_url: str | None = None
    """This node's reference URL in the central index."""
    node_stale_after: float = 300.0
    """Seconds without a heartbeat after which a node counts as stale (left out of node listings)."""
    node_site: str = "default"
    """This node's site: peers with the same name are close, and filled from first."""
    peer_token: str | None = None
    """The secret nodes present to each other's peer endpoint; with the central
    driver it turns peer fill on (see docs/peer-fill.md)."""
    peer_fill: bool = True
    """False: never fill from a peer (the endpoint still serves peers)."""
    peer_timeout: float = 30.0
    """Seconds a peer may take to connect, or to send more bytes, before a fill moves on."""
    ca_file: str | None = None
    """CA bundle to verify peers whose node_url is https."""

    # -- the server ----------------------------------------------------------
    bind_host: str = "127.0.0.1"
    """Address to listen on (Glance's default is 0.0.0.0; ours is loopback)."""
    bind_port: int = 9292
    """Port to listen on."""
    workers: int = 2
    """Worker processes (gunicorn's); each takes its share of max_connections."""
    auth_strategy: str = "none"
    """none: every caller is an admin (loopback development only); tokens: see tokens_file."""
    tokens_file: str | None = None
    """TOML file of the tokens this node knows, for auth_strategy tokens."""
    upstream_url: str | None = None
    """Edge mode: the image API (e.g. a Glance) to forward to; unset: the embedded image service."""
    upstream_timeout: float = 60.0
    """Seconds to wait for the upstream: to connect, and for each read."""
    upstream_auth_token: str | None = None
    """Token this node sends upstream for its own requests (prefetching, and
    checking that a cached image still exists); an admin's or a service
    user's that can read every image.  Unset: those requests go without one."""
    auth_cache_ttl: float = 5.0
    """Seconds an upstream's authorization answer is reused (0: ask every time)."""
    serve_stale_on_upstream_error: bool = False
    """Serve cached images unauthorized while the upstream cannot be reached (else 503)."""
    cleaner_interval: float = 3600.0
    """Seconds between runs of the cleaner inside the server (0: never)."""
    pruner_interval: float = 600.0
    """Seconds between runs of the pruner inside the server (0: never)."""
    prefetcher_interval: float = 300.0
    """Seconds between runs of the prefetcher inside the server (0: never)."""
    log_level: str = "INFO"
    """DEBUG, INFO, WARNING, ERROR or CRITICAL (any case)."""
    access_log: str = "on"
    """A line per request on stderr (gunicorn's default format), or off."""

    # -- pre-warming by policy (imagecache.jobs.prewarmer) ---------------------------------
    prewarm_tags: tuple[str, ...] = ()
    """Active images with any of these tags are cached ahead of any download."""
    prewarm_properties: Pairs = ()
    """So are those with every one of these properties: a TOML table (``{os_distro = "ubuntu"}``),
    or ``os_distro:ubuntu, hw_arch:x86_64`` in INI and IMAGECACHE_PREWARM_PROPERTIES."""
    prewarm_visibility: tuple[str, ...] = ("public",)
    """Only images of these visibilities are pre-warmed (tags and properties of other images are
    their owners' to set, so any user could otherwise fill the cache)."""
    prewarm_interval: float = 600.0
    """Seconds between pre-warm runs (0 disables them)."""
    prewarm_max_concurrent: int = 1
    """Images a pre-warm run fetches at once."""
    prewarm_max_bytes_per_second: int = 50 * (1 << 20)
    """Origin bytes per second all pre-warm fetches together may read (0: no limit).  An image a
    client is downloading meanwhile is no longer held back."""
    prewarm_pin: bool = False
    """Pin what the policy pre-warms (and unpin it when the image no longer matches)."""

    # -- serving many streams (a boot storm) ---------------------------------------
    threads: int = 64
    """Request threads per worker: for authorization, fills, uploads and the API.
    Cached files are sent without a thread, however slow the client."""
    max_connections: int = 4096
    """Open client connections the node takes (shared out over its workers);
    past it a new connection is answered 503 with Retry-After at once."""
    client_header_timeout: float = 30.0
    """Seconds a client may take to send a request header (nginx's name); then 408 and closed."""
    keepalive_timeout: int = 5
    """Seconds an idle kept-alive connection stays open."""
    send_timeout: float = 60.0
    """Seconds a client may go without reading (or sending) anything before it is closed."""
    limit_request_line: int = 8190
    """Bytes in the request line (gunicorn's name); longer: 414."""
    limit_request_fields: int = 100
    """Header fields in a request (gunicorn's name); more: 431."""
    limit_request_field_size: int = 8190
    """Bytes in one header field (gunicorn's name); longer: 431."""

    def __post_init__(self) -> None:
        if not self.image_cache_dir:
            object.__setattr__(
                self, "image_cache_dir", os.path.join(self.data_dir, "image-cache")
            )
        _validate(self)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some options changed (validated like the original).

        A cache dir that was derived from ``data_dir`` follows a new
        ``data_dir`` instead of staying behind in the old one.
        """
        derived = os.path.join(self.data_dir, "image-cache")
        follows = "data_dir" in changes and "image_cache_dir" not in changes
        if follows and self.image_cache_dir == derived:
            changes["image_cache_dir"] = ""
        return dataclasses.replace(self, **changes)


def _validate(settings: Settings) -> None:
    if settings.image_cache_driver not in DRIVER_NAMES:
        raise ConfigError(
            f"image_cache_driver must be one of {', '.join(DRIVER_NAMES)}, "
            f"not {settings.image_cache_driver!r}"
        )
    if settings.auth_strategy not in AUTH_STRATEGIES:
        raise ConfigError(
            f"auth_strategy must be one of {', '.join(AUTH_STRATEGIES)}, "
            f"not {settings.auth_strategy!r}"
        )
    if settings.hashing_algorithm not in HASH_ALGORITHMS:
        raise ConfigError(
            f"hashing_algorithm must be one of {', '.join(HASH_ALGORITHMS)}, "
            f"not {settings.hashing_algorithm!r}"
        )
    if settings.image_cache_verify not in VERIFY_MODES:
        raise ConfigError(f"image_cache_verify must be one of {', '.join(VERIFY_MODES)}, "
                          f"not {settings.image_cache_verify!r}")
    for name in ("image_cache_max_size", "image_cache_stall_time", "image_cache_hit_flush_interval"):
        if getattr(settings, name) < 0:
            raise ConfigError(f"{name} must not be negative")
    if settings.image_cache_min_free is not None and settings.image_cache_min_free < 0:
        raise ConfigError("image_cache_min_free must not be negative")
    if not 0 < settings.bind_port < 65536:
        raise ConfigError(f"bind_port must be between 1 and 65535, not {settings.bind_port}")
    if settings.workers < 1:
        raise ConfigError("workers must be at least 1")
    if settings.log_level.upper() not in LOG_LEVELS:
        raise ConfigError(
            f"log_level must be one of {', '.join(LOG_LEVELS)}, not {settings.log_level!r}"
        )
    if settings.access_log not in ACCESS_LOG:
        raise ConfigError(f"access_log must be one of {', '.join(ACCESS_LOG)}, not {settings.access_log!r}")
    for name in ("threads", "max_connections", "limit_request_line", "limit_request_fields",
                 "limit_request_field_size"):
        if getattr(settings, name) < 1:
            raise ConfigError(f"{name} must be at least 1")
    if settings.limit_request_line > 8190:
        raise ConfigError("limit_request_line must be at most 8190 (gunicorn's ceiling)")
    if settings.limit_request_fields > 32768:
        raise ConfigError("limit_request_fields must be at most 32768 (gunicorn's ceiling)")
    if settings.max_connections < settings.workers:
        raise ConfigError("max_connections must be at least the number of workers")
    for name in ("client_header_timeout", "send_timeout"):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"{name} must be a positive number of seconds")
    if settings.keepalive_timeout < 0:
        raise ConfigError("keepalive_timeout must not be negative")
    if settings.upstream_timeout <= 0:
        raise ConfigError("upstream_timeout must be a positive number of seconds")
    if not 0 <= settings.auth_cache_ttl <= 3600:
        raise ConfigError("auth_cache_ttl must be between 0 (no memo) and 3600 seconds")
    if settings.node_stale_after <= 0:
        raise ConfigError("node_stale_after must be a positive number of seconds")
    if settings.peer_timeout <= 0:
        raise ConfigError("peer_timeout must be a positive number of seconds")
    if not settings.node_site.strip() or len(settings.node_site) > 255:
        raise ConfigError("node_site must be a name of 1 to 255 characters")
    if settings.peer_token is not None and not settings.peer_token.strip():
        raise ConfigError("peer_token must not be empty (leave it unset to turn peer fill off)")
    _validate_prewarm(settings)
    if settings.image_cache_driver == "central" and not settings.db_url:
        raise ConfigError("image_cache_driver 'central' needs db_url")
    if settings.auth_strategy == "tokens" and not settings.tokens_file:
        raise ConfigError("auth_strategy 'tokens' needs tokens_file")


def _validate_prewarm(settings: Settings) -> None:
    if any(not tag.strip() for tag in settings.prewarm_tags):
        raise ConfigError("prewarm_tags must not hold an empty tag")
    if any(not name.strip() for name, _ in settings.prewarm_properties):
        raise ConfigError("prewarm_properties must not name an empty property")
    wrong = [v for v in settings.prewarm_visibility if v not in PREWARM_VISIBILITIES]
    if wrong or not settings.prewarm_visibility:
        raise ConfigError(f"prewarm_visibility must list some of {', '.join(PREWARM_VISIBILITIES)}, "
                          f"not {list(settings.prewarm_visibility)!r}")
    if settings.prewarm_max_concurrent < 1:
        raise ConfigError("prewarm_max_concurrent must be at least 1")
    if settings.prewarm_max_bytes_per_second < 0:
        raise ConfigError("prewarm_max_bytes_per_second must not be negative (0: no limit)")


def option_names() -> tuple[str, ...]:
    """Names a config file, the environment or a flag may set."""
    return tuple(f.name for f in dataclasses.fields(Settings))


def _option_types() -> dict[str, Any]:
    hints = typing.get_type_hints(Settings)
    return {name: hints[name] for name in option_names()}


def peer_fill_on(settings: Settings) -> bool:
    """Does this node fill from its peers (the central index, a peer token, and peer_fill)?"""
    return settings.image_cache_driver == "central" and bool(settings.peer_token) and settings.peer_fill


def _base_type(hint: Any) -> tuple[type, bool]:
    """(the concrete type, whether None is allowed) of a field's annotation."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0], True
    return hint, False


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_bool(text: str) -> bool:
    """oslo.config's booleans: true/false, yes/no, on/off, 1/0, in any case; else ValueError."""
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(text)


def option_type(name: str) -> tuple[Any, bool]:
    """(the type, whether it may be unset) of option ``name``: ``int``, ``str``, ``list[str]``, ..."""
    types_by_name = _option_types()
    if name not in types_by_name:
        raise ConfigError(f"unknown option {name!r}")
    return _base_type(types_by_name[name])


def split_list(text: str) -> list[str]:
    """oslo.config's list syntax: ``a, b,c`` or ``[a, b]``, items optionally quoted; empty ones dropped."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    items = (item.strip() for item in text.split(","))
    return [item[1:-1] if len(item) > 1 and item[0] == item[-1] and item[0] in "'\"" else item
            for item in items if item]


def _string_items(name: str, value: Any) -> list[str]:
    if isinstance(value, str):
        return split_list(value)
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return list(value)
    raise ConfigError(f"{name} must be a list of strings, not {value!r}")


def coerce(name: str, value: Any) -> Any:
    """Turn ``value`` (from a file, the environment or a flag) into ``name``'s type.

    Text follows oslo.config's syntax, so Glance's files read as Glance reads
    them: booleans true/false, yes/no, on/off, 1/0 in any case; plain
    integers; lists comma-separated; tables ``key:value`` pairs, comma-separated.
    """
    kind, optional = option_type(name)
    if value is None or (optional and isinstance(value, str) and value == ""):
        if optional:
            return None
        raise ConfigError(f"{name} needs a value")
    if kind == Pairs:
        return _string_pairs(name, value)
    container = typing.get_origin(kind)
    if container in (list, tuple):
        return container(_string_items(name, value))
    try:
        if kind is bool:
            return value if isinstance(value, bool) else parse_bool(str(value))
        if kind is int:
            if isinstance(value, bool):
                raise ValueError(value)
            if isinstance(value, int):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            return int(str(value).strip())
        if kind is float:
            number = float(value)
            if isinstance(value, bool) or not math.isfinite(number):
                raise ValueError(value)  # nan and inf: no interval or timeout means that
            return number
        if kind is str:
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError(value)
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{name} must be {'a ' + kind.__name__ if kind is not int else 'an int'}, "
            f"not {value!r}"
        ) from None
    raise ConfigError(f"{name} cannot be set from configuration")  # pragma: no cover


def _string_pairs(name: str, value: Any) -> Pairs:
    """A table option: a TOML table of strings, or oslo.config's dict syntax ``key:value, key2:value2``."""
    if isinstance(value, str):
        items = split_list(value)
        if any(":" not in item for item in items):
            raise ConfigError(f"{name} must be key:value pairs separated by commas, not {value!r}")
        value = dict(item.split(":", 1) for item in items)
    if isinstance(value, list | tuple) and not value:
        return ()  # an empty list reads as an empty table
    if isinstance(value, Mapping) and all(isinstance(v, str) for v in value.values()):
        return tuple(sorted((str(key).strip(), v.strip()) for key, v in value.items()))
    raise ConfigError(f'{name} must be a table of strings (key = "value"), not {value!r}')


def table_options() -> frozenset[str]:
    """Options whose value is a table: in TOML, a table of that name is the value, not a section."""
    return frozenset(name for name, hint in _option_types().items() if hint == Pairs)


def read_toml(path: str, what: str) -> dict[str, Any]:
    """A TOML file's content; every way reading it fails is a one-line ConfigError.

    ``what`` names the file in messages ("config file", "tokens file").
    """
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None


def read_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """Options from ``IMAGECACHE_<OPTION>`` variables (unknown names are errors)."""
    known = set(option_names())
    options: dict[str, str] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX):].lower()
        if name in {"test_db_url"}:  # read by the test-suite, not an option
            continue
        if name not in known:
            raise ConfigError(f"environment variable {key} names no option")
        options[name] = value
    return options


def effective_min_free(settings: Settings, filesystem_size: int) -> int:
    """Bytes to keep free: the option, or min(1 GiB, 5 % of the filesystem)."""
    if settings.image_cache_min_free is not None:
        return settings.image_cache_min_free
    return min(GiB, filesystem_size // 20)
