"""Real Glance (33.0.0) on a free loopback port, for the length of a ``with``.

::

    venv = ensure_venv()                         # bench/.glance-venv, created once
    with GlanceServer(work_dir, venv=venv, flavor="cachemanagement") as glance:
        print(glance.url)                        # http://127.0.0.1:<port>
        glance.data_fetches(image_id)            # from its gunicorn access log

or ``python -m bench glance-up`` (see ``--help``).

What it takes to run Glance 33 without Keystone (found by reading the
installed package, ``bench/.glance-venv/etc/glance/``, and by trying):

* Glance 33 is a WSGI app only (``glance.wsgi.api:application``); it reads
  ``glance-api.conf`` (and the paste ini next to it) from
  ``OS_GLANCE_CONFIG_DIR``.  Run here under gunicorn, gthread workers, with
  an access log (the record of what an edge node asked it for).
* The database: ``[database] connection = sqlite:////abs/path``, created by
  ``glance-manage --config-dir DIR db_sync``.
* The store, multi-store style (the single-store ``[glance_store] stores`` /
  ``default_store`` still works but is deprecated): ``[DEFAULT]
  enabled_backends = local:file``, ``[glance_store] default_backend =
  local``, ``[local] filesystem_store_datadir``, and the two reserved file
  stores Glance wants in that mode, ``[os_glance_staging_store]`` and
  ``[os_glance_tasks_store]``.
* Auth, ``auth="noauth"``: the paste flavors without ``keystone`` (``""``,
  ``caching``, ``cachemanagement``) put ``unauthenticated-context`` in the
  pipeline, which ignores every header (no ``X-Roles`` or ``X-Tenant-Id``
  is read) and makes each caller ``is_admin=True`` with *no roles and no
  project*.  Glance 33's policies are the new defaults
  (``enforce_new_defaults`` is true) and test ``role:admin``, so even
  ``POST /v2/images`` is a 403 out of the box.  The fix used here: a
  ``policy.yaml`` with ``"context_is_admin": ""`` (everyone passes the admin
  rule, which every image rule ORs in).  Nobody can be a non-admin then.
* Auth, ``auth="tokens"``: the ``keystone`` flavors (``keystone``,
  ``keystone+caching``, ``keystone+cachemanagement``) with the paste
  ``[filter:authtoken]`` swapped for :mod:`bench.glance_auth`, a static-token
  stand-in for keystonemiddleware (it sets ``X-Identity-Status: Confirmed``,
  ``X-Roles``, ``X-Project-Id``, ``X-User-Id`` from a table, and strips any
  the client sent).  Glance's own ``ContextMiddleware`` and its default
  policies then judge real admins and members: a member is refused a
  deactivated image (403), another project's private image is a 404.
  Glance's venv imports it with ``PYTHONPATH`` set to this repository.
* Glance's own cache (``flavor="caching"`` or ``"cachemanagement"``):
  ``image_cache_dir``, ``image_cache_max_size`` and ``image_cache_driver``
  (Glance 33's default driver ``centralized_db`` refuses to start without
  ``worker_self_reference_url``, set here to the server's own URL).

The venv is ``pip install glance==33.0.0 gunicorn`` under Python 3.11 with
``bench/glance-constraints.txt`` as constraints (the set this was checked
with); a marker file in the venv records what was installed, so a second run
reuses it.
"""

from __future__ import annotations

import configparser
import contextlib
import fcntl
import hashlib
import http.client
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from bench.server import HOST, free_port, stop_group

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
GLANCE_VENV = BENCH_DIR / ".glance-venv"
WORK_ROOT = BENCH_DIR / ".work"
CONSTRAINTS = BENCH_DIR / "glance-constraints.txt"
REQUIREMENTS = ("glance==33.0.0", "gunicorn")
PYTHON_VERSION = (3, 11)
MARKER = ".bench-installed"

#: Bounds, in seconds.
INSTALL_TIMEOUT = 1200.0
DB_SYNC_TIMEOUT = 180.0
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0

