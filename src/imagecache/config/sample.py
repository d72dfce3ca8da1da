"""Every option with its default and help, as TOML or INI: ``imagecache config sample`` and ``show``.

Generated from the one table, :class:`~imagecache.config.settings.Settings`:
its fields give the names, types and defaults, their docstrings the help,
and :data:`~imagecache.config.glance.GLANCE_OPTIONS` which options sit under
Glance's names in an INI file's ``[DEFAULT]``.  No second list to keep in
step.

As oslo-config-generator does, the sample shows each option commented out
(``#name = default``): a file made from it sets nothing until a line is
uncommented, so it never pins a default that a later version changes.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import json
import re
import textwrap
import typing
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from imagecache.config import settings as settings_module
from imagecache.config.files import Format
from imagecache.config.glance import GLANCE_OPTIONS, OWN_SECTION
from imagecache.config.settings import Pairs, Settings, option_type, table_options

#: Options whose values ``show`` masks: they are secrets.
SECRETS = frozenset({"peer_token", "upstream_auth_token"})
MASK = "********"
WIDTH = 79

_TYPE_NAMES = {bool: "boolean", int: "integer", float: "number", str: "string"}


def option_help() -> dict[str, str]:
    """Each option's docstring, read from the source of Settings.

    Python keeps no attribute docstrings at run time, so they are read from
    the source, as Sphinx reads them.  Without the source (a bytecode-only
    install) there is no help, only names and defaults.
    """
    try:
        tree = ast.parse(inspect.getsource(settings_module))
    except (OSError, TypeError):
        return {}
    body = next(node.body for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Settings")
    found: dict[str, str] = {}
    for current, following in itertools.pairwise(body):
        if (
            isinstance(current, ast.AnnAssign)
            and isinstance(current.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            found[current.target.id] = " ".join(inspect.cleandoc(following.value.value).split())
    return found


def defaults() -> dict[str, Any]:
    """Each option's default as the field declares it (``image_cache_dir`` empty: derived)."""
    found: dict[str, Any] = {}
    for item in dataclasses.fields(Settings):
        if item.default is not dataclasses.MISSING:
            found[item.name] = item.default
        elif item.default_factory is not dataclasses.MISSING:
            found[item.name] = item.default_factory()
    return found


def type_name(name: str) -> str:
    """``integer``, ``list of strings``...: what an option takes, for the help line."""
    kind, optional = option_type(name)
    if kind == Pairs:
        text = "table of strings"
    elif typing.get_origin(kind) in (list, tuple):
        text = "list of strings"
    else:
        text = _TYPE_NAMES.get(kind, getattr(kind, "__name__", str(kind)))
    return f"{text}, may be unset" if optional else text


def toml_value(value: Any, *, table: bool = False) -> str:
    """``value`` as TOML; None (unset) as ``""``, which every option reads as unset or empty.

    ``table``: the value of a table option, (key, value) pairs, as an inline table.
    """
    if value is None:
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if table:
        return "{" + ", ".join(f"{json.dumps(key)} = {json.dumps(item)}" for key, item in value) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(json.dumps(str(item)) for item in value) + "]"
    return json.dumps(str(value))  # a JSON string is a TOML basic string


def ini_value(value: Any, *, table: bool = False) -> str:
    """``value`` in oslo.config's syntax; None (unset) as nothing; a table option's pairs as ``key:value,...``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if table:
        return ",".join(f"{key}:{item}" for key, item in value)
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    return str(value)


def mask(name: str, value: Any) -> Any:
    """A secret's value hidden, and a password in a database URL."""
    if value in (None, ""):
        return value
    if name in SECRETS:
        return MASK
    if name == "db_url" and isinstance(value, str):
        parts = urlsplit(value)
        if parts.password:
            host = parts.netloc.rpartition("@")[2]
            return urlunsplit(parts._replace(netloc=f"{parts.username}:{MASK}@{host}"))
    return value


