"""Real `imagecache serve` processes on loopback, for functional tests.

Usage::

    def test_something(start_server):
        server = start_server(auth="tokens")          # waits for /healthcheck
        response = server.request("GET", "/v2/images", user="alice")
        assert response.status == 200
        server.stop()                                  # optional: teardown stops it

``start_server(**options)`` takes the options of :meth:`ServerFactory.start`;
any other keyword becomes a flag (``image_cache_max_size="1M"`` is
``--image-cache-max-size 1M``).  ``start_module_server`` and
``start_session_server`` are the same factory with a longer life, for tests
that can share a server; ``tokens_server`` and ``open_server`` are ready-made
module-scoped servers with ``--auth tokens`` and ``--auth none``.

Servers talk only to 127.0.0.1 (or ::1), run with their own temporary data
dir and working directory, and log (stdout and stderr) to a file that
:meth:`RunningServer.logs` returns.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.waiting import WaitTimeout, wait_until

ADMIN_PROJECT = "p-admin"
ALICE_PROJECT = "p-alice"
BOB_PROJECT = "p-bob"

#: Seconds a server gets to answer /healthcheck after it is launched.
READY_TIMEOUT = 30.0
#: Seconds a server gets to exit after SIGTERM before it is killed.
STOP_TIMEOUT = 20.0
#: Seconds one /healthcheck may take: a worker still booting on a busy machine is not "unhealthy".
HEALTH_TIMEOUT = 10.0


class ServerDidNotStart(AssertionError):
    """The server exited or did not answer /healthcheck in time (its log attached)."""


@dataclass(frozen=True)
class AuthTokens:
    """The tokens a ``--auth tokens`` test server knows: one admin, two members."""

    admin: str = "tok-admin-0a6f"
    alice: str = "tok-alice-51c2"
    bob: str = "tok-bob-9d3e"

    def identities(self) -> dict[str, tuple[str, str]]:
        """user -> (token, project)."""
        return {
            "admin": (self.admin, ADMIN_PROJECT),
            "alice": (self.alice, ALICE_PROJECT),
            "bob": (self.bob, BOB_PROJECT),
        }

    def token(self, user: str) -> str:
        return self.identities()[user][0]

    def project(self, user: str) -> str:
        return self.identities()[user][1]

    def toml(self) -> str:
        return (
            f'[tokens."{self.admin}"]\nproject = "{ADMIN_PROJECT}"\nroles = ["admin"]\n\n'
            f'[tokens."{self.alice}"]\nproject = "{ALICE_PROJECT}"\nroles = ["member"]\n'
            f'user = "alice"\n\n'
            f'[tokens."{self.bob}"]\nproject = "{BOB_PROJECT}"\nroles = ["member"]\n'
            f'user = "bob"\n'
        )


@dataclass
class Response:
    """An HTTP answer, read whole (4xx and 5xx are answers too, not exceptions)."""

    status: int
    reason: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (another process may still take it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def connect_host(bind_host: str) -> str:
    """Where a test reaches a server bound to ``bind_host``: always loopback."""
    return "::1" if bind_host.strip("[]") in ("::", "::1") else "127.0.0.1"


def serve_command(*args: str) -> list[str]:
    """The command line of ``imagecache serve`` with this interpreter."""
    return [sys.executable, "-m", "imagecache.cli", "serve", *args]


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without IMAGECACHE_* options, plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("IMAGECACHE_") or key == "IMAGECACHE_TEST_DB_URL"
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def run_imagecache(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    """Run ``imagecache <args>`` to completion (for commands expected to exit)."""
    return subprocess.run(
        [sys.executable, "-m", "imagecache.cli", *args],
        env=clean_environment(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class ServerProcess:
    """One ``imagecache serve`` process: launch, wait for health, stop, read its log."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        host: str,
        port: int,
        log_path: Path,
        cwd: Path,
        env: Mapping[str, str],
    ) -> None:
        self.argv = list(argv)
        self.host = host
        self.port = port
        self.log_path = log_path
        self.cwd = cwd
        self.env = dict(env)
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None, "not started"
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    @property
    def stdout_path(self) -> Path:
        return self.log_path.with_suffix(".stdout")

    def start(self) -> None:
        with open(self.log_path, "ab") as log, open(self.stdout_path, "ab") as out:
            # Its own session: a kill can take the workers too, by group id.
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=log,
                cwd=self.cwd,
                env=self.env,
                start_new_session=True,
            )

    def stderr(self) -> str:
        return _read(self.log_path)

    def stdout(self) -> str:
        return _read(self.stdout_path)

    def logs(self) -> str:
        """Everything the server wrote: stderr (its logs), then any stdout."""
        out = self.stdout()
        return self.stderr() + (f"\n--- stdout ---\n{out}" if out else "")

    def healthy(self) -> bool:
        try:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=HEALTH_TIMEOUT)
            try:
                connection.request("GET", "/healthcheck")
                return connection.getresponse().status == 200
            finally:
                connection.close()
        except OSError:
            return False

    def wait_until_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Return once /healthcheck answers 200; raise :class:`ServerDidNotStart` otherwise."""

        def ready() -> bool:
            if self.returncode is not None:
                raise ServerDidNotStart(
                    f"imagecache serve exited with status {self.returncode} before it "
                    f"answered /healthcheck; its log:\n{self.logs()}"
                )
            return self.healthy()

        try:
            wait_until(ready, f"imagecache serve to answer /healthcheck on {self.host}:{self.port}", timeout=timeout)
        except WaitTimeout as timed_out:
            self.stop()
            raise ServerDidNotStart(f"{timed_out}; its log:\n{self.logs()}") from None

    def terminate(self) -> None:
        """Send SIGTERM (gunicorn's graceful shutdown) without waiting."""
        if self.returncode is None:
            self.popen.send_signal(signal.SIGTERM)  # type: ignore[union-attr]

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, wait, then SIGKILL the whole process group; the exit status."""
        if self.popen is None:
            return None
        self.terminate()
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            return self.popen.wait(timeout)

    def address_in_use(self) -> bool:
        return "Connection in use" in self.logs() or "Address already in use" in self.logs()


@dataclass
class RunningServer:
    """A started server as tests see it."""

    process: ServerProcess
    data_dir: Path
    tokens: AuthTokens | None = None
    tokens_file: Path | None = None
    argv: list[str] = field(default_factory=list)
    #: For an edge node (``--upstream``): the server it forwards to.
    upstream: RunningServer | None = None

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def host(self) -> str:
        return self.process.host

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        return self.process.stop(timeout)

    def logs(self) -> str:
        return self.process.logs()

    def headers(self, user: str | None) -> dict[str, str]:
        """``X-Auth-Token`` of ``user`` ("admin", "alice", "bob"), or none."""
        if user is None or self.tokens is None:
            return {}
        return {"X-Auth-Token": self.tokens.token(user)}

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        user: str | None = None,
        json_body: Any = None,
        timeout: float = 30.0,
    ) -> Response:
        """One request on a fresh connection; ``user`` picks a token from :attr:`tokens`."""
        all_headers = {**self.headers(user), **(headers or {})}
        if json_body is not None:
            body = json.dumps(json_body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=all_headers)
            answer = connection.getresponse()
            return Response(
                status=answer.status,
                reason=answer.reason,
                headers={key.lower(): value for key, value in answer.getheaders()},
                body=answer.read(),
            )
        finally:
            connection.close()


class ServerFactory:
    """Starts servers under ``base_dir`` and stops every one of them at the end."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.servers: list[RunningServer] = []

    def start(
        self,
        *,
        auth: str = "none",
        tokens: AuthTokens | None = None,
        tokens_file: str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        workers: int = 2,
        data_dir: str | os.PathLike[str] | None = None,
        config: str | os.PathLike[str] | None = None,
        settings: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
        origin: str | None = None,
        program: Sequence[str] | None = None,
        wait: bool = True,
        ready_timeout: float = READY_TIMEOUT,
        **flags: Any,
    ) -> RunningServer:
        """Launch ``imagecache serve`` and (by default) wait until it is healthy.

        ``auth="tokens"`` writes a tokens file for ``tokens`` (default
        :class:`AuthTokens`) unless ``tokens_file`` is given.  ``settings``
        become ``IMAGECACHE_<NAME>`` variables (for options without a flag);
        other keywords become flags.  ``origin`` (e.g. ``"throttled:1000000"``
        or ``"corrupt"``) runs the server over a misbehaving origin app (see
        origin_server.py).  ``program`` is the ``imagecache`` command to run
        instead of this interpreter's (another installation's).  A port taken
        between choosing and binding is retried with another one.
        """
        workdir = self._new_dir()
        data = Path(data_dir) if data_dir is not None else workdir / "data"
        written_tokens: Path | None = None
        if auth == "tokens" and tokens_file is None:
            tokens = tokens or AuthTokens()
            written_tokens = workdir / "tokens.toml"
            written_tokens.write_text(tokens.toml(), encoding="utf-8")
            tokens_file = written_tokens
        # Hits written at once: a listing flushes only the worker that answers it, and these tests count
        # hits across workers.  Tests of the batching give image_cache_hit_flush_interval themselves.
        environment = {"IMAGECACHE_IMAGE_CACHE_HIT_FLUSH_INTERVAL": "0"}
        environment.update({f"IMAGECACHE_{name.upper()}": str(value) for name, value in (settings or {}).items()})
        environment.update(env or {})
        attempts = 1 if port is not None else 3
        for attempt in range(attempts):
            chosen = port if port is not None else free_port(host.strip("[]"))
            args = ["--host", host, "--port", str(chosen), "--workers", str(workers),
                    "--data-dir", str(data), "--auth", auth]
            if tokens_file is not None:
                args += ["--tokens-file", str(tokens_file)]
            if config is not None:
                args += ["--config", str(config)]
            args += _flags(flags)
            args += list(extra_args)
            if origin is not None:
                command = [sys.executable, str(Path(__file__).with_name("origin_server.py")), origin, *args]
            elif program is not None:
                command = [*program, "serve", *args]
            else:
                command = serve_command(*args)
            process = ServerProcess(
                command,
                host=connect_host(host),
                port=chosen,
                log_path=workdir / f"server-{attempt}.log",
                cwd=workdir,
                env=clean_environment(environment),
            )
            server = RunningServer(
                process=process,
                data_dir=data,
                tokens=tokens if auth == "tokens" else None,
                tokens_file=Path(tokens_file) if tokens_file is not None else None,
                argv=process.argv,
            )
            self.servers.append(server)
            process.start()
            if not wait:
                return server
            try:
                process.wait_until_ready(ready_timeout)
                return server
            except ServerDidNotStart:
                if attempt + 1 < attempts and process.address_in_use():
                    process.stop()
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def stop_all(self) -> None:
        for server in reversed(self.servers):
            server.stop()
        self.servers.clear()

    def _new_dir(self) -> Path:
        index = len(list(self.base_dir.glob("server-*")))
        path = self.base_dir / f"server-{index}"
        path.mkdir(parents=True)
        return path


def _flags(flags: Mapping[str, Any]) -> list[str]:
    """``image_cache_max_size="1M"`` -> ``["--image-cache-max-size", "1M"]``."""
    args: list[str] = []
    for name, value in flags.items():
        if value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        args += [flag] if value is True else [flag, str(value)]
    return args


@contextlib.contextmanager
def _factory(base_dir: Path) -> Iterator[ServerFactory]:
    factory = ServerFactory(base_dir)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    with _factory(tmp_path / "servers") as factory:
        yield factory


@pytest.fixture
def start_server(server_factory: ServerFactory) -> Any:
    """``start_server(**options) -> RunningServer``; stopped after the test."""
    return server_factory.start


@pytest.fixture(scope="module")
def start_module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Like ``start_server``, but the servers live until the module's tests are done."""
    with _factory(tmp_path_factory.mktemp("module-servers")) as factory:
        yield factory.start


@pytest.fixture(scope="session")
def start_session_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Like ``start_server``, for servers shared by the whole run."""
    with _factory(tmp_path_factory.mktemp("session-servers")) as factory:
        yield factory.start


@pytest.fixture(scope="module")
def tokens_server(start_module_server: Any) -> RunningServer:
    """A module's ``--auth tokens`` server: ``.tokens.admin``/``alice``/``bob``."""
    return start_module_server(auth="tokens")


def start_edge(start: Any, upstream: RunningServer, **options: Any) -> RunningServer:
    """An ``imagecache serve --upstream`` node in front of ``upstream``, sharing its tokens.

    The edge knows the same tokens locally (its admins manage its cache) and
    presents the upstream's admin token for its own sub-requests.
    """
    assert upstream.tokens is not None and upstream.tokens_file is not None
    settings = {"upstream_auth_token": upstream.tokens.token("admin"), **options.pop("settings", {})}
    edge = start(auth="tokens", tokens=upstream.tokens, tokens_file=upstream.tokens_file,
                 upstream=upstream.url, settings=settings, **options)
    edge.upstream = upstream
    return edge


@pytest.fixture(scope="module", params=["embedded", "edge"])
def cache_node(request: pytest.FixtureRequest, start_module_server: Any) -> RunningServer:
    """A module's ``--auth tokens`` node with a cache: the embedded image service,
    then an edge node in front of such a server (every test runs against both)."""
    if request.param == "embedded":
        return start_module_server(auth="tokens")
    return start_edge(start_module_server, start_module_server(auth="tokens"))


@pytest.fixture(scope="module")
def open_server(start_module_server: Any) -> RunningServer:
    """A module's ``--auth none`` server (everyone is admin)."""
    return start_module_server(auth="none")


@pytest.fixture
def tokens() -> AuthTokens:
    return AuthTokens()
