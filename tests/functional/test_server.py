"""`imagecache serve` as a real process: start, auth, shutdown, bad input."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.functional.conftest import RunningServer, clean_environment, free_port, run_imagecache
from tests.support.waiting import wait_until


def test_healthcheck(open_server: RunningServer) -> None:
    response = open_server.request("GET", "/healthcheck")
    assert response.status == 200
    assert response.text == "OK"
    assert response.headers["content-type"].startswith("text/plain")


def test_data_dir_is_created(open_server: RunningServer) -> None:
    assert open_server.data_dir.is_dir()


def wait_for_log(server: RunningServer, text: str, count: int = 1) -> str:
    """The server's log once ``text`` is in it ``count`` times."""

    def log() -> str | None:
        logs = server.logs()
        return logs if logs.count(text) >= count else None

    return wait_until(log, f"{count} x {text!r} in the server's log", describe=server.logs)


def test_two_workers_by_default(open_server: RunningServer) -> None:
    # Ready means one worker answers; the other may still be booting.
    assert wait_for_log(open_server, "Booting worker", 2).count("Booting worker") == 2


def test_versions_need_no_token(tokens_server: RunningServer) -> None:
    for path in ("/versions", "/"):
        response = tokens_server.request("GET", path)
        assert response.status in (200, 300), response.text
        assert "versions" in response.json()


def test_healthcheck_needs_no_token(tokens_server: RunningServer) -> None:
    assert tokens_server.request("GET", "/healthcheck").status == 200


@pytest.mark.parametrize("headers", [{}, {"X-Auth-Token": "not-a-token"}])
def test_missing_or_unknown_token_is_401(tokens_server: RunningServer, headers: dict) -> None:
    response = tokens_server.request("GET", "/v2/images", headers=headers)
    assert response.status == 401
    assert response.headers["www-authenticate"].startswith("Token")
    assert response.json()["error"]["code"] == 401


@pytest.mark.parametrize("user", ["admin", "alice", "bob"])
def test_known_tokens_get_through(tokens_server: RunningServer, user: str) -> None:
    response = tokens_server.request("GET", "/v2/images", user=user)
    assert response.status == 200, response.text


def test_auth_none_lets_anyone_in(open_server: RunningServer) -> None:
    response = open_server.request("GET", "/v2/images")
    assert response.status == 200, response.text


def test_access_log_goes_to_stderr(open_server: RunningServer) -> None:
    open_server.request("GET", "/healthcheck?probe=access-log")
    wait_for_log(open_server, "probe=access-log")
    assert "probe=access-log" in open_server.process.stderr()
    assert open_server.process.stdout() == ""


def test_loopback_bind_does_not_warn(open_server: RunningServer) -> None:
    assert "SECURITY WARNING" not in open_server.logs()


def test_auth_none_on_all_interfaces_warns_loudly(start_server: Any) -> None:
    server = start_server(host="0.0.0.0", auth="none", workers=1)
    assert server.request("GET", "/healthcheck").status == 200  # reached on 127.0.0.1
    assert "SECURITY WARNING" in server.logs()
    assert "EVERY CALLER IS AN ADMIN" in server.logs()


def test_tokens_on_all_interfaces_does_not_warn(start_server: Any) -> None:
    server = start_server(host="0.0.0.0", auth="tokens", workers=1)
    assert "SECURITY WARNING" not in server.logs()


def test_sigterm_exits_zero_promptly(start_server: Any) -> None:
    server = start_server(workers=2)
    assert server.request("GET", "/healthcheck").status == 200
    started = time.monotonic()
    status = server.stop(timeout=60)
    assert status == 0, server.logs()
    # Promptly: an idle server does not sit out the 120 s graceful timeout (it takes about a
    # second; the bound leaves a busy machine room and still tells the two apart).
    assert time.monotonic() - started < 30
    assert "Shutting down" in server.logs()


# -- user mistakes: one line on stderr, exit status 2 -------------------------------


