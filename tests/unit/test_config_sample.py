"""``imagecache config sample`` and ``show``: every option, from the one table, and back again."""

from __future__ import annotations

import dataclasses
import re
import string
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagecache.cli import main
from imagecache.config import Settings, load, load_settings
from imagecache.config.files import origins
from imagecache.config.glance import GLANCE_OPTIONS
from imagecache.config.sample import MASK, SECRETS, ini_value, option_help, render, render_effective, toml_value
from imagecache.config.settings import coerce, option_names
from tests.support.glance_conf import SECRETS as GLANCE_SECRETS
from tests.support.glance_conf import glance_api_conf

FORMATS = {"toml": "imagecache.toml", "ini": "imagecache.conf"}
#: ``#name = value`` (an option commented out), not ``# words`` (help).
OPTION_LINE = re.compile(r"^#(?P<name>\w+) =", re.MULTILINE)
ASSIGNMENT = re.compile(r"^(?P<name>\w+) =", re.MULTILINE)
IN_DEFAULT = {entry.target: entry.name for entry in GLANCE_OPTIONS if entry.in_sample}


def spelled(name: str, fmt: str) -> str:
    """How the sample of ``fmt`` names option ``name`` (Glance's name under [DEFAULT] in INI)."""
    return IN_DEFAULT.get(name, name) if fmt == "ini" else name


def uncommented(text: str) -> str:
    return OPTION_LINE.sub(lambda m: f"{m['name']} =", text)