FLAVORS = ("none", "caching", "cachemanagement")
AUTH_MODES = ("noauth", "tokens")

#: The tokens of ``auth="tokens"`` unless told otherwise: one admin, two members.
DEFAULT_TOKENS: dict[str, dict[str, object]] = {
    "glance-admin-tok": {"project": "p-admin", "user": "u-admin", "roles": ["admin", "member", "reader"]},
    "glance-alice-tok": {"project": "p-alice", "user": "u-alice", "roles": ["member", "reader"]},
    "glance-bob-tok": {"project": "p-bob", "user": "u-bob", "roles": ["member", "reader"]},
}

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class GlanceError(RuntimeError):
    """Glance could not be installed, configured or started (the message says why, with log tails)."""


# -- the venv ------------------------------------------------------------------------


@dataclass(frozen=True)
class GlanceVenv:
    path: Path
    install_seconds: float  # 0.0 when an existing venv was reused

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    def version(self) -> str:
        out = subprocess.run(
            [str(self.bin / "python"), "-c", "import importlib.metadata as m; print(m.version('glance'))"],
            capture_output=True, text=True, timeout=60, check=False,
        )
        return out.stdout.strip() or f"unknown ({out.stderr.strip()[-200:]})"


def find_python(explicit: str | None = None) -> str:
    """A Python 3.11 interpreter: ``explicit``, ``$GLANCE_PYTHON``, ``python3.11`` on PATH, or this one."""
    candidates = [explicit, os.environ.get("GLANCE_PYTHON"), shutil.which("python3.11"), sys.executable]
    for candidate in filter(None, candidates):
        try:
            out = subprocess.run(
                [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True, text=True, timeout=30, check=False,
            )
        except OSError:
            continue
        if out.stdout.strip() == "{}.{}".format(*PYTHON_VERSION):
            return candidate
    raise GlanceError(
        "no Python 3.11 found for Glance's venv (tried --python, $GLANCE_PYTHON, python3.11 on PATH, "
        f"{sys.executable}); Glance 33 is installed and checked with 3.11 here"
    )


def _wanted_marker() -> str:
    constraints = CONSTRAINTS.read_bytes() if CONSTRAINTS.is_file() else b""
    return json.dumps({
        "requirements": list(REQUIREMENTS),
        "constraints_sha256": hashlib.sha256(constraints).hexdigest(),
        "python": "{}.{}".format(*PYTHON_VERSION),
    }, sort_keys=True)


def ensure_venv(
    path: Path = GLANCE_VENV, *, python: str | None = None, timeout: float = INSTALL_TIMEOUT, log: Log = _stderr,
) -> GlanceVenv:
    """Glance's venv at ``path``: reused when its marker says it holds what we want, else (re)built."""
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    lock_path = WORK_ROOT / (path.name.lstrip(".") + ".lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two scenarios starting at once build it once
        marker = path / MARKER
        wanted = _wanted_marker()
        ready = all((path / "bin" / name).exists() for name in ("python", "gunicorn", "glance-manage"))
        if ready and marker.is_file() and marker.read_text(encoding="utf-8") == wanted:
            return GlanceVenv(path, 0.0)
        started = time.monotonic()
        interpreter = find_python(python)
        log(f"glance: building {path} with {interpreter} ({' '.join(REQUIREMENTS)}); this takes a minute")
        install_log = WORK_ROOT / (path.name.lstrip(".") + "-install.log")
        with open(install_log, "w", encoding="utf-8") as out:
            def run(argv: list[str]) -> None:
                remaining = timeout - (time.monotonic() - started)
                if remaining <= 0:
                    raise GlanceError(f"installing Glance took more than {timeout:.0f} s; see {install_log}")
                out.write(f"--- {' '.join(argv)}\n")
                out.flush()
                try:
                    done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=remaining, check=False)
                except subprocess.TimeoutExpired:
                    raise GlanceError(f"installing Glance took more than {timeout:.0f} s; see {install_log}") from None
                if done.returncode != 0:
                    tail = "\n".join(install_log.read_text(encoding="utf-8", errors="replace").splitlines()[-25:])
                    raise GlanceError(f"{' '.join(argv[:4])} ... failed (status {done.returncode}):\n{tail}")

            if not (path / "bin" / "python").exists():
                run([interpreter, "-m", "venv", str(path)])
            pip = [str(path / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "install", "-q"]
            constraints = ["-c", str(CONSTRAINTS)] if CONSTRAINTS.is_file() else []
            run([*pip, *constraints, *REQUIREMENTS])
        marker.write_text(wanted, encoding="utf-8")
        seconds = time.monotonic() - started
        log(f"glance: venv ready in {seconds:.1f} s (log: {install_log})")
        return GlanceVenv(path, seconds)


# -- configuration -------------------------------------------------------------------


def paste_flavor(flavor: str, auth: str) -> str:
    """The ``[paste_deploy] flavor`` for a cache flavor and an auth mode."""
    if flavor not in FLAVORS:
        raise ValueError(f"flavor must be one of {', '.join(FLAVORS)}, not {flavor!r}")
    if auth not in AUTH_MODES:
        raise ValueError(f"auth must be one of {', '.join(AUTH_MODES)}, not {auth!r}")
    if auth == "noauth":
        return "" if flavor == "none" else flavor
    return "keystone" if flavor == "none" else f"keystone+{flavor}"


def render_conf(sections: Mapping[str, Mapping[str, object]]) -> str:
    lines: list[str] = []
    for section, options in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {value}" for key, value in options.items() if value is not None]
        lines.append("")
    return "\n".join(lines)


def paste_ini(installed: str, tokens_file: Path | None) -> str:
    """Glance's own paste ini; with ``tokens_file``, ``authtoken`` is :mod:`bench.glance_auth`."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # "/v2", "keystone+caching" as they are
    parser.read_string(installed)
    if tokens_file is not None:
        parser.remove_section("filter:authtoken")
        parser.add_section("filter:authtoken")
        parser.set("filter:authtoken", "paste.filter_factory", "bench.glance_auth:filter_factory")
        parser.set("filter:authtoken", "tokens_file", str(tokens_file))
    out = io.StringIO()
    out.write("# Glance 33's glance-api-paste.ini, written by bench/glance.py")
    out.write(" (authtoken: bench.glance_auth)\n\n" if tokens_file is not None else "\n\n")
    parser.write(out)
    return out.getvalue()


# -- the server ----------------------------------------------------------------------


class GlanceServer:
    """``gunicorn glance.wsgi.api:application`` on a free loopback port; a context manager.

    ``flavor``: ``"none"`` (no cache), ``"caching"`` or ``"cachemanagement"``
    (Glance's own cache in ``work_dir/image-cache``).  ``auth``: ``"noauth"``
    (everyone is admin) or ``"tokens"`` (:data:`DEFAULT_TOKENS` or
    ``tokens``, see the module doc).  Everything (config, sqlite, images,
    logs) lives in ``work_dir``.
    """

    def __init__(
        self,
        work_dir: str | os.PathLike[str],
        *,
        venv: GlanceVenv | None = None,
        flavor: str = "none",
        auth: str = "noauth",
        tokens: Mapping[str, Mapping[str, object]] | None = None,
        workers: int = 1,
        threads: int = 16,
        image_cache_max_size: int | None = None,
        image_cache_driver: str = "centralized_db",
        extra_conf: Mapping[str, Mapping[str, object]] | None = None,
        ready_timeout: float = READY_TIMEOUT,
        log: Log = _stderr,
    ) -> None:
        self.work_dir = Path(work_dir).resolve()
        self.venv = venv if venv is not None else GlanceVenv(GLANCE_VENV, 0.0)
        self.flavor = flavor
        self.auth = auth
        self.paste_flavor = paste_flavor(flavor, auth)
        self.tokens = {k: dict(v) for k, v in (tokens or DEFAULT_TOKENS).items()} if auth == "tokens" else {}
        self.workers = workers
        self.threads = threads
        self.image_cache_max_size = image_cache_max_size
        self.image_cache_driver = image_cache_driver
        self.extra_conf = extra_conf or {}
        self.ready_timeout = ready_timeout
        self.log_fn = log
        self.host = HOST
        self.port = 0
        self.etc = self.work_dir / "etc"
        self.images_dir = self.work_dir / "images"
        self.cache_dir = self.work_dir / "image-cache"
        self.glance_log = self.work_dir / "glance.log"  # oslo.log: Glance's own messages
        self.gunicorn_log = self.work_dir / "gunicorn.log"  # gunicorn's error log
        self.access_log = self.work_dir / "access.log"
        self.out_log = self.work_dir / "glance.out"  # stdout and stderr (warnings printed at import)
        self.argv: list[str] = []
        self._popen: subprocess.Popen[bytes] | None = None
        #: db_sync runs on the first start only; a restart reuses the database.
        self.db_synced = False
        #: Seconds from launching gunicorn to the first answer of the last start.
        self.ready_seconds: float | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """gunicorn's master pid, also the process group of its workers (None when stopped)."""
        return self._popen.pid if self._popen is not None else None

    def token(self, role: str) -> str | None:
        """The first token whose roles include ``role`` (tokens mode), else None."""
        for token, identity in self.tokens.items():
            if role in identity.get("roles", ()):  # type: ignore[operator]
                return token
        return None

    # -- configuration ---------------------------------------------------------------
    def write_config(self) -> None:
        for sub in ("etc", "images", "staging", "tasks", "locks", "image-cache"):
            (self.work_dir / sub).mkdir(parents=True, exist_ok=True)
        tokens_file: Path | None = None
        if self.auth == "tokens":
            tokens_file = self.etc / "tokens.json"
            tokens_file.write_text(json.dumps(self.tokens, indent=2) + "\n", encoding="utf-8")
        installed = self.venv.path / "etc" / "glance" / "glance-api-paste.ini"
        if not installed.is_file():
            raise GlanceError(f"{installed} is missing: is {self.venv.path} a Glance venv?")
        (self.etc / "glance-api-paste.ini").write_text(
            paste_ini(installed.read_text(encoding="utf-8"), tokens_file), encoding="utf-8"
        )
        policy: str | None = None
        if self.auth == "noauth":
            policy_path = self.etc / "policy.yaml"
            policy_path.write_text(
                "# noauth: unauthenticated-context gives is_admin=True but no roles; Glance 33's\n"
                "# new default policies test role:admin, so let every caller pass the admin rule.\n"
                '"context_is_admin": ""\n',
                encoding="utf-8",
            )
            policy = str(policy_path)
        caching = self.flavor != "none"
        sections: dict[str, dict[str, object]] = {
            "DEFAULT": {
                "enabled_backends": "local:file",
                "log_file": self.glance_log,
                "use_stderr": "false",
                "debug": "false",
                "worker_self_reference_url": self.url,
                "image_cache_dir": self.cache_dir if caching else None,
                "image_cache_max_size": self.image_cache_max_size if caching else None,
                "image_cache_driver": self.image_cache_driver if caching else None,
            },
            "database": {"connection": f"sqlite:///{self.work_dir / 'glance.sqlite'}"},
            "glance_store": {"default_backend": "local"},
            "local": {"filesystem_store_datadir": self.images_dir},
            "os_glance_staging_store": {"filesystem_store_datadir": self.work_dir / "staging"},
            "os_glance_tasks_store": {"filesystem_store_datadir": self.work_dir / "tasks"},
            "paste_deploy": {"flavor": self.paste_flavor, "config_file": self.etc / "glance-api-paste.ini"},
            "oslo_policy": {"policy_file": policy},
            "oslo_concurrency": {"lock_path": self.work_dir / "locks"},
        }
        for section, options in self.extra_conf.items():
            sections.setdefault(section, {}).update(options)
        (self.etc / "glance-api.conf").write_text(
            "# written by bench/glance.py\n" + render_conf(sections), encoding="utf-8"
        )

    def environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("OS_", "IMAGECACHE_")) and key not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["OS_GLANCE_CONFIG_DIR"] = str(self.etc)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONWARNINGS"] = "ignore::DeprecationWarning"
        if self.auth == "tokens":
            env["PYTHONPATH"] = str(REPO_ROOT)  # paste imports bench.glance_auth
        return env

    def db_sync(self) -> None:
        argv = [str(self.venv.bin / "glance-manage"), "--config-dir", str(self.etc), "db_sync"]
        log_path = self.work_dir / "db_sync.log"
        with open(log_path, "wb") as out:
            try:
                done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.work_dir,
                                      env=self.environment(), timeout=DB_SYNC_TIMEOUT, check=False)
            except subprocess.TimeoutExpired:
                raise GlanceError(f"glance-manage db_sync took more than {DB_SYNC_TIMEOUT:.0f} s; "
                                  f"log:\n{_tail(log_path)}") from None
        if done.returncode != 0:
            raise GlanceError(f"glance-manage db_sync failed (status {done.returncode}); log:\n{_tail(log_path)}")

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> GlanceServer:
        """Configure, db_sync, launch gunicorn, wait for ``GET /versions``; a taken port is retried."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        for attempt in range(3):
            self.port = free_port(self.host)
            self.write_config()  # worker_self_reference_url names the port
            if not self.db_synced:
                self.db_sync()
                self.db_synced = True
            self.argv = [
                str(self.venv.bin / "gunicorn"),
                "--bind", f"{self.host}:{self.port}",
                "--workers", str(self.workers),
                "--worker-class", "gthread", "--threads", str(self.threads),
                "--timeout", "600", "--graceful-timeout", "10",
                "--no-control-socket",  # its default path is shared by every gunicorn on the machine
                "--access-logfile", str(self.access_log),
                "--error-logfile", str(self.gunicorn_log),
                "--chdir", str(self.work_dir),
                "glance.wsgi.api:application",
            ]
            with open(self.out_log, "ab") as out:
                out.write(f"--- {' '.join(self.argv)}\n".encode())
                out.flush()
                launched = time.monotonic()
                self._popen = subprocess.Popen(
                    self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd=self.work_dir,
                    env=self.environment(), start_new_session=True,
                )
            try:
                self._wait_until_ready()
                self.ready_seconds = time.monotonic() - launched
                self.log_fn(f"glance: {self.url} up in {time.monotonic() - started:.1f} s "
                            f"(flavor {self.paste_flavor or 'default'}, {self.workers} worker(s), "
                            f"logs in {self.work_dir})")
                return self
            except GlanceError:
                in_use = any(s in _read(self.gunicorn_log) for s in ("Address already in use", "Connection in use"))
                self.stop()
                if attempt < 2 and in_use:
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait_until_ready(self) -> None:
        assert self._popen is not None
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self._popen.poll() is not None:
                raise GlanceError(f"Glance (gunicorn) exited with status {self._popen.returncode}\n{self.log_tails()}")
            if self.answers():
                return
            time.sleep(0.05)
        raise GlanceError(f"Glance did not answer GET /versions within {self.ready_timeout:.0f} s\n{self.log_tails()}")

    def answers(self, path: str = "/versions") -> bool:
        try:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=5)
            try:
                connection.request("GET", path)
                return connection.getresponse().status in (200, 300)
            finally:
                connection.close()
        except (OSError, http.client.HTTPException):
            return False

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM the process group, wait, SIGKILL what is left; gunicorn's exit status."""
        popen, self._popen = self._popen, None
        if popen is None:
            return None
        return stop_group(popen, timeout)

    def __enter__(self) -> GlanceServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- its logs --------------------------------------------------------------------
    def log_tails(self, lines: int = 30) -> str:
        parts = []
        for path in (self.gunicorn_log, self.glance_log, self.out_log):
            text = _tail(path, lines)
            if text:
                parts.append(f"--- {path.name} (last {lines} lines)\n{text}")
        return "\n".join(parts) or "(no log written)"

    def errors(self, limit: int = 40) -> list[str]:
        """Glance's ERROR/CRITICAL lines and tracebacks (its WARNINGs are mostly deprecations).

        Left out: stevedore failing to load the cinder store at start (os_brick
        is not installed, and no cinder store is configured).
        """
        found: list[str] = []
        for path in (self.glance_log, self.gunicorn_log):
            for line in _read(path).splitlines():
                if "stevedore.extension" in line and "os_brick" in line:
                    continue
                if re.search(r"\b(ERROR|CRITICAL)\b|^Traceback|\[ERROR\]", line):
                    found.append(f"{path.name}: {line}")
                if len(found) >= limit:
                    return found
        return found

    def access_lines(self) -> list[str]:
        return _read(self.access_log).splitlines()

    def data_fetches(self, image_id: str, statuses: tuple[int, ...] = (200,)) -> int:
        """How many ``GET /v2/images/{id}/file`` Glance answered with ``statuses`` (access log)."""
        wanted = "|".join(str(s) for s in statuses)
        pattern = re.compile(rf'"GET /v2/images/{re.escape(image_id)}/file HTTP/1\.[01]" ({wanted}) ')
        return sum(1 for line in self.access_lines() if pattern.search(line))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(_read(path).splitlines()[-lines:])


# -- python -m bench glance-up -------------------------------------------------------



@contextlib.contextmanager
def work_directory(prefix: str, work_dir: Path | None, keep: bool, log: Log = _stderr):
    """``work_dir`` (kept), or a fresh dir under bench/.work/ removed afterwards unless ``keep``."""
    import tempfile

    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
        yield work_dir.resolve()
        return
    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=WORK_ROOT))
    try:
        yield path
    finally:
        if keep:
            log(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def glance_up(
    *, flavor: str, auth: str, workers: int, image_cache_max_size: int | None, seconds: float | None,
    work_dir: Path | None, keep: bool, python: str | None,
) -> int:
    """Start Glance, print how to reach it, serve until Ctrl-C/SIGTERM (or ``seconds``), stop it."""
    try:
        venv = ensure_venv(python=python)
    except GlanceError as exc:
        _stderr(f"glance-up: {exc}")
        return 1
    stop_requested = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        with work_directory("glance-", work_dir, keep or work_dir is not None) as path:
            server = GlanceServer(path, venv=venv, flavor=flavor, auth=auth, workers=workers,
                                  image_cache_max_size=image_cache_max_size)
            try:
                server.start()
            except GlanceError as exc:
                _stderr(f"glance-up: {exc}")
                return 1
            try:
                print(f"Glance {venv.version()} at {server.url}  (paste flavor: {server.paste_flavor or 'default'})")
                print(f"  config: OS_GLANCE_CONFIG_DIR={server.etc}")
                print(f"  logs:   {server.glance_log}  {server.gunicorn_log}  {server.access_log}")
                for token, identity in server.tokens.items():
                    print(f"  token {token}: project {identity['project']}, roles {','.join(identity['roles'])}")  # type: ignore[arg-type]
                print(f"  try:    OS_IMAGE_URL={server.url} OS_AUTH_TOKEN={server.token('admin') or 'anything'} "
                      f"{REPO_ROOT / '.venv/bin/glance'} image-list", flush=True)
                deadline = None if seconds is None else time.monotonic() + seconds
                while not stop_requested and (deadline is None or time.monotonic() < deadline):
                    if not server.running:
                        _stderr(f"glance-up: Glance exited\n{server.log_tails()}")
                        return 1
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass
            finally:
                status = server.stop()
                _stderr(f"glance: stopped (gunicorn status {status})")
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0