def assert_one_line_error(result: Any, *fragments: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def serve_args(tmp_path: Path, *args: str) -> list[str]:
    return ["serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "data"), *args]


def test_missing_config_file(tmp_path: Path) -> None:
    absent = str(tmp_path / "absent.toml")
    result = run_imagecache(*serve_args(tmp_path, "--config", absent), cwd=tmp_path)
    assert_one_line_error(result, "does not exist")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("workers = [\n", "not valid TOML"),
        ("workers = 'many'\n", "workers must be an int"),
        ("no_such_option = 1\n", "unknown option"),
        ("[cache]\nsize = 1\n", "unknown section"),
        ("image_cache_driver = 'central'\n", "needs db_url"),
    ],
)
def test_bad_config_file(tmp_path: Path, text: str, fragment: str) -> None:
    config = tmp_path / "imagecache.toml"
    config.write_text(text)
    result = run_imagecache(*serve_args(tmp_path, "--config", str(config)), cwd=tmp_path)
    assert_one_line_error(result, fragment)


def test_bad_environment_variable(tmp_path: Path) -> None:
    env = {"IMAGECACHE_WORKERS": "many"}
    result = run_imagecache(*serve_args(tmp_path), env=env, cwd=tmp_path)
    assert_one_line_error(result, "workers must be an int")


def test_unknown_environment_variable(tmp_path: Path) -> None:
    env = {"IMAGECACHE_WORKRES": "2"}
    result = run_imagecache(*serve_args(tmp_path), env=env, cwd=tmp_path)
    assert_one_line_error(result, "IMAGECACHE_WORKRES names no option")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (None, "does not exist"),
        ("tokens = [\n", "not valid TOML"),
        ("", "defines no tokens"),
        ('[tokens."tok-abcdefgh"]\nroles = ["admin"]\n', "needs project"),
        ('[tokens."tok-abcdefgh"]\nproject = "p"\nroles = "admin"\n', "roles must be"),
    ],
)
def test_bad_tokens_file(tmp_path: Path, text: str | None, fragment: str) -> None:
    tokens = tmp_path / "tokens.toml"
    if text is not None:
        tokens.write_text(text)
    result = run_imagecache(
        *serve_args(tmp_path, "--auth", "tokens", "--tokens-file", str(tokens)), cwd=tmp_path
    )
    assert_one_line_error(result, fragment, "tokens file")


def test_tokens_auth_needs_a_tokens_file(tmp_path: Path) -> None:
    result = run_imagecache(*serve_args(tmp_path, "--auth", "tokens"), cwd=tmp_path)
    assert_one_line_error(result, "tokens_file")


@pytest.mark.parametrize("url", ["ftp://glance:9292", "http://", "http://glance:9292/?x=1", "glance:9292"])
def test_a_bad_upstream_url_is_one_line(tmp_path: Path, url: str) -> None:
    result = run_imagecache(*serve_args(tmp_path, "--upstream", url), cwd=tmp_path)
    assert_one_line_error(result, "upstream_url")


def test_bad_size(tmp_path: Path) -> None:
    result = run_imagecache(*serve_args(tmp_path, "--image-cache-max-size", "10X"), cwd=tmp_path)
    assert result.returncode == 2
    assert "not a size" in result.stderr
    assert "Traceback" not in result.stderr


def test_data_dir_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_imagecache(
        "serve", "--port", str(free_port()), "--data-dir", str(blocker / "data"), cwd=tmp_path
    )
    assert_one_line_error(result, "cannot create data dir")


# -- a broken install: one line, and nothing left running ---------------------------

#: ``imagecache`` with the modules named in argv[1] impossible to import, as if
#: their distribution were not installed.
WITHOUT_MODULES = """
import sys
hidden = set(sys.argv.pop(1).split(","))
class Uninstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in hidden:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Uninstalled())
from imagecache.cli import main
main(prog_name="imagecache")
"""


