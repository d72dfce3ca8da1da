"""Glance's own config files (``glance-api.conf``, ``glance-cache.conf``), read as Glance reads them.

An operator's ``glance-api.conf`` goes to ``imagecache serve --config`` as it
is.  The options imagecache shares with Glance (:data:`GLANCE_OPTIONS`) are
taken from the section Glance reads them from, under Glance's names.
imagecache's own options live in an ``[imagecache]`` section, under
imagecache's names (oslo.config ignores sections it does not know, so the
same file still starts Glance); they win over what ``[DEFAULT]`` says.  Every
other option in the file belongs to Glance or its libraries: it is reported
as not used, never fatal (:func:`ignored_notice`).

Values follow oslo.config's syntax (:func:`imagecache.config.settings.coerce`)
and its parser's habits: ``=`` or ``:``, names case-sensitive, a value in
matching quotes loses them, no ``$interpolation``.  Nothing of oslo.config is
imported: it is heavy, and only its syntax is needed.

Adding an option Glance shares is one line in :data:`GLANCE_OPTIONS`; an
option of imagecache's own needs nothing here.
"""

from __future__ import annotations

import configparser
import difflib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from imagecache.config.settings import ConfigError, option_names, parse_bool

#: The section of an INI file that holds imagecache's own options.
OWN_SECTION = "imagecache"
#: What stands for configparser's special default section: a name no file can have,
#: so that ``[DEFAULT]`` is a section like the others and leaks into none of them.
_NO_DEFAULTS = "\x00"


def _driver(value: str) -> str:
    """Glance's driver names (any case) to ours: its ``centralized_db`` is our ``central``."""
    drivers = {"sqlite": "sqlite", "xattr": "xattr", "centralized_db": "central", "central": "central"}
    try:
        return drivers[value.strip().lower()]
    except KeyError:
        raise ValueError(f"must be one of sqlite, xattr, centralized_db, not {value!r}") from None


def _workers(value: str) -> str:
    """Glance's ``workers = 0`` means one process serving; ours counts that as one worker."""
    return "1" if value.strip() == "0" else value


def _debug(value: str) -> str | None:
    """oslo.log's ``debug = true`` is our DEBUG level; false leaves the level alone."""
    try:
        return "DEBUG" if parse_bool(value) else None
    except ValueError:
        raise ValueError(f"must be true or false, not {value!r}") from None


@dataclass(frozen=True)
class GlanceOption:
    """An option imagecache shares with Glance: where Glance reads it, and which of ours it sets."""

    name: str
    """Glance's name for it."""
    option: str = ""
    """Ours; empty: the same name."""
    section: str = "DEFAULT"
    convert: Callable[[str], str | None] | None = None
    """Glance's value (text) to ours; None from it leaves our option unset.  A
    ValueError's message says what is wrong with the value."""
    in_sample: bool = True
    """Shown under ``[DEFAULT]`` in the INI sample (False: a Glance option that only implies one of ours)."""

    @property
    def target(self) -> str:
        return self.option or self.name

    @property
    def label(self) -> str:
        return f"[{self.section}] {self.name}"


#: Every option Glance and imagecache share.  Glance's defaults are not ours for
#: all of them (bind_host, workers, image_cache_driver): what a file does not set
#: keeps imagecache's default.
GLANCE_OPTIONS: tuple[GlanceOption, ...] = (
    GlanceOption("image_cache_dir"),
    GlanceOption("image_cache_sqlite_db"),
    GlanceOption("image_cache_driver", convert=_driver),
    GlanceOption("image_cache_max_size"),
    GlanceOption("image_cache_stall_time"),
    GlanceOption("hashing_algorithm"),
    GlanceOption("worker_self_reference_url", "node_url"),
    GlanceOption("bind_host"),
    GlanceOption("bind_port"),
    GlanceOption("workers", convert=_workers),
    GlanceOption("cache_prefetcher_interval", "prefetcher_interval"),
    GlanceOption("debug", "log_level", convert=_debug, in_sample=False),
)


class IniOptions(NamedTuple):
    """What an INI file sets for imagecache, how the file names each value, and what it sets that we do not use."""

    values: dict[str, str]
    """Option -> its text (converted from Glance's value where Glance's differs)."""
    names: dict[str, str]
    """Option -> where the file set it: ``[DEFAULT] worker_self_reference_url``."""
    ignored: tuple[str, ...]
    """``[section] name`` of each option the file sets that imagecache does not use."""