def _comment(text: str) -> list[str]:
    text = re.sub(r"``(.+?)``", r"\1", text)
    return textwrap.wrap(text, WIDTH - 2, initial_indent="# ", subsequent_indent="# ", break_on_hyphens=False)


def _entry(spelled: str, value: str, about: str, sample: bool) -> list[str]:
    """Help wrapped above a commented-out default (the sample), or one line of origin above a value (show)."""
    assignment = f"{spelled} = {value}".rstrip()
    if sample:
        return [*_comment(about), "#" + assignment, ""]
    return [*([f"# {about}"] if about else []), assignment, ""]


_TOML_HEAD = """\
# imagecache settings (TOML).
# {what}
# Use with: imagecache serve --config FILE (and the clean, prune, prefetch and db commands).
# Precedence, lowest first: defaults, this file, IMAGECACHE_<OPTION> variables, flags.
# "" leaves an option unset (or empty).
"""

_INI_HEAD = """\
# imagecache settings (INI, oslo.config's syntax).
# {what}
# Use with: imagecache serve --config FILE (and the clean, prune, prefetch and db commands).
# [DEFAULT] holds the options imagecache shares with Glance, under Glance's names, so
# Glance's own glance-api.conf or glance-cache.conf can be given as they are.
# [imagecache] holds imagecache's own options (Glance ignores the section); it may
# set shared ones too, by imagecache's names, and then wins over [DEFAULT].
# Precedence, lowest first: defaults, this file, IMAGECACHE_<OPTION> variables, flags.
"""

SAMPLE_WHAT = "Every option with its default, commented out: uncomment a line to set it."
SHOW_WHAT = "What a node would use; where a value is no default, where it comes from.\n# Secrets are masked."


def render(
    fmt: Format,
    values: Mapping[str, Any] | None = None,
    *,
    origins: Mapping[str, str] | None = None,
) -> str:
    """Every option as a settings file of format ``fmt``.

    Without ``values``: the sample, each option's default commented out
    under its help.  With them (``show``): each value set, under where it
    comes from when that is not its default (``origins``).
    """
    sample = values is None
    values = defaults() if values is None else values
    origins = origins or {}
    helps = option_help()
    tables = table_options()
    names = [item.name for item in dataclasses.fields(Settings)]
    shared = {}
    if fmt == "ini":
        shared = {entry.target: entry for entry in GLANCE_OPTIONS if entry.in_sample and entry.section == "DEFAULT"}

    def entry(name: str) -> list[str]:
        spelled = shared[name].name if name in shared else name
        table = name in tables
        value = ini_value(values[name], table=table) if fmt == "ini" else toml_value(values[name], table=table)
        if sample:
            renamed = f"; imagecache calls it {name}" if spelled != name else ""
            about = f"{helps.get(name, '')} ({type_name(name)}{renamed})".strip()
        else:
            origin = origins.get(name, "default")
            about = "" if origin == "default" else f"from {origin}"
        return _entry(spelled, value, about, sample)

    what = SAMPLE_WHAT if sample else SHOW_WHAT
    if fmt == "toml":
        lines = [_TOML_HEAD.format(what=what)]
        for name in names:
            lines += entry(name)
        return "\n".join(lines)
    lines = [_INI_HEAD.format(what=what), "[DEFAULT]", ""]
    for name in names:
        if name in shared:
            lines += entry(name)
    lines += [f"[{OWN_SECTION}]", ""]
    for name in names:
        if name not in shared:
            lines += entry(name)
    return "\n".join(lines)


def render_effective(settings: Settings, fmt: Format, origins: Mapping[str, str]) -> str:
    """What ``settings`` holds, as a settings file of format ``fmt``, secrets masked."""
    values = {item.name: mask(item.name, getattr(settings, item.name)) for item in dataclasses.fields(Settings)}
    return render(fmt, values, origins=origins)
