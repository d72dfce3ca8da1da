"""Settings files, and the settings they make with the environment and flags.

A file is TOML (top-level keys, or a ``[DEFAULT]`` table) or INI: imagecache's
own, or Glance's ``glance-api.conf``/``glance-cache.conf`` as they are
(:mod:`imagecache.config.glance`).  Which it is: ``.conf``, ``.ini`` or
``.cfg`` mean INI and ``.toml`` TOML; any other name is TOML if it parses as
TOML, else INI.

Precedence, lowest first: defaults, values derived from other options
(``image_cache_dir`` from ``data_dir``), the file, ``IMAGECACHE_<OPTION>``
variables, explicit overrides (flags).  A bad value from the file is an
error that names it as the file does: ``[DEFAULT] image_cache_max_size``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from imagecache.config.glance import ignored_notice, options_from_ini, parse_ini
from imagecache.config.settings import (
    ConfigError,
    Settings,
    coerce,
    option_names,
    read_environment,
    table_options,
)

INI_SUFFIXES = (".conf", ".ini", ".cfg")
TOML_SUFFIXES = (".toml",)

Format = Literal["toml", "ini"]


@dataclass(frozen=True)
class ConfigFile:
    """What a settings file sets, and how it names each value."""

    path: str
    format: Format
    values: dict[str, Any]
    """Option -> value as the file has it (text for INI), not yet checked."""
    names: dict[str, str] = field(default_factory=dict)
    """Option -> how the file names it (``[DEFAULT] worker_self_reference_url``), for messages."""
    ignored: tuple[str, ...] = ()
    """``[section] name`` of what an INI file sets that imagecache does not use."""

    def notice(self) -> tuple[int, str] | None:
        """(log level, one line) listing the options the file sets that are not used; None if none."""
        return ignored_notice(self.path, self.ignored)

    def notices(self) -> list[tuple[int, str]]:
        """(log level, line) to log at start: what the file gave, then what it set that is not used."""
        taken = ", ".join(self.names[name] for name in self.values if name in self.names) or "nothing"
        lines = [(logging.INFO, f"config file {self.path} ({self.format.upper()}): took {taken}")]
        notice = self.notice()
        return [*lines, notice] if notice is not None else lines


def _read_text(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None


def guess_format(path: str, text: str) -> Format:
    """INI or TOML, by the file's suffix, else by whether it parses as TOML."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix in INI_SUFFIXES:
        return "ini"
    if suffix in TOML_SUFFIXES:
        return "toml"
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return "ini"
    return "toml"


def _from_toml(path: str, text: str) -> ConfigFile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    defaults = data.pop("DEFAULT", {})
    if not isinstance(defaults, dict):
        raise ConfigError(f"config file {path}: [DEFAULT] must be a table")
    values = dict(defaults)
    names = {key: f"[DEFAULT] {key}" for key in defaults}
    for key, value in data.items():
        if isinstance(value, dict) and key not in table_options():  # a table option's value is a table
            raise ConfigError(f"config file {path}: unknown section [{key}]")
        values[key] = value
        names[key] = key
    known = set(option_names())
    for key in values:
        if key not in known:
            raise ConfigError(f"config file {path}: unknown option {key!r}")
    return ConfigFile(path, "toml", values, names)


def _from_ini(path: str, text: str) -> ConfigFile:
    found = options_from_ini(parse_ini(text, path), path)
    return ConfigFile(path, "ini", dict(found.values), dict(found.names), found.ignored)


def read_config(path: str) -> ConfigFile:
    """Read a settings file (TOML or INI); every way it can be wrong is a one-line ConfigError."""
    text = _read_text(path)
    if guess_format(path, text) == "ini":
        return _from_ini(path, text)
    return _from_toml(path, text)


def read_config_file(path: str) -> dict[str, Any]:
    """The options a settings file sets (TOML or INI), not yet checked."""
    return read_config(path).values


@contextlib.contextmanager
def _blamed(file: ConfigFile | None, names: Mapping[str, str]) -> Iterator[None]:
    """Errors about a value the file gave name it as the file does.

    A ConfigError's message starts with the option it is about (the
    convention of :mod:`imagecache.config.settings`); when that value came
    from the file, the file's path and name for it take the option's place.
    """
    try:
        yield
    except ConfigError as exc:
        first, _, rest = str(exc).partition(" ")
        if file is None or first not in names:
            raise
        raise ConfigError(f"config file {file.path}: {names[first]} {rest}") from None


def merge(
    file: ConfigFile | None,
    environ: Mapping[str, str],
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Settings from defaults < ``file`` < ``environ``'s IMAGECACHE_* < ``overrides`` (None overrides nothing).

    Pure: the file is already read.  Only values that survive are checked,
    so a bad value in the file that a flag replaces is no error.
    """
    merged: dict[str, Any] = dict(file.values) if file else {}
    names = dict(file.names) if file else {}
    for source in (read_environment(environ), {k: v for k, v in (overrides or {}).items() if v is not None}):
        for name, value in source.items():
            merged[name] = value
            names.pop(name, None)
    with _blamed(file, names):
        return Settings(**{name: coerce(name, value) for name, value in merged.items()})


def load(
    config_file: str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[Settings, ConfigFile | None]:
    """Settings from defaults < config file < environment < overrides, and the file as read."""
    file = read_config(config_file) if config_file else None
    return merge(file, os.environ if environ is None else environ, overrides), file


def load_settings(
    config_file: str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Settings from defaults < config file < environment < overrides."""
    return load(config_file, environ, overrides)[0]


def origins(
    settings: Settings,
    file: ConfigFile | None,
    environ: Mapping[str, str],
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Option -> where ``settings`` got its value: a flag, a variable, the file, derived, or the default."""
    given = {name for name, value in (overrides or {}).items() if value is not None}
    from_env = read_environment(environ)
    found: dict[str, str] = {}
    for name in option_names():
        if name in given:
            found[name] = "flag"
        elif name in from_env:
            found[name] = f"environment IMAGECACHE_{name.upper()}"
        elif file is not None and name in file.values:
            found[name] = f"{file.path}: {file.names.get(name, name)}"
        elif name == "image_cache_dir":
            found[name] = "derived from data_dir"
        else:
            found[name] = "default"
    return found
