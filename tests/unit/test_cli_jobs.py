"""`imagecache clean|prune|prefetch`: one run against a cache dir, as cron runs them (CliRunner, no sockets)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from imagecache import ImageCache, Settings
from imagecache.cache.fill import FillWriter
from imagecache.cache.verify_plan import VerifyPlan
from imagecache.cli import format_size, main
from tests.unit.jobs import embedded

HOUR = 3600


@pytest.fixture(autouse=True)
def no_imagecache_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("IMAGECACHE_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=str(tmp_path / "data"), image_cache_min_free=0)


@pytest.fixture
def cache(settings: Settings) -> Iterator[ImageCache]:
    cache = ImageCache(settings)
    yield cache
    cache.close()


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def on(settings: Settings, *args: str) -> list[str]:
    return [*args, "--data-dir", settings.data_dir]


def leave(directory: str, age: float) -> str:
    path = os.path.join(directory, str(uuid.uuid4()))
    Path(path).write_bytes(b"left behind")
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


# -- clean --------------------------------------------------------------------------------


def test_clean_removes_invalid_and_stalled_files(settings, cache) -> None:
    invalid = leave(cache.layout.invalid_dir, 0)
    stalled = leave(cache.layout.incomplete_dir, 2 * 86400)
    fresh = leave(cache.layout.incomplete_dir, HOUR)
    result = run(*on(settings, "clean"))
    assert result.exit_code == 0, result.output
    assert one_line(result.stdout) == "removed 1 invalid and 1 stalled file"
    assert not os.path.exists(invalid) and not os.path.exists(stalled) and os.path.exists(fresh)


def test_clean_json(settings, cache) -> None:
    leave(cache.layout.invalid_dir, 0)
    leave(cache.layout.invalid_dir, 0)
    result = run(*on(settings, "clean", "--json"))
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"invalid_removed": 2, "stalled_removed": 0}


def test_clean_stall_time_flag_beats_the_environment_and_the_file(settings, cache, tmp_path) -> None:
    config = tmp_path / "imagecache.toml"
    config.write_text("image_cache_stall_time = 999999\n")
    old = leave(cache.layout.incomplete_dir, 2 * HOUR)
    young = leave(cache.layout.incomplete_dir, HOUR / 2)
    result = run(*on(settings, "clean", "--config", str(config), "--stall-time", str(HOUR)),
                 env={"IMAGECACHE_IMAGE_CACHE_STALL_TIME": "999999"})
    assert one_line(result.stdout) == "removed 0 invalid and 1 stalled file"
    assert not os.path.exists(old) and os.path.exists(young)


def test_clean_reads_the_cache_dir_from_a_config_file(tmp_path) -> None:
    cache_dir = tmp_path / "elsewhere"
    config = tmp_path / "imagecache.toml"
    config.write_text(f'[DEFAULT]\nimage_cache_dir = "{cache_dir}"\nimage_cache_stall_time = 60\n')
    ImageCache(Settings(image_cache_dir=str(cache_dir))).close()
    stalled = leave(str(cache_dir / "incomplete"), 120)
    result = run("clean", "--config", str(config), "--json")
    assert json.loads(result.stdout)["stalled_removed"] == 1
    assert not os.path.exists(stalled)


def test_clean_spares_a_fill_a_live_writer_holds(settings, cache) -> None:
    image_id = str(uuid.uuid4())
    writer = FillWriter.acquire(cache.layout, image_id, VerifyPlan(None, ()))
    assert writer is not None
    try:
        path = cache.layout.incomplete_path(image_id)
        os.utime(path, (0, 0))
        result = run(*on(settings, "clean", "--stall-time", "0"))
        assert one_line(result.stdout) == "removed 0 invalid and 0 stalled files"
        assert os.path.exists(path)
    finally:
        writer.discard()


def test_clean_verbose_logs_on_stderr(settings, cache) -> None:
    leave(cache.layout.invalid_dir, 0)
    result = run(*on(settings, "clean", "-v"))
    assert "removed invalid file of image" in result.stderr
    assert one_line(result.stdout).startswith("removed 1 invalid")


# -- prune ----------------------------------------------------------------------------------

SIZE = 100_000


def fill(cache: ImageCache, seed: str) -> str:
    image_id = str(uuid.uuid4())
    data = (hashlib.sha256(seed.encode()).digest() * (SIZE // 32 + 1))[:SIZE]
    assert cache.cache_image_iter(image_id, [data], hashlib.md5(data).hexdigest())
    return image_id


@pytest.fixture
def lru(settings) -> Iterator[dict[str, str]]:
    """a, b, c cached a second apart, then a read: least recently used first is b, c, a."""
    clock = [1_700_000_000.0]
    cache = ImageCache(settings, clock=lambda: clock[0])
    ids = {}
    for name in "abc":
        ids[name] = fill(cache, name)
        clock[0] += 1
    with cache.open_for_read(ids["a"]) as fh:
        fh.read()
    cache.hits.flush()  # the hit written, as a server's worker does within its flush interval
    yield ids
    cache.close()


def test_prune_evicts_the_least_recently_used_first(settings, cache, lru) -> None:
    result = run(*on(settings, "prune", "--image-cache-max-size", str(SIZE)))
    assert result.exit_code == 0, result.output
    assert one_line(result.stdout) == "pruned 2 images (195.3 KiB); the cache holds 97.7 KiB of 97.7 KiB"
    assert [r.image_id for r in cache.get_cached_images()] == [lru["a"]]


def test_prune_json(settings, cache, lru) -> None:
    result = run(*on(settings, "prune", "--image-cache-max-size", "2", "--json"))
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"files_pruned": 3, "bytes_pruned": 3 * SIZE, "cache_size": 0, "max_size": 2,
                                         "pinned_bytes": 0, "pinned_over_limit": False}


def test_prune_within_the_limit_does_nothing(settings, cache, lru) -> None:
    result = run(*on(settings, "prune", "--image-cache-max-size", "1G"))
    assert one_line(result.stdout) == "pruned 0 images (0 B); the cache holds 293.0 KiB of 1.0 GiB"
    assert len(cache.get_cached_images()) == 3


def test_prune_size_from_the_environment(settings, cache, lru) -> None:
    result = run(*on(settings, "prune", "--json"), env={"IMAGECACHE_IMAGE_CACHE_MAX_SIZE": str(2 * SIZE)})
    assert json.loads(result.stdout)["files_pruned"] == 1
    assert not cache.is_cached(lru["b"])


# -- prefetch ---------------------------------------------------------------------------------


def test_prefetch_fetches_the_queue_and_the_images_are_then_hits(settings, cache) -> None:
    data = b"an image " * 20_000
    image_ids = [embedded.add_image(settings, data), embedded.add_image(settings)]
    for image_id in image_ids:
        cache.queue_image(image_id)
    result = run(*on(settings, "prefetch"))
    assert result.exit_code == 0, result.output
    assert one_line(result.stdout) == "fetched 2 images"
    assert cache.get_queued_images() == []
    with cache.open_for_read(image_ids[0]) as fh:
        assert fh.read() == data
    assert cache.get_hit_count(image_ids[0]) == 1


def test_prefetch_with_nothing_queued(settings, cache) -> None:
    embedded.add_image(settings)
    result = run(*on(settings, "prefetch"))
    assert result.exit_code == 0
    assert one_line(result.stdout) == "nothing queued"


def test_prefetch_failures_exit_1_and_stay_queued(settings, cache) -> None:
    good, corrupt, gone = (embedded.add_image(settings) for _ in range(3))
    embedded.corrupt_stored_image(settings, corrupt)
    embedded.delete_stored_image(settings, gone)
    for image_id in (good, corrupt, gone):
        cache.queue_image(image_id)
    result = run(*on(settings, "prefetch", "--json"))
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"fetched": [good], "failed": [corrupt, gone]}
    assert sorted(cache.get_queued_images()) == sorted([corrupt, gone])
    assert cache.is_cached(good) and not cache.is_cached(corrupt)
    assert "failed verification" in result.stderr and "answered 404" in result.stderr


def test_prefetch_human_line_for_failures(settings, cache) -> None:
    corrupt = embedded.add_image(settings)
    embedded.corrupt_stored_image(settings, corrupt)
    cache.queue_image(corrupt)
    result = run(*on(settings, "prefetch"))
    assert result.exit_code == 1
    assert one_line(result.stdout) == "fetched 0 images; 1 failed and stay queued"


def test_prefetch_shows_a_progress_bar_per_image_on_a_terminal(settings, cache) -> None:
    image_id = embedded.add_image(settings, b"x" * 300_000)
    cache.queue_image(image_id)
    result = run(*on(settings, "prefetch"), env={"TTY_COMPATIBLE": "1", "COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert image_id in result.stdout and "cached" in result.stdout and "293.0/293.0 KiB" in result.stdout
    assert result.stdout.rstrip().endswith("fetched 1 image")


def test_prefetch_json_has_no_progress_bar_even_on_a_terminal(settings, cache) -> None:
    cache.queue_image(embedded.add_image(settings))
    result = run(*on(settings, "prefetch", "--json"), env={"TTY_COMPATIBLE": "1"})
    assert json.loads(result.stdout)["failed"] == []


def test_prefetch_without_an_image_service_is_a_usage_error(settings, cache) -> None:
    result = run(*on(settings, "prefetch"))
    assert result.exit_code == 2
    assert "no image service in data dir" in one_line(result.output)
    assert not os.path.exists(os.path.join(settings.data_dir, "images.db"))


def test_prefetch_refuses_a_bad_upstream_url(settings) -> None:
    result = run(*on(settings, "prefetch"), env={"IMAGECACHE_UPSTREAM_URL": "ftp://glance:9292"})
    assert result.exit_code == 2
    assert "upstream_url" in one_line(result.output)


# -- all of them --------------------------------------------------------------------------------

COMMANDS = ["clean", "prune", "prefetch"]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--config", "absent.toml"], {}, "does not exist"),
        ([], {"IMAGECACHE_NO_SUCH_OPTION": "1"}, "names no option"),
        ([], {"IMAGECACHE_IMAGE_CACHE_STALL_TIME": "soon"}, "image_cache_stall_time must be an int"),
        (["--image-cache-driver", "central"], {}, "db_url"),
        (["--image-cache-driver", "redis"], {}, "redis"),
    ],
)
def test_bad_configuration_is_one_line_and_exit_2(command, args, env, message, tmp_path) -> None:
    result = run(command, "--data-dir", str(tmp_path), *args, env=env)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unusable_cache_dir_is_exit_2(command, tmp_path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache dir should be")
    embedded.add_image(Settings(data_dir=str(tmp_path)))
    result = run(command, "--data-dir", str(tmp_path), "--image-cache-dir", str(blocker))
    assert result.exit_code == 2
    assert one_line(result.output).startswith(f"Error: cannot use image cache dir {blocker}")


@pytest.mark.parametrize(("args", "message"), [(["clean", "--stall-time", "-1"], "-1"),
                                               (["prune", "--image-cache-max-size", "lots"], "not a size")])
def test_bad_flag_values_are_usage_errors(args, message, tmp_path) -> None:
    result = run(*args, "--data-dir", str(tmp_path))
    assert result.exit_code == 2 and message in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_leaves_no_log_handler_behind(command, settings, cache) -> None:
    logger = logging.getLogger("imagecache")
    before = (list(logger.handlers), logger.level, logger.propagate)
    run(*on(settings, command, "-v"))
    assert (list(logger.handlers), logger.level, logger.propagate) == before


def test_the_cli_starts_without_its_heavy_modules() -> None:
    probe = "import sys, imagecache.cli; print(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = set(done.stdout.split())
    assert not loaded & {"gunicorn", "rich", "webob", "imagecache.images", "imagecache.jobs", "imagecache.server"}


@pytest.mark.parametrize(("size", "text"), [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (10 << 30, "10.0 GiB"),
                                            (3 << 50, "3072.0 TiB")])
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text
