"""`imagecache serve` flag handling and the size parser; the server is not started."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from imagecache import server
from imagecache.cli import main, parse_size
from imagecache.config import ConfigError, Settings

# -- parse_size ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("1073741824", 1 << 30),
        ("100B", 100),
        ("1k", 1024),
        ("512M", 512 << 20),
        ("10G", 10 << 30),
        ("10GB", 10 << 30),
        ("10GiB", 10 << 30),
        ("10gib", 10 << 30),
        ("2T", 2 << 40),
        ("1P", 1 << 50),
        (" 3 G ", 3 << 30),
        ("1.5G", 3 << 29),
        (".5K", 512),
        ("1.", 1),
        ("1.9", 1),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "text", ["", "G", "-1", "10X", "10 G B", "1e9", "10iB", "ten", "1.2.3", "10GG", "0x10"]
)
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


@given(st.integers(min_value=0, max_value=1 << 60), st.sampled_from(["", "K", "M", "G", "T"]))
def test_parse_size_scales_integers_by_powers_of_1024(number: int, unit: str) -> None:
    exponent = " KMGT".index(unit or " ")
    assert parse_size(f"{number}{unit}") == number * 1024**exponent
    spelled = f"{number}{unit.lower()}iB" if unit else f"{number}B"
    assert parse_size(spelled) == number * 1024**exponent


# -- imagecache serve ------------------------------------------------------------


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """Settings that `serve` would have run with."""
    seen: list[Settings] = []
    monkeypatch.setattr(server, "run", lambda settings, notices=(): seen.append(settings))
    for name in [n for n in os.environ if n.startswith("IMAGECACHE_")]:
        monkeypatch.delenv(name)
    return seen


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, ["serve", *args], env=env, catch_exceptions=False)


def test_no_flags_means_defaults(captured: list[Settings]) -> None:
    result = invoke()
    assert result.exit_code == 0, result.output
    assert captured == [Settings()]


def test_flags_map_onto_settings(captured: list[Settings], tmp_path: Path) -> None:
    result = invoke(
        "--host", "0.0.0.0", "--port", "8080", "--workers", "4", "--data-dir", str(tmp_path),
        "--auth", "tokens", "--tokens-file", "t.toml", "--image-cache-max-size", "512M",
        "--image-cache-driver", "central", "--db-url", "postgresql://db/x",
        "--node-url", "http://node1:9292", "--upstream", "http://glance:9292", "--image-cache-verify", "all",
    )
    assert result.exit_code == 0, result.output
    (settings,) = captured
    assert settings.bind_host == "0.0.0.0"
    assert settings.bind_port == 8080
    assert settings.workers == 4
    assert settings.data_dir == str(tmp_path)
    assert settings.auth_strategy == "tokens"
    assert settings.tokens_file == "t.toml"
    assert settings.image_cache_max_size == 512 << 20
    assert settings.image_cache_driver == "central"
    assert settings.db_url == "postgresql://db/x"
    assert settings.node_url == "http://node1:9292"
    assert settings.upstream_url == "http://glance:9292"
    assert settings.image_cache_verify == "all"


def test_serving_flags_map_onto_settings(captured: list[Settings]) -> None:
    result = invoke("--threads", "16", "--max-connections", "900", "--client-header-timeout", "7.5",
                    "--send-timeout", "20")
    assert result.exit_code == 0, result.output
    (settings,) = captured
    assert (settings.threads, settings.max_connections) == (16, 900)
    assert (settings.client_header_timeout, settings.send_timeout) == (7.5, 20.0)


@pytest.mark.parametrize("flag",
                         ["--threads=0", "--max-connections=0", "--client-header-timeout=0", "--send-timeout=-1"])
def test_serving_flags_out_of_range_are_one_line_errors(captured: list[Settings], flag: str) -> None:
    result = invoke(flag)
    assert result.exit_code == 2 and captured == []
    assert "Invalid value" in result.output


def test_flags_beat_environment_beat_file_and_absent_flags_do_not_override(
    captured: list[Settings], tmp_path: Path
) -> None:
    config = tmp_path / "imagecache.toml"
    config.write_text('bind_port = 7000\nworkers = 5\ndata_dir = "from-file"\n')
    env = {"IMAGECACHE_WORKERS": "6", "IMAGECACHE_DATA_DIR": "from-env"}
    result = invoke("--config", str(config), "--data-dir", "from-flag", env=env)
    assert result.exit_code == 0, result.output
    (settings,) = captured
    assert settings.bind_port == 7000
    assert settings.workers == 6
    assert settings.data_dir == "from-flag"


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--config", "absent.toml"], {}, "does not exist"),
        (["--port", "0"], {}, "bind_port"),
        (["--workers", "0"], {}, "workers"),
        (["--auth", "tokens"], {}, "tokens_file"),
        ([], {"IMAGECACHE_WORKERS": "many"}, "workers must be an int"),
        ([], {"IMAGECACHE_NO_SUCH_OPTION": "1"}, "names no option"),
        ([], {"IMAGECACHE_IMAGE_CACHE_VERIFY": "both"}, "image_cache_verify must be one of strongest, all"),
        (["--image-cache-driver", "central"], {}, "db_url"),
    ],
)
def test_config_errors_are_one_line_and_exit_2(
    captured: list[Settings], args: list[str], env: dict[str, str], message: str
) -> None:
    result = invoke(*args, env=env)
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("Error: ")
    assert captured == []


def test_bad_toml_config_is_one_line(captured: list[Settings], tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("workers = [\n")
    result = invoke("--config", str(config))
    assert result.exit_code == 2
    assert "not valid TOML" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_errors_raised_by_the_server_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(settings: Settings, notices: object = ()) -> None:
        raise ConfigError("tokens file x.toml:\nis broken")

    monkeypatch.setattr(server, "run", refuse)
    result = invoke()
    assert result.exit_code == 2
    assert result.output == "Error: tokens file x.toml: is broken\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--image-cache-max-size", "lots"], "not a size"),
        (["--auth", "keystone"], "keystone"),
        (["--image-cache-driver", "redis"], "redis"),
        (["--image-cache-verify", "md5"], "md5"),
        (["--port", "http"], "http"),
    ],
)
def test_bad_flag_values_are_usage_errors(
    captured: list[Settings], args: list[str], message: str
) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert captured == []
