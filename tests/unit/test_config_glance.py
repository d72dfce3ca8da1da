"""Glance's own config files: what is taken, what is listed as not used, and the errors a user sees."""

from __future__ import annotations

import logging
import os
import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagecache.config import ConfigError, Settings, coerce, load, load_settings, merge, read_config, split_list
from imagecache.config.files import guess_format
from imagecache.config.glance import GLANCE_OPTIONS, OWN_SECTION, ignored_notice, options_from_ini, parse_ini
from imagecache.config.settings import option_names
from tests.support.glance_conf import SECRETS, glance_api_conf, glance_cache_conf


def write(tmp_path: Path, text: str, name: str = "glance-api.conf") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def from_text(text: str, environ: dict[str, str] | None = None, **flags: object) -> Settings:
    """Settings from an INI text, as ``load`` makes them, without a file (pure: hypothesis can call it)."""
    found = options_from_ini(parse_ini(text, "t.conf"), "t.conf")
    from imagecache.config import ConfigFile

    return merge(ConfigFile("t.conf", "ini", found.values, found.names, found.ignored), environ or {}, flags)


# -- a real glance-api.conf ---------------------------------------------------------


def test_a_glance_api_conf_gives_its_cache_and_server_options(tmp_path: Path) -> None:
    settings, file = load(write(tmp_path, glance_api_conf()), {}, None)
    assert file is not None and file.format == "ini"
    assert settings.image_cache_dir == "/var/lib/glance/image-cache/"
    assert settings.image_cache_max_size == 5368709120
    assert settings.image_cache_stall_time == 3600
    assert settings.image_cache_driver == "sqlite"
    assert settings.image_cache_sqlite_db == "glance-cache.db"
    assert settings.node_url == "http://glance-1.example.org:9292"
    assert (settings.bind_host, settings.bind_port, settings.workers) == ("127.0.0.1", 9292, 1)
    assert settings.prefetcher_interval == 60.0
    assert settings.log_level == "INFO"  # debug = False leaves the level alone


def test_everything_else_in_it_is_listed_once_and_never_fatal(tmp_path: Path) -> None:
    _, file = load(write(tmp_path, glance_api_conf()), {}, None)
    assert file is not None
    assert "[keystone_authtoken] password" in file.ignored
    assert "[DEFAULT] transport_url" in file.ignored
    assert "[fast] rbd_store_pool" in file.ignored
    assert "[paste_deploy] flavor" in file.ignored
    assert not any(entry.endswith(" image_cache_dir") for entry in file.ignored)
    assert len(file.ignored) == len(set(file.ignored))
    notice = file.notice()
    assert notice is not None
    level, line = notice
    assert level == logging.INFO
    assert "\n" not in line
    assert f"{len(file.ignored)} options not used" in line
    assert "[keystone_authtoken] www_authenticate_uri" in line
    assert not any(secret in line for secret in SECRETS)


def test_a_glance_cache_conf_serves_the_cache_tools(tmp_path: Path) -> None:
    settings, file = load(write(tmp_path, glance_cache_conf(image_cache_max_size=1000), "glance-cache.conf"), {}, None)
    assert settings.image_cache_max_size == 1000
    assert settings.image_cache_dir == "/var/lib/glance/image-cache/"
    assert file is not None and "[DEFAULT] admin_password" in file.ignored