def test_serve_without_a_dependency_refuses_to_start_in_one_line(tmp_path: Path) -> None:
    """The master builds the app before it binds: no worker crash loop, no open port."""
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_MODULES, "jsonschema", *serve_args(tmp_path, "--auth", "none")],
        env=clean_environment(), cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.strip().splitlines() == [
        "Error: cannot build the application: No module named 'jsonschema' "
        "(is imagecache installed with its dependencies?)"
    ]


def test_a_worker_that_cannot_build_its_app_stops_the_server(start_server: Any) -> None:
    """gunicorn halts ("App failed to load", status 4) instead of booting workers forever."""
    server = start_server(origin="unbuildable", workers=1, wait=False)
    wait_until(lambda: server.process.returncode is not None, "the server to exit by itself", describe=server.logs)
    assert server.process.returncode == 4, server.logs()
    logs = server.logs()
    assert "Traceback" not in logs
    assert "Reason: App failed to load." in logs
    failures = [line for line in logs.splitlines() if "cannot build the application" in line]
    assert failures == [
        "imagecache: cannot build the application: No module named 'imagecache_missing_dependency' "
        "(is imagecache installed with its dependencies?)"
    ], logs


# -- the embedded image service behind the pipeline -------------------------------


def urllib_call(
    server: RunningServer,
    method: str,
    path: str,
    *,
    data: bytes | None = None,
    content_type: str | None = None,
    user: str | None = None,
) -> tuple[int, bytes]:
    """A request through urllib.request, the way a minimal client would send it."""
    headers = server.headers(user)
    if content_type:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(server.url + path, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.status, answer.read()


def upload(server: RunningServer, data: bytes, user: str | None = None) -> str:
    """Create an image and upload ``data`` to it; its id."""
    document = {"name": "smoke", "disk_format": "raw", "container_format": "bare"}
    status, body = urllib_call(
        server, "POST", "/v2/images", data=json.dumps(document).encode(),
        content_type="application/json", user=user,
    )
    assert status == 201
    image_id = json.loads(body)["id"]
    status, _ = urllib_call(
        server, "PUT", f"/v2/images/{image_id}/file", data=data,
        content_type="application/octet-stream", user=user,
    )
    assert status == 204
    return str(image_id)


@pytest.mark.parametrize("server_name", ["open_server", "tokens_server"])
def test_upload_and_download_an_image(request: pytest.FixtureRequest, server_name: str) -> None:
    server: RunningServer = request.getfixturevalue(server_name)
    user = "alice" if server.tokens else None
    data = os.urandom(3 * 1024 * 1024 + 17)
    image_id = upload(server, data, user=user)
    status, body = urllib_call(server, "GET", f"/v2/images/{image_id}", user=user)
    image = json.loads(body)
    assert image["status"] == "active"
    assert image["size"] == len(data)
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    status, body = urllib_call(server, "GET", f"/v2/images/{image_id}/file", user=user)
    assert status == 200
    assert body == data


def test_another_project_cannot_download_a_private_image(tokens_server: RunningServer) -> None:
    image_id = upload(tokens_server, b"alice's bytes", user="alice")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib_call(tokens_server, "GET", f"/v2/images/{image_id}/file", user="bob")
    assert refused.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib_call(tokens_server, "GET", f"/v2/images/{image_id}/file")
    assert anonymous.value.code == 401


def test_sigterm_lets_a_download_in_flight_finish(start_server: Any) -> None:
    server = start_server(workers=1)
    data = os.urandom(32 * 1024 * 1024)
    image_id = upload(server, data)
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        connection.request("GET", f"/v2/images/{image_id}/file")
        answer = connection.getresponse()
        assert answer.status == 200
        first = answer.read(1024 * 1024)
        server.process.terminate()
        # The listener closes at once; the download in flight goes on.
        wait_until(lambda: not server.process.healthy(), "the listener to close on SIGTERM")
        rest = answer.read()
    finally:
        connection.close()
    assert first + rest == data
    assert server.stop(timeout=20) == 0
