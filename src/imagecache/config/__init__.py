"""One settings object for the library, the server and the tools, and the files it is read from.

Settings are passed explicitly to whatever needs them; nothing reads a global
configuration.  Option names follow Glance's (``image_cache_dir``,
``image_cache_max_size``, ...) so operators can carry their habits over, and
Glance's own ``glance-api.conf`` and ``glance-cache.conf`` can be read as
they are.

- :mod:`.settings`: :class:`Settings`, the one table of options (defaults,
  types, help), their checks and the value syntax;
- :mod:`.files`: TOML and INI files, and :func:`load_settings` (defaults <
  file < ``IMAGECACHE_<OPTION>`` variables < flags);
- :mod:`.glance`: which options Glance shares with us, and how its files read;
- :mod:`.sample`: every option with its default and help, as TOML or INI
  (``imagecache config sample``), imported only by the command that prints it.
"""

from __future__ import annotations

from imagecache.config.files import ConfigFile, load, load_settings, merge, read_config, read_config_file
from imagecache.config.settings import (
    AUTH_STRATEGIES,
    DRIVER_NAMES,
    ENV_PREFIX,
    HASH_ALGORITHMS,
    LOG_LEVELS,
    PREWARM_VISIBILITIES,
    VERIFY_MODES,
    ConfigError,
    GiB,
    Settings,
    coerce,
    effective_min_free,
    option_names,
    option_type,
    parse_bool,
    peer_fill_on,
    read_environment,
    read_toml,
    split_list,
)

__all__ = [
    "AUTH_STRATEGIES",
    "DRIVER_NAMES",
    "ENV_PREFIX",
    "HASH_ALGORITHMS",
    "LOG_LEVELS",
    "PREWARM_VISIBILITIES",
    "VERIFY_MODES",
    "ConfigError",
    "ConfigFile",
    "GiB",
    "Settings",
    "coerce",
    "effective_min_free",
    "load",
    "load_settings",
    "merge",
    "option_names",
    "option_type",
    "parse_bool",
    "peer_fill_on",
    "read_config",
    "read_config_file",
    "read_environment",
    "read_toml",
    "split_list",
]
