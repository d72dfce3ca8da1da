"""The pipeline and the gunicorn options, without sockets."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import webob

from imagecache import server
from imagecache.cache import ImageCache
from imagecache.config import ConfigError, Settings
from imagecache.http.context import get_context
from imagecache.serving.access_log import NodeLogger
from imagecache.serving.worker import StreamWorker


def echo_app(environ: dict, start_response) -> Iterable[bytes]:
    context = get_context(environ)
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"path": environ["PATH_INFO"], "roles": list(context.roles)}).encode()]


def get(app, path: str, method: str = "GET", **headers: str) -> webob.Response:
    return webob.Request.blank(path, method=method, headers=headers).get_response(app)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=str(tmp_path / "data"))


def test_healthcheck_is_ok_when_the_data_dir_is_writable(settings: Settings) -> None:
    os.makedirs(settings.data_dir)
    app = server.build_app(settings, app=echo_app)
    response = get(app, "/healthcheck")
    assert response.status_int == 200
    assert response.text == "OK"
    assert response.content_type == "text/plain"
    head = get(app, "/healthcheck", method="HEAD")
    assert head.status_int == 200 and head.body == b""


def test_healthcheck_fails_without_a_usable_data_dir(settings: Settings, tmp_path: Path) -> None:
    import shutil

    app = server.build_app(settings, app=echo_app)  # builds the cache, so the data dir exists
    assert get(app, "/healthcheck").status_int == 200
    shutil.rmtree(settings.data_dir)  # the data dir vanishes under a running node
    assert get(app, "/healthcheck").status_int == 503
    Path(settings.data_dir).write_text("x")  # ... or is no longer a directory
    assert get(app, "/healthcheck").status_int == 503


def test_healthcheck_refuses_other_methods(settings: Settings) -> None:
    response = get(server.build_app(settings, app=echo_app), "/healthcheck", method="POST")
    assert response.status_int == 405
    assert response.headers["Allow"] == "GET, HEAD"


def test_healthcheck_needs_no_token_under_tokens_auth(settings: Settings, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text('[tokens.t1]\nproject = "p"\nroles = ["member"]\n')
    os.makedirs(settings.data_dir)
    app = server.build_app(
        settings.replace(auth_strategy="tokens", tokens_file=str(tokens)), app=echo_app
    )
    assert get(app, "/healthcheck").status_int == 200
    assert get(app, "/v2/images").status_int == 401
    response = get(app, "/v2/images", **{"X-Auth-Token": "t1"})
    assert response.status_int == 200
    assert response.json == {"path": "/v2/images", "roles": ["member"]}


def test_build_app_reads_bad_tokens_files_as_config_errors(
    settings: Settings, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        server.build_app(
            settings.replace(auth_strategy="tokens", tokens_file=str(tmp_path / "none.toml")),
            app=echo_app,
        )


def test_everything_else_goes_through_auth_to_the_app(settings: Settings) -> None:
    response = get(server.build_app(settings, app=echo_app), "/v2/images")
    assert response.json == {"path": "/v2/images", "roles": ["admin"]}


def test_upstream_mode_puts_the_proxy_at_the_bottom(settings: Settings) -> None:
    from imagecache.upstream import UpstreamApp

    assert isinstance(server.make_inner_app(settings.replace(upstream_url="http://glance:9292")), UpstreamApp)
    for bad in ("ftp://glance", "http://user:secret@glance:9292"):
        with pytest.raises(ConfigError, match="upstream_url") as refused:
            server.preflight(settings.replace(upstream_url=bad))
        assert "secret" not in str(refused.value)


def test_preflight_creates_the_data_dir_and_loads_tokens(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text('[tokens.t1]\nproject = "p"\nroles = ["admin"]\n')
    settings = Settings(
        data_dir=str(tmp_path / "a" / "b"), auth_strategy="tokens", tokens_file=str(tokens)
    )
    table = server.preflight(settings)
    assert os.path.isdir(settings.data_dir)
    assert table is not None and table.lookup("t1") is not None
    assert server.preflight(Settings(data_dir=str(tmp_path / "c"))) is None


def test_preflight_reports_an_impossible_data_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="cannot create data dir"):
        server.preflight(Settings(data_dir=str(blocker / "data")))


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("0.0.0.0", False),
        ("", False),
        ("::", False),
        ("10.0.0.5", False),
        ("example.org", False),
    ],
)
def test_is_loopback_host(host: str, loopback: bool) -> None:
    assert server.is_loopback_host(host) is loopback


@pytest.mark.parametrize(
    ("host", "bind"),
    [("127.0.0.1", "127.0.0.1:80"), ("::1", "[::1]:80"), ("[::]", "[::]:80"), ("host", "host:80")],
)
def test_bind_address(host: str, bind: str) -> None:
    assert server.bind_address(host, 80) == bind


def test_gunicorn_options_follow_settings() -> None:
    options = server.gunicorn_options(
        Settings(bind_host="0.0.0.0", bind_port=8080, workers=3, log_level="DEBUG")
    )
    assert options["bind"] == ["0.0.0.0:8080"]
    assert options["workers"] == 3
    assert issubclass(options["worker_class"], StreamWorker)
    assert options["worker_class"].limits.connections_per_worker == -(-Settings().max_connections // 3)
    assert options["threads"] == Settings().threads
    assert options["timeout"] >= 120
    assert options["graceful_timeout"] >= 60
    assert options["loglevel"] == "debug"
    assert options["control_socket_disable"] is True


def test_gunicorn_accepts_every_option(tmp_path: Path) -> None:
    """gunicorn exits on an unknown or invalid option: catch that here, not at start."""
    application = server.ImagecacheApplication(Settings(data_dir=str(tmp_path)), None)
    for key, value in server.gunicorn_options(Settings()).items():
        if key not in ("logger_class", "worker_class"):
            assert application.cfg.settings[key].get() == value
    assert application.cfg.logger_class is NodeLogger
    assert issubclass(application.cfg.worker_class, StreamWorker)


@pytest.fixture
def as_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """load() switches its process to multiprocess metrics, as a worker must; undo it after."""
    from prometheus_client import values

    monkeypatch.setattr(values, "ValueClass", values.ValueClass)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # records "unset" so undo restores it
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")


def test_worker_config_errors_become_one_line_load_errors(tmp_path: Path, as_worker: None) -> None:
    from gunicorn.errors import AppImportError

    settings = Settings(
        data_dir=str(tmp_path), auth_strategy="tokens", tokens_file=str(tmp_path / "gone.toml")
    )
    with pytest.raises(AppImportError, match="does not exist"):
        server.ImagecacheApplication(settings, None).load()


def test_build_app_serves_the_embedded_image_service(settings: Settings) -> None:
    app = server.build_app(settings)
    response = get(app, "/v2/images")
    assert response.status_int == 200
    assert response.json["images"] == []
    assert get(app, "/versions").json["versions"]


# -- the master builds the app once before forking (server.rehearse_build) ----------


def open_files_under(directory: Path) -> list[str]:
    """What this process holds open under ``directory`` (Linux: /proc/self/fd)."""
    held = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # the directory listing's own descriptor, closed by now
        if target.startswith(str(directory)):
            held.append(target)
    return held


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd (Linux)")
def test_preflight_builds_the_app_and_leaves_nothing_open_for_the_workers(tmp_path: Path) -> None:
    """Workers fork from the master after preflight: no thread and no sqlite file may be inherited."""
    settings = Settings(data_dir=str(tmp_path / "data"))
    threads = set(threading.enumerate())
    server.preflight(settings)
    assert (tmp_path / "data" / "images.db").exists()  # the embedded image service was built
    assert set(threading.enumerate()) - threads == set()
    assert open_files_under(tmp_path) == []


def test_preflight_does_not_call_an_embedders_app_factory(settings: Settings) -> None:
    """A factory has no way to close what it opens: only workers call it."""
    called: list[Settings] = []
    server.preflight(settings, app_factory=lambda s: called.append(s) or echo_app)
    assert called == []
    assert not os.path.exists(os.path.join(settings.data_dir, "images.db"))


def test_preflight_refuses_an_app_that_cannot_be_built(settings: Settings) -> None:
    os.makedirs(os.path.join(settings.data_dir, "images.db"))  # sqlite cannot open a directory
    with pytest.raises(server.StartupError, match="cannot build the application: OperationalError") as refused:
        server.preflight(settings)
    assert "\n" not in str(refused.value)


def test_a_missing_module_is_one_line_with_a_hint() -> None:
    error = ModuleNotFoundError("No module named 'jsonschema'", name="jsonschema")
    assert server.build_failure(error) == (
        "cannot build the application: No module named 'jsonschema' "
        "(is imagecache installed with its dependencies?)"
    )
    assert server.build_failure(ValueError("two\nlines")) == "cannot build the application: ValueError: two lines"


def test_a_worker_that_cannot_build_its_app_stops_gunicorn_in_one_line(tmp_path: Path, as_worker: None) -> None:
    """AppImportError: gunicorn prints its message as one line and halts ("App failed to load")."""
    from gunicorn.errors import AppImportError

    def factory(settings: Settings) -> Any:
        raise ModuleNotFoundError("No module named 'jsonschema'", name="jsonschema")

    application = server.ImagecacheApplication(Settings(data_dir=str(tmp_path)), None, factory)
    with pytest.raises(AppImportError, match="No module named 'jsonschema'") as refused:
        application.load()
    assert "\n" not in str(refused.value)


def test_the_file_limit_is_raised_for_max_connections_and_a_short_hard_limit_is_reported() -> None:
    import resource

    from imagecache.serving.options import raise_file_limit

    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, before[1]))
        assert raise_file_limit(Settings(max_connections=400, workers=2)) is None
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= 2 * 200 + 256
        if before[1] != resource.RLIM_INFINITY:
            needed, allowed = raise_file_limit(Settings(max_connections=10 * before[1], workers=1)) or (0, 0)
            assert allowed == before[1] < needed
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


def test_disk_facts_count_the_fills_writing_and_resolve_the_floor(tmp_path: Path) -> None:
    cache = ImageCache(Settings(data_dir=str(tmp_path / "data"), image_cache_min_free=12345))
    try:
        assert server.disk_facts(cache).fills == 0
        claim = cache.claim_fill(str(uuid.uuid4()), "0" * 32, size=10)
        assert claim is not None  # holds the writer's lock until cancelled
        facts = server.disk_facts(cache)
        assert facts.fills == 1
        assert facts.min_free == 12345
        assert facts.free > 0
        claim.cancel()
        assert server.disk_facts(cache).fills == 0
    finally:
        cache.close()


def test_disk_facts_floor_defaults_to_the_smaller_of_a_gibibyte_and_five_percent(tmp_path: Path) -> None:
    cache = ImageCache(Settings(data_dir=str(tmp_path / "data")))
    try:
        total = cache.layout.disk_usage().total
        assert server.disk_facts(cache).min_free == min(1 << 30, total // 20)
    finally:
        cache.close()