def parse_ini(text: str, path: str) -> dict[str, dict[str, str]]:
    """Sections -> options -> raw values of an INI file; a malformed one is a one-line ConfigError."""
    parser = configparser.ConfigParser(
        interpolation=None, strict=False, default_section=_NO_DEFAULTS, empty_lines_in_values=False
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # oslo.config's names are case-sensitive
    try:
        parser.read_string(text, source=path)
    except configparser.MissingSectionHeaderError as exc:
        line = exc.line.strip()
        what = f"{line!r} is no [section] header" if line.startswith("[") else "an option before any [section]"
        raise ConfigError(f"config file {path} line {exc.lineno}: {what}") from None
    except configparser.ParsingError as exc:
        lineno = exc.errors[0][0]
        raise ConfigError(f"config file {path} line {lineno} is neither a [section] nor name = value") from None
    except configparser.Error as exc:
        raise ConfigError(f"config file {path} is not valid INI: {' '.join(str(exc).split())}") from None
    return {section: dict(parser.items(section, raw=True)) for section in parser.sections()}


def _unquote(value: str) -> str:
    """oslo.config's parser drops one pair of matching quotes around a value."""
    value = value.strip()
    if len(value) > 1 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def options_from_ini(
    sections: Mapping[str, Mapping[str, str]], path: str, table: Iterable[GlanceOption] = GLANCE_OPTIONS
) -> IniOptions:
    """Read ``sections`` as imagecache reads an INI file: Glance's shared options, then ``[imagecache]``.

    Pure: ``sections`` is what :func:`parse_ini` returns.  A Glance value
    that cannot be converted, or an unknown name in ``[imagecache]``, is a
    ConfigError naming the section and option; anything else the file sets
    is listed in ``ignored``.
    """
    values: dict[str, str] = {}
    names: dict[str, str] = {}
    shared = {(entry.section, entry.name): entry for entry in table}
    ignored: list[str] = []
    for section, options in sections.items():
        if section == OWN_SECTION:
            continue
        for name, raw in options.items():
            entry = shared.get((section, name))
            if entry is None:
                ignored.append(f"[{section}] {name}")
                continue
            text = _unquote(raw)
            try:
                value = text if entry.convert is None else entry.convert(text)
            except ValueError as exc:
                raise ConfigError(f"config file {path}: {entry.label} {exc}") from None
            if value is not None:
                values[entry.target] = value
                names[entry.target] = entry.label
    known = set(option_names())
    for name, raw in sections.get(OWN_SECTION, {}).items():
        if name not in known:
            hint = _did_you_mean(name, known)
            raise ConfigError(f"config file {path}: [{OWN_SECTION}] {name} is no imagecache option{hint}")
        values[name] = _unquote(raw)
        names[name] = f"[{OWN_SECTION}] {name}"
    return IniOptions(values, names, tuple(ignored))


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.85)
    return f" (did you mean {close[0]}?)" if close else ""


def ignored_notice(
    path: str, ignored: Iterable[str], table: Iterable[GlanceOption] = GLANCE_OPTIONS
) -> tuple[int, str] | None:
    """(log level, one line) listing what ``path`` sets that imagecache does not use; None if nothing.

    INFO, since a Glance file always holds options of Glance's own; WARNING
    when a name looks like a typo of a shared option of its section, or is
    one of imagecache's own options in ``[DEFAULT]`` (they are read from
    ``[imagecache]`` only).  Names only: values (passwords) never appear.
    """
    entries = list(ignored)
    if not entries:
        return None
    shared: dict[str, list[str]] = {}
    for option in table:
        shared.setdefault(option.section, []).append(option.name)
    own = set(option_names())
    by_section: dict[str, list[str]] = {}
    suspicious = []
    for entry in entries:
        section, _, name = entry[1:].partition("] ")
        by_section.setdefault(section, []).append(name)
        guess = _did_you_mean(name, shared.get(section, ()))
        if guess:
            suspicious.append(f"{entry}{guess}")
        elif section == "DEFAULT" and name in own:
            suspicious.append(f"{entry} (imagecache reads its own options from [{OWN_SECTION}])")
    listing = "; ".join(f"[{section}] {', '.join(names)}" for section, names in by_section.items())
    count = f"{len(entries)} option{'' if len(entries) == 1 else 's'}"
    line = f"config file {path}: {count} not used by imagecache: {listing}"
    if suspicious:
        return logging.WARNING, f"{line}; check {', '.join(suspicious)}"
    return logging.INFO, line