def write(tmp_path: Path, text: str, name: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_option_appears_once_with_help(fmt: str) -> None:
    text = render(fmt)  # type: ignore[arg-type]
    shown = OPTION_LINE.findall(text)
    assert sorted(shown) == sorted(spelled(name, fmt) for name in option_names())
    assert not ASSIGNMENT.findall(text), "the sample sets nothing until a line is uncommented"
    for line in text.splitlines():
        assert len(line) <= 100, line


def test_every_option_has_help() -> None:
    """The help is the field's docstring: an option added without one would print bare."""
    helps = option_help()
    assert [name for name in option_names() if not helps.get(name)] == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_sample_parses_back_to_the_defaults(tmp_path: Path, fmt: str) -> None:
    text = render(fmt)  # type: ignore[arg-type]
    assert load_settings(write(tmp_path, text, FORMATS[fmt]), {}, None) == Settings()
    every_line_set = uncommented(text)
    assert sorted(ASSIGNMENT.findall(every_line_set)) == sorted(spelled(name, fmt) for name in option_names())
    settings, file = load(write(tmp_path, every_line_set, FORMATS[fmt]), {}, None)
    assert settings == Settings()
    assert file is not None and file.ignored == ()


def test_the_ini_sample_puts_shared_options_under_glances_names() -> None:
    text = render("ini")
    default, _, own = text.partition("\n[imagecache]\n")
    assert "\n[DEFAULT]\n" in default
    assert "#worker_self_reference_url =" in default and "#node_url" not in text
    assert "#cache_prefetcher_interval = 300.0" in default
    assert "#upstream_url =" in own and "#image_cache_dir" not in own


def test_the_cli_prints_the_sample() -> None:
    for fmt in FORMATS:
        result = CliRunner().invoke(main, ["config", "sample", "--format", fmt])
        assert result.exit_code == 0, result.output
        assert result.output == render(fmt)  # type: ignore[arg-type]
    assert CliRunner().invoke(main, ["config", "sample"]).output == render("toml")


# -- values round-trip through both syntaxes ----------------------------------------

TEXT = st.text(string.ascii_letters + string.digits + "/:._-@", min_size=1, max_size=20)
#: A tag, a property's name or value: what lists and tables hold.
WORD = st.text(string.ascii_letters + string.digits + "._-", min_size=1, max_size=12)


@given(st.booleans() | st.integers(0, 1 << 62) | st.floats(0, 1e9, allow_nan=False) | TEXT)
def test_values_written_read_back(value: object) -> None:
    kind = {bool: "peer_fill", int: "image_cache_max_size", float: "upstream_timeout", str: "node_site"}
    name = kind[type(value)]
    import tomllib

    assert coerce(name, tomllib.loads(f"x = {toml_value(value)}")["x"]) == value
    assert coerce(name, ini_value(value)) == value


CHANGES = st.fixed_dictionaries(
    {},
    optional={
        "image_cache_max_size": st.integers(0, 1 << 50),
        "image_cache_min_free": st.integers(0, 1 << 40),
        "bind_host": st.sampled_from(["0.0.0.0", "::", "edge-1.example"]),
        "bind_port": st.integers(1, 65535),
        "node_url": TEXT.map(lambda t: f"http://{t}"),
        "peer_fill": st.booleans(),
        "upstream_timeout": st.floats(0.5, 600, allow_nan=False),
        "peer_token": TEXT,
        "log_level": st.sampled_from(["DEBUG", "warning"]),
        "data_dir": TEXT,
        "prewarm_tags": st.lists(WORD, max_size=3).map(tuple),
        "prewarm_properties": st.dictionaries(WORD, WORD, max_size=3).map(lambda d: tuple(sorted(d.items()))),
        "prewarm_visibility": st.sampled_from([("public",), ("public", "shared")]),
        "prewarm_pin": st.booleans(),
    },
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
@given(changes=CHANGES, fmt=st.sampled_from(sorted(FORMATS)))
def test_show_reads_back_as_what_it_shows(tmp_path: Path, changes: dict[str, object], fmt: str) -> None:
    original = Settings(**changes)
    text = render_effective(original, fmt, {})  # type: ignore[arg-type]
    again = load_settings(write(tmp_path, text, FORMATS[fmt]), {}, None)
    for item in dataclasses.fields(Settings):
        if item.name in SECRETS and getattr(original, item.name):
            assert getattr(again, item.name) == MASK
        else:
            assert getattr(again, item.name) == getattr(original, item.name), item.name


# -- show ---------------------------------------------------------------------------------


def test_show_says_where_values_come_from_and_hides_secrets(tmp_path: Path) -> None:
    extra = "\n[imagecache]\ndb_url = postgresql://ic:DB_SECRET@db/ic\npeer_token = PEER_SECRET\n"
    path = write(tmp_path, glance_api_conf(extra, image_cache_driver="centralized_db"), "glance-api.conf")
    env = {"IMAGECACHE_THREADS": "16"}
    result = CliRunner().invoke(main, ["config", "show", "--config", path, "--data-dir", "/srv/ic"], env=env)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"# from {path}: [DEFAULT] image_cache_max_size\nimage_cache_max_size = 5368709120\n" in out
    assert "# from environment IMAGECACHE_THREADS\nthreads = 16\n" in out
    assert "# from flag\ndata_dir = /srv/ic\n" in out
    assert "image_cache_driver = central\n" in out
    assert f"db_url = postgresql://ic:{MASK}@db/ic\n" in out
    assert f"peer_token = {MASK}\n" in out
    for secret in ("DB_SECRET", "PEER_SECRET", *GLANCE_SECRETS):
        assert secret not in result.output
    assert "options not used by imagecache: [DEFAULT] debug" not in result.stderr  # debug is taken
    assert "[keystone_authtoken] www_authenticate_uri" in result.stderr


def test_show_turns_a_glance_file_into_toml(tmp_path: Path) -> None:
    path = write(tmp_path, glance_api_conf(), "glance-api.conf")
    result = CliRunner().invoke(main, ["config", "show", "--config", path, "--format", "toml"], env={})
    assert result.exit_code == 0, result.output
    converted = write(tmp_path, result.stdout, "imagecache.toml")
    assert load_settings(converted, {}, None) == load_settings(path, {}, None)


def test_show_with_a_bad_file_is_a_usage_error(tmp_path: Path) -> None:
    path = write(tmp_path, "[DEFAULT]\nimage_cache_max_size = 10G\n", "glance-api.conf")
    result = CliRunner().invoke(main, ["config", "show", "--config", path])
    assert result.exit_code == 2
    assert result.output == f"Error: config file {path}: [DEFAULT] image_cache_max_size must be an int, not '10G'\n"


def test_origins_of_derived_and_default_values() -> None:
    found = origins(Settings(), None, {}, {"image_cache_dir": None})
    assert found["image_cache_dir"] == "derived from data_dir"
    assert found["workers"] == "default"