def test_centralized_db_is_the_central_index_and_needs_our_database(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[DEFAULT\] image_cache_driver 'central' needs db_url"):
        load(write(tmp_path, glance_api_conf(image_cache_driver="centralized_db")), {}, None)
    extra = f"\n[{OWN_SECTION}]\ndb_url = postgresql://ic@db/ic\n"
    settings = load_settings(write(tmp_path, glance_api_conf(extra, image_cache_driver="Centralized_DB")), {}, None)
    assert (settings.image_cache_driver, settings.db_url) == ("central", "postgresql://ic@db/ic")


@pytest.mark.parametrize(("line", "expected"), [("workers = 0", 1), ("workers = 4", 4)])
def test_glance_workers_zero_is_one_process(line: str, expected: int) -> None:
    assert from_text(f"[DEFAULT]\n{line}\n").workers == expected


@pytest.mark.parametrize(("line", "level"), [("debug = True", "DEBUG"), ("debug = no", "INFO")])
def test_oslo_log_debug_sets_the_debug_level(line: str, level: str) -> None:
    assert from_text(f"[DEFAULT]\n{line}\n").log_level == level


# -- imagecache's own section -------------------------------------------------------


def test_the_imagecache_section_takes_every_option_and_wins_over_default() -> None:
    text = (
        "[DEFAULT]\nbind_port = 1000\nimage_cache_max_size = 7\n"
        f"[{OWN_SECTION}]\nbind_port = 2000\nupstream_url = http://glance:9292\npeer_fill = off\n"
    )
    settings = from_text(text)
    assert settings.bind_port == 2000
    assert settings.image_cache_max_size == 7
    assert settings.upstream_url == "http://glance:9292"
    assert settings.peer_fill is False


def test_an_imagecache_option_in_default_is_not_taken_and_the_notice_says_where_it_goes() -> None:
    found = options_from_ini(parse_ini("[DEFAULT]\nupstream_url = http://g:9292\n", "t.conf"), "t.conf")
    assert found.values == {} and found.ignored == ("[DEFAULT] upstream_url",)
    notice = ignored_notice("t.conf", found.ignored)
    assert notice is not None and notice[0] == logging.WARNING
    assert "1 option not used" in notice[1]
    assert "[DEFAULT] upstream_url (imagecache reads its own options from [imagecache])" in notice[1]


def test_a_typo_of_a_shared_option_is_a_warning_with_a_guess() -> None:
    notice = ignored_notice("t.conf", ["[DEFAULT] image_cache_max_sise", "[DEFAULT] transport_url"])
    assert notice is not None and notice[0] == logging.WARNING
    assert "[DEFAULT] image_cache_max_sise (did you mean image_cache_max_size?)" in notice[1]
    assert "transport_url (" not in notice[1]
    assert ignored_notice("t.conf", []) is None


# -- the errors a user sees ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[DEFAULT]\nimage_cache_max_size = 10GB\n", r"\[DEFAULT\] image_cache_max_size must be an int, not '10GB'"),
        ("[DEFAULT]\nimage_cache_max_size = -1\n", r"\[DEFAULT\] image_cache_max_size must not be negative"),
        ("[DEFAULT]\nimage_cache_stall_time = soon\n", r"\[DEFAULT\] image_cache_stall_time must be an int"),
        ("[DEFAULT]\nimage_cache_driver = redis\n",
         r"\[DEFAULT\] image_cache_driver must be one of sqlite, xattr, centralized_db, not 'redis'"),
        ("[DEFAULT]\nbind_port = 70000\n", r"\[DEFAULT\] bind_port must be between 1 and 65535"),
        ("[DEFAULT]\nbind_port =\n", r"\[DEFAULT\] bind_port must be an int, not ''"),
        ("[DEFAULT]\nworkers = -2\n", r"\[DEFAULT\] workers must be at least 1"),
        ("[DEFAULT]\ncache_prefetcher_interval = hourly\n", r"\[DEFAULT\] cache_prefetcher_interval must be a float"),
        ("[DEFAULT]\ndebug = maybe\n", r"\[DEFAULT\] debug must be true or false, not 'maybe'"),
        ("[DEFAULT]\nhashing_algorithm = crc32\n", r"\[DEFAULT\] hashing_algorithm must be one of"),
        (f"[{OWN_SECTION}]\npeer_tokn = x\n", r"\[imagecache\] peer_tokn is no imagecache option \(did you mean"),
        (f"[{OWN_SECTION}]\nthreads = lots\n", r"\[imagecache\] threads must be an int, not 'lots'"),
        (f"[{OWN_SECTION}]\nauth_strategy = keystone\n", r"\[imagecache\] auth_strategy must be one of none"),
        ("workers = 2\n", "line 1: an option before any \\[section\\]"),
        ("[DEFAULT\nworkers = 2\n", r"line 1: '\[DEFAULT' is no \[section\] header"),
        ("[DEFAULT]\nimage_cache_dir\n", "line 2 is neither a \\[section\\] nor name = value"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_file_the_section_and_the_option(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as raised:
        load_settings(path, {}, None)
    assert str(raised.value).startswith(f"config file {path}")
    assert "\n" not in str(raised.value)


def test_a_bad_value_a_flag_replaces_is_no_error() -> None:
    assert from_text("[DEFAULT]\nbind_port = http\n", bind_port=9000).bind_port == 9000
    assert from_text("[DEFAULT]\nbind_port = http\n", {"IMAGECACHE_BIND_PORT": "9001"}).bind_port == 9001


def test_errors_about_values_from_elsewhere_are_not_blamed_on_the_file() -> None:
    with pytest.raises(ConfigError) as raised:
        from_text("[DEFAULT]\nworkers = 4\n", max_connections=2)
    assert str(raised.value) == "max_connections must be at least the number of workers"


# -- oslo.config's syntax, and its parser's habits ------------------------------------


def test_quotes_interpolation_case_and_repeats_read_as_oslo_config_reads_them() -> None:
    text = (
        "[DEFAULT]\n"
        'image_cache_dir = "/srv/glance cache/%(here)s/$state_path"\n'
        "Image_Cache_Max_Size = 1\n"  # names are case-sensitive: this is not ours
        "image_cache_stall_time: 10\n"
        "image_cache_stall_time = 20\n"  # the last one wins
        "; a comment\n# another\n"
    )
    found = options_from_ini(parse_ini(text, "t.conf"), "t.conf")
    assert found.values["image_cache_dir"] == "/srv/glance cache/%(here)s/$state_path"
    assert found.values["image_cache_stall_time"] == "20"
    assert found.ignored == ("[DEFAULT] Image_Cache_Max_Size",)


BOOL_WORDS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


@given(st.sampled_from(sorted(BOOL_WORDS)), st.lists(st.booleans(), min_size=8, max_size=8), st.text(" \t", max_size=2))
def test_booleans_in_any_case(word: str, upper: list[bool], space: str) -> None:
    spelled = "".join(c.upper() if up else c for c, up in zip(word, upper, strict=False))
    assert from_text(f"[{OWN_SECTION}]\npeer_fill = {spelled}{space}\n").peer_fill is BOOL_WORDS[word]


ITEM = st.text(string.ascii_letters + string.digits + "-_.:/", min_size=1, max_size=12)


@given(st.lists(ITEM, max_size=6), st.sampled_from([",", ", ", " ,", " , "]), st.booleans(), st.booleans())
def test_lists_are_comma_separated(items: list[str], comma: str, brackets: bool, quoted: bool) -> None:
    shown = [f'"{item}"' if quoted else item for item in items]
    text = comma.join(shown)
    assert split_list(f"[{text}]" if brackets else text) == items


@given(st.integers(min_value=0, max_value=1 << 62), st.text(" ", max_size=3))
def test_sizes_are_plain_integers(size: int, space: str) -> None:
    assert from_text(f"[DEFAULT]\nimage_cache_max_size = {space}{size}{space}\n").image_cache_max_size == size


def test_a_list_option_takes_text_or_a_list() -> None:
    """No option is a list yet; coerce handles one (as a pre-warm tag list would be)."""
    from imagecache.config import settings as module

    assert module._string_items("tags", "golden, base") == ["golden", "base"]
    assert module._string_items("tags", ["golden"]) == ["golden"]
    with pytest.raises(ConfigError, match="tags must be a list of strings"):
        module._string_items("tags", [1])


NAME = st.text(string.ascii_lowercase + "_", min_size=1, max_size=20)
SECTION = st.text(string.ascii_letters + "_", min_size=1, max_size=15).filter(lambda s: s != OWN_SECTION)
VALUE = st.text(string.printable.replace("\n", "").replace("\r", "").replace("\x0b", "").replace("\x0c", ""),
                max_size=30)
SHARED = {(entry.section, entry.name) for entry in GLANCE_OPTIONS}


@given(st.dictionaries(SECTION, st.dictionaries(NAME, VALUE, max_size=5), max_size=5))
def test_options_we_do_not_know_are_never_fatal_and_all_listed(sections: dict[str, dict[str, str]]) -> None:
    foreign = {s: {n: v for n, v in opts.items() if (s, n) not in SHARED} for s, opts in sections.items()}
    text = "".join(f"[{s}]\n" + "".join(f"{n} = {v}\n" for n, v in opts.items()) for s, opts in foreign.items())
    found = options_from_ini(parse_ini(text, "t.conf"), "t.conf")
    assert found.values == {}
    assert sorted(found.ignored) == sorted(f"[{s}] {n}" for s, opts in foreign.items() for n in opts)
    assert from_text(text) == Settings()


# -- precedence: flags > the file > derived from data_dir > defaults ---------------------


MAYBE_DIR = st.none() | st.sampled_from(["a", "b/c", "/abs"])


@given(flag_dir=MAYBE_DIR, file_dir=MAYBE_DIR, env_dir=MAYBE_DIR, flag_data=MAYBE_DIR, file_data=MAYBE_DIR)
def test_precedence_of_the_cache_dir(
    flag_dir: str | None, file_dir: str | None, env_dir: str | None, flag_data: str | None, file_data: str | None
) -> None:
    text = "[DEFAULT]\n" + (f"image_cache_dir = {file_dir}\n" if file_dir else "")
    text += f"[{OWN_SECTION}]\n" + (f"data_dir = {file_data}\n" if file_data else "")
    env = {"IMAGECACHE_IMAGE_CACHE_DIR": env_dir} if env_dir else {}
    settings = from_text(text, env, image_cache_dir=flag_dir, data_dir=flag_data)
    data_dir = flag_data or file_data or "var"
    assert settings.data_dir == data_dir
    assert settings.image_cache_dir == (flag_dir or env_dir or file_dir or os.path.join(data_dir, "image-cache"))


@given(flag=st.none() | st.integers(1, 9), env=st.none() | st.integers(1, 9), file=st.none() | st.integers(1, 9))
def test_precedence_of_a_shared_option(flag: int | None, env: int | None, file: int | None) -> None:
    text = "[DEFAULT]\n" + (f"workers = {file}\n" if file else "")
    environ = {"IMAGECACHE_WORKERS": str(env)} if env else {}
    assert from_text(text, environ, workers=flag).workers == (flag or env or file or Settings().workers)


# -- which kind of file ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "kind"),
    [
        ("glance-api.conf", "[DEFAULT]\nworkers = 3\n", "ini"),
        ("imagecache.ini", "[DEFAULT]\nworkers = 3\n", "ini"),
        ("imagecache.toml", "[DEFAULT]\nworkers = 3\n", "toml"),
        ("imagecache", "workers = 3\n", "toml"),
        ("imagecache", "[DEFAULT]\nimage_cache_dir = /var/lib/glance/image-cache\n", "ini"),
    ],
)
def test_the_kind_of_file_is_told_by_its_name_then_its_content(name: str, text: str, kind: str) -> None:
    assert guess_format(name, text) == kind


def test_a_file_that_reads_as_both_means_the_same_either_way(tmp_path: Path) -> None:
    text = "[DEFAULT]\nworkers = 3\nimage_cache_max_size = 1024\n"
    as_ini = load_settings(write(tmp_path, text, "a.conf"), {}, None)
    as_toml = load_settings(write(tmp_path, text, "a.toml"), {}, None)
    assert as_ini == as_toml == Settings(workers=3, image_cache_max_size=1024)


def test_a_toml_file_still_names_unknown_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown option 'workres'"):
        read_config(write(tmp_path, "workres = 3\n", "imagecache.toml"))


def test_every_shared_option_is_one_of_ours() -> None:
    assert {entry.target for entry in GLANCE_OPTIONS} <= set(option_names())
    assert len({(entry.section, entry.name) for entry in GLANCE_OPTIONS}) == len(GLANCE_OPTIONS)


def test_coerce_still_reads_what_glance_writes() -> None:
    assert coerce("serve_stale_on_upstream_error", "True") is True
    assert coerce("image_cache_max_size", "10737418240") == 10 * 1 << 30


# -- the commands --------------------------------------------------------------------


def test_serve_hands_the_not_used_line_to_the_server_and_a_bad_value_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from imagecache import server
    from imagecache.cli import main

    for name in [n for n in os.environ if n.startswith("IMAGECACHE_")]:
        monkeypatch.delenv(name)
    runs: list[tuple[Settings, list[tuple[int, str]]]] = []
    monkeypatch.setattr(server, "run", lambda settings, notices=(): runs.append((settings, list(notices))))
    path = write(tmp_path, glance_api_conf(bind_port=9393))
    result = CliRunner().invoke(main, ["serve", "--config", path, "--port", "9494"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    ((settings, notices),) = runs
    assert settings.bind_port == 9494  # the flag wins over the file
    assert settings.image_cache_max_size == 5368709120
    (took, (level, line)) = notices
    shared = ["bind_host", "bind_port", "workers", "worker_self_reference_url", "image_cache_dir",
              "image_cache_max_size", "image_cache_stall_time", "image_cache_driver", "image_cache_sqlite_db",
              "cache_prefetcher_interval"]  # debug = False is read, and changes nothing
    took_line = f"config file {path} (INI): took " + ", ".join(f"[DEFAULT] {name}" for name in shared)
    assert took == (logging.INFO, took_line)
    assert level == logging.INFO and "username, password;" in line

    bad = write(tmp_path, glance_api_conf(image_cache_max_size="10GB"), "bad.conf")
    result = CliRunner().invoke(main, ["serve", "--config", bad])
    assert result.exit_code == 2
    assert result.output == f"Error: config file {bad}: [DEFAULT] image_cache_max_size must be an int, not '10GB'\n"
