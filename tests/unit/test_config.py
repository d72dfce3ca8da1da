"""imagecache.config: precedence, coercion and the errors a user sees."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagecache.config import (
    ConfigError,
    GiB,
    Settings,
    coerce,
    effective_min_free,
    load_settings,
    option_names,
    peer_fill_on,
    read_config_file,
    read_environment,
)


def write(tmp_path: Path, text: str | bytes, name: str = "imagecache.toml") -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


# -- defaults and derived values ----------------------------------------------------


def test_defaults_follow_glance() -> None:
    settings = load_settings(None, {}, None)
    assert settings == Settings()
    assert settings.image_cache_driver == "sqlite"
    assert settings.image_cache_max_size == 10 * GiB
    assert settings.image_cache_stall_time == 86400
    assert settings.bind_host == "127.0.0.1"
    assert settings.bind_port == 9292
    assert settings.auth_strategy == "none"


def test_image_cache_dir_defaults_under_data_dir() -> None:
    assert Settings(data_dir="d").image_cache_dir == os.path.join("d", "image-cache")
    assert Settings(data_dir="d", image_cache_dir="c").image_cache_dir == "c"


def test_replace_moves_a_derived_cache_dir_with_the_data_dir() -> None:
    moved = Settings().replace(data_dir="elsewhere")
    assert moved.image_cache_dir == os.path.join("elsewhere", "image-cache")
    kept = Settings(image_cache_dir="cache").replace(data_dir="elsewhere")
    assert kept.image_cache_dir == "cache"
    both = Settings().replace(data_dir="d", image_cache_dir="c")
    assert both.image_cache_dir == "c"


def test_replace_validates() -> None:
    with pytest.raises(ConfigError, match="workers"):
        Settings().replace(workers=0)


def test_option_names_exclude_extra() -> None:
    names = option_names()
    assert "extra" not in names
    assert {"data_dir", "image_cache_max_size", "bind_port"} <= set(names)


def test_every_field_of_settings_is_an_option() -> None:
    """No field that a file, the environment or a flag cannot set (an ad-hoc ``extra`` once was one)."""
    assert option_names() == tuple(f.name for f in dataclasses.fields(Settings))
    with pytest.raises(TypeError):
        Settings(extra={})


def test_effective_min_free() -> None:
    assert effective_min_free(Settings(), 100 * GiB) == GiB
    assert effective_min_free(Settings(), 10 * GiB) == GiB // 2
    assert effective_min_free(Settings(image_cache_min_free=7), 100 * GiB) == 7


# -- precedence ---------------------------------------------------------------------


def test_precedence_defaults_file_environment_overrides(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        'bind_port = 7000\nworkers = 3\ndata_dir = "file"\nlog_level = "DEBUG"\n',
    )
    env = {"IMAGECACHE_WORKERS": "4", "IMAGECACHE_DATA_DIR": "env"}
    settings = load_settings(config, env, {"data_dir": "flag", "bind_host": None})
    assert settings.bind_host == "127.0.0.1"  # default: None overrides nothing
    assert settings.bind_port == 7000  # file
    assert settings.log_level == "DEBUG"  # file
    assert settings.workers == 4  # environment beats file
    assert settings.data_dir == "flag"  # override beats environment


def test_default_table_like_glance(tmp_path: Path) -> None:
    config = write(tmp_path, '[DEFAULT]\nimage_cache_max_size = 1024\nworkers = 1\n')
    settings = load_settings(config, {}, None)
    assert settings.image_cache_max_size == 1024
    assert settings.workers == 1


def test_top_level_keys_beat_the_default_table(tmp_path: Path) -> None:
    config = write(tmp_path, 'workers = 5\n[DEFAULT]\nworkers = 1\nbind_port = 8000\n')
    settings = load_settings(config, {}, None)
    assert settings.workers == 5
    assert settings.bind_port == 8000


def test_environment_is_read_from_the_mapping_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGECACHE_WORKERS", "9")
    assert load_settings(None, {}, None).workers == 2
    assert load_settings(None, None, None).workers == 9


def test_environment_ignores_other_variables_and_the_test_db_url() -> None:
    env = {
        "PATH": "/bin",
        "IMAGECACHE_TEST_DB_URL": "postgresql://x",
        "IMAGECACHE_bind_port": "81",
    }
    assert read_environment(env) == {"bind_port": "81"}


# -- coercion -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("workers", "3", 3),
        ("workers", " 3 ", 3),
        ("workers", 3.0, 3),
        ("upstream_timeout", "2.5", 2.5),
        ("upstream_timeout", 2, 2.0),
        ("serve_stale_on_upstream_error", "yes", True),
        ("serve_stale_on_upstream_error", "Off", False),
        ("serve_stale_on_upstream_error", True, True),
        ("db_url", "", None),
        ("db_url", None, None),
        ("image_cache_min_free", "", None),
        ("image_cache_min_free", "5", 5),
        ("data_dir", "d", "d"),
    ],
)
def test_coerce(name: str, value: object, expected: object) -> None:
    result = coerce(name, value)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("workers", "many", "workers must be an int, not 'many'"),
        ("workers", 2.5, "workers must be an int"),
        ("workers", True, "workers must be an int"),
        ("workers", None, "workers needs a value"),
        ("workers", [1], "workers must be an int"),
        ("upstream_timeout", "soon", "upstream_timeout must be a float"),
        ("upstream_timeout", False, "upstream_timeout must be a float"),
        ("image_cache_hit_flush_interval", "nan", "image_cache_hit_flush_interval must be a float, not 'nan'"),
        ("send_timeout", float("inf"), "send_timeout must be a float"),
        ("serve_stale_on_upstream_error", "maybe", "must be a bool"),
        ("data_dir", ["a"], "data_dir must be a str"),
        ("data_dir", True, "data_dir must be a str"),
        ("no_such_option", "1", "unknown option 'no_such_option'"),
        ("extra", {}, "unknown option"),
    ],
)
def test_coerce_errors(name: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        coerce(name, value)


@given(st.integers(min_value=0, max_value=1 << 62))
def test_ints_survive_text(number: int) -> None:
    assert coerce("image_cache_max_size", str(number)) == number


# -- errors a user makes ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("workers = [\n", "is not valid TOML"),
        ("[cache]\nsize = 1\n", r"unknown section \[cache\]"),
        ("DEFAULT = 3\n", r"\[DEFAULT\] must be a table"),
        ("no_such_option = 1\n", "unknown option 'no_such_option'"),
        ("workers = 'two'\n", "workers must be an int"),
        ("workers = 0\n", "workers must be at least 1"),
        ("image_cache_driver = 'redis'\n", "image_cache_driver must be one of"),
        ("auth_strategy = 'keystone'\n", "auth_strategy must be one of"),
        ("auth_strategy = 'tokens'\n", "needs tokens_file"),
        ("image_cache_driver = 'central'\n", "needs db_url"),
        ("hashing_algorithm = 'crc32'\n", "hashing_algorithm must be one of"),
        ("image_cache_verify = 'md5'\n", "image_cache_verify must be one of strongest, all, not 'md5'"),
        ("image_cache_max_size = -1\n", "must not be negative"),
        ("image_cache_min_free = -1\n", "must not be negative"),
        ("bind_port = 70000\n", "bind_port must be between"),
        ("log_level = 'LOUD'\n", "log_level must be one of"),
    ],
)
def test_bad_config_files_are_config_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(write(tmp_path, text), {}, None)


def test_missing_unreadable_and_binary_config_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_config_file(str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigError, match="cannot read"):
        read_config_file(str(tmp_path))
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_config_file(write(tmp_path, b"\xff\xfeworkers = 1\n"))


def test_log_level_is_case_insensitive() -> None:
    assert Settings(log_level="debug").log_level == "debug"


def test_unknown_environment_variable_is_named() -> None:
    with pytest.raises(ConfigError, match="IMAGECACHE_WORKRES names no option"):
        load_settings(None, {"IMAGECACHE_WORKRES": "2"}, None)


def test_bad_environment_value_is_named() -> None:
    with pytest.raises(ConfigError, match="bind_port must be an int, not 'http'"):
        load_settings(None, {"IMAGECACHE_BIND_PORT": "http"}, None)


def test_unknown_override_is_an_error() -> None:
    with pytest.raises(ConfigError, match="unknown option"):
        load_settings(None, {}, {"bogus": 1})


@pytest.mark.parametrize(
    "bad",
    [
        {"threads": 0},
        {"max_connections": 0},
        {"max_connections": 1, "workers": 2},
        {"client_header_timeout": 0},
        {"send_timeout": -1},
        {"keepalive_timeout": -1},
        {"limit_request_line": 8191},
        {"limit_request_fields": 0},
        {"limit_request_field_size": 0},
    ],
)
def test_serving_limits_are_checked(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        Settings(**bad)


@pytest.mark.parametrize(("changes", "message"), [
    ({"peer_timeout": 0}, "peer_timeout must be a positive"),
    ({"node_site": " "}, "node_site must be a name"),
    ({"node_site": "x" * 256}, "node_site must be a name"),
    ({"peer_token": ""}, "peer_token must not be empty"),
])
def test_peer_options_are_checked(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings(**changes)


CENTRAL = {"image_cache_driver": "central", "db_url": "postgresql://x/y"}


@pytest.mark.parametrize(("changes", "on"), [
    ({}, False),
    ({"peer_token": "s3cret"}, False),  # no central index: no peers to know of
    (CENTRAL, False),  # no token
    ({**CENTRAL, "peer_token": "s3cret"}, True),
    ({**CENTRAL, "peer_token": "s3cret", "peer_fill": False}, False),
])
def test_peer_fill_needs_the_central_index_and_a_token(changes: dict[str, object], on: bool) -> None:
    assert peer_fill_on(Settings(**changes)) is on


# -- pre-warming: a list, a table and their checks --------------------------------------------------


def test_prewarm_options_from_a_toml_file_top_level_or_default(tmp_path: Path) -> None:
    top = write(tmp_path, 'prewarm_tags = ["golden", "base"]\nprewarm_pin = true\n'
                          'prewarm_properties = {os_distro = "ubuntu", hw_arch = "x86_64"}\n')
    settings = load_settings(top, {}, None)
    assert settings.prewarm_tags == ("golden", "base") and settings.prewarm_pin is True
    assert settings.prewarm_properties == (("hw_arch", "x86_64"), ("os_distro", "ubuntu"))
    as_section = write(tmp_path, '[prewarm_properties]\nos_distro = "ubuntu"\n', name="section.toml")
    assert load_settings(as_section, {}, None).prewarm_properties == (("os_distro", "ubuntu"),)
    in_default = write(tmp_path, '[DEFAULT]\nprewarm_tags = ["golden"]\nprewarm_visibility = ["public", "shared"]\n'
                                 'prewarm_max_bytes_per_second = 1048576\n', name="default.toml")
    settings = load_settings(in_default, {}, None)
    assert settings.prewarm_tags == ("golden",) and settings.prewarm_visibility == ("public", "shared")
    assert settings.prewarm_max_bytes_per_second == 1 << 20


def test_prewarm_options_from_the_environment() -> None:
    settings = load_settings(None, {"IMAGECACHE_PREWARM_TAGS": "golden, base,",
                                    "IMAGECACHE_PREWARM_PROPERTIES": "os_distro:ubuntu, hw_arch : x86_64",
                                    "IMAGECACHE_PREWARM_INTERVAL": "60"}, None)
    assert settings.prewarm_tags == ("golden", "base")
    assert settings.prewarm_properties == (("hw_arch", "x86_64"), ("os_distro", "ubuntu"))
    assert settings.prewarm_interval == 60.0


def test_prewarm_defaults_select_nothing_and_would_take_public_images_only() -> None:
    settings = Settings()
    assert (settings.prewarm_tags, settings.prewarm_properties) == ((), ())
    assert settings.prewarm_visibility == ("public",) and settings.prewarm_pin is False
    assert settings.prewarm_max_concurrent == 1 and settings.prewarm_max_bytes_per_second == 50 << 20


@pytest.mark.parametrize(("name", "value", "message"), [
    ("prewarm_tags", "", None),
    ("prewarm_tags", 3, "prewarm_tags must be a list of strings, not 3"),
    ("prewarm_tags", ["golden", 1], "prewarm_tags must be a list of strings"),
    ("prewarm_properties", "os_distro", "prewarm_properties must be key:value pairs separated by commas"),
    ("prewarm_properties", {"os_distro": 7}, "prewarm_properties must be a table of strings"),
    ("prewarm_properties", ["os_distro"], "prewarm_properties must be a table of strings"),
])
def test_prewarm_values_of_the_wrong_kind_are_one_line_errors(name: str, value: object, message: str | None) -> None:
    if message is None:
        assert coerce(name, value) == ()  # an empty string is an empty list
        return
    with pytest.raises(ConfigError, match=message) as caught:
        coerce(name, value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("changes", "message"), [
    ({"prewarm_tags": ("golden", " ")}, "prewarm_tags must not hold an empty tag"),
    ({"prewarm_properties": ((" ", "x"),)}, "prewarm_properties must not name an empty property"),
    ({"prewarm_visibility": ("public", "all")}, "prewarm_visibility must list some of public, community"),
    ({"prewarm_visibility": ()}, "prewarm_visibility must list some of"),
    ({"prewarm_max_concurrent": 0}, "prewarm_max_concurrent must be at least 1"),
    ({"prewarm_max_bytes_per_second": -1}, "prewarm_max_bytes_per_second must not be negative"),
])
def test_prewarm_options_are_checked(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings(**changes)


def test_an_unknown_table_is_still_an_unknown_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown section \[prewarm\]"):
        read_config_file(write(tmp_path, '[prewarm]\ntags = ["golden"]\n'))


def test_prewarm_options_from_glances_file_in_the_imagecache_section(tmp_path: Path) -> None:
    conf = write(tmp_path, "[DEFAULT]\nimage_cache_max_size = 1024\n[imagecache]\nprewarm_tags = golden, base\n"
                           "prewarm_properties = os_distro:ubuntu, hw_arch:x86_64\nprewarm_pin = yes\n",
                 name="glance-api.conf")
    settings = load_settings(conf, {}, None)
    assert settings.prewarm_tags == ("golden", "base") and settings.prewarm_pin is True
    assert settings.prewarm_properties == (("hw_arch", "x86_64"), ("os_distro", "ubuntu"))
    bad = write(tmp_path, "[imagecache]\nprewarm_properties = os_distro\n", name="bad.conf")
    with pytest.raises(ConfigError, match=r"bad.conf: \[imagecache\] prewarm_properties must be key:value pairs"):
        load_settings(bad, {}, None)
