"""A node started from Glance's own config files, as operators have them.

The server is launched with nothing but ``--config glance-api.conf``, a data
dir and ``--auth none``: where it listens, how many workers it runs and its
cache settings must come from the file, and be visible from outside (the
port, the worker processes, the cache API, ``/metrics``, the files on disk).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.glance_conf import SECRETS, glance_api_conf, glance_cache_conf
from tests.support.waiting import wait_until
from tests.unit.central.pg import scratch_schema

from .conftest import (
    RunningServer,
    ServerDidNotStart,
    ServerFactory,
    ServerProcess,
    clean_environment,
    free_port,
    run_imagecache,
    serve_command,
)
from .test_cache_http import create, wait_cached

#: Values the file gives that differ from imagecache's defaults, so each one shows.
MAX_SIZE = 3 << 30
WORKERS = 3


def start_from_config(factory: ServerFactory, base: Path, make_conf, *, attempts: int = 3) -> RunningServer:
    """``imagecache serve --config <file> --data-dir <dir> --auth none``, the port chosen by the file.

    ``make_conf(port)`` returns the file's text.  A port taken between
    choosing and binding is tried again with another.
    """
    data = base / "data"
    for attempt in range(attempts):
        port = free_port()
        conf = base / "glance-api.conf"
        conf.write_text(make_conf(port), encoding="utf-8")
        process = ServerProcess(
            serve_command("--config", str(conf), "--data-dir", str(data), "--auth", "none"),
            host="127.0.0.1", port=port, log_path=base / f"server-{attempt}.log", cwd=base, env=clean_environment(),
        )
        server = RunningServer(process=process, data_dir=data, argv=process.argv)
        factory.servers.append(server)  # stopped at the end, whatever happens
        process.start()
        try:
            process.wait_until_ready()
            return server
        except ServerDidNotStart:
            if attempt + 1 < attempts and process.address_in_use():
                process.stop()
                continue
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def children(pid: int) -> list[int]:
    """The processes ``pid`` forked (gunicorn's workers), from /proc."""
    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fh:
        return [int(child) for child in fh.read().split()]


def metric(server: RunningServer, name: str) -> float:
    text = server.request("GET", "/metrics").text
    (line,) = [line for line in text.splitlines() if line.startswith(f"{name} ")]
    return float(line.split()[1])


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[ServerFactory]:
    made = ServerFactory(tmp_path / "servers")
    try:
        yield made
    finally:
        made.stop_all()


def test_a_glance_api_conf_starts_a_node_with_its_cache_settings(factory: ServerFactory, tmp_path: Path) -> None:
    cache_dir = tmp_path / "glance" / "image-cache"

    def conf(port: int) -> str:
        return glance_api_conf(bind_port=port, workers=WORKERS, image_cache_dir=f"{cache_dir}/",
                               image_cache_max_size=MAX_SIZE, image_cache_sqlite_db="glance-cache.db")

    server = start_from_config(factory, tmp_path, conf)
    # Listening on the file's port (start_from_config asked nothing else), with the file's workers.
    wait_until(lambda: len(children(server.process.pid)) == WORKERS, f"{WORKERS} worker processes",
               describe=lambda: children(server.process.pid))
    assert metric(server, "imagecache_cache_max_size_bytes") == MAX_SIZE

    data = os.urandom(256 * 1024)
    image_id = create(server, "admin", data)
    download = server.request("GET", f"/v2/images/{image_id}/file")
    assert download.status == 200 and download.body == data
    assert wait_cached(server, image_id)["size"] == len(data)
    # In the file's cache dir, indexed in the file's sqlite db; nothing under the data dir's default.
    assert (cache_dir / image_id).read_bytes() == data
    assert (cache_dir / "glance-cache.db").is_file()
    assert not (server.data_dir / "image-cache").exists()

    logs = server.logs()
    not_used = [line for line in logs.splitlines() if "options not used by imagecache" in line]
    assert len(not_used) == 1, logs  # once, by the master
    assert f"config file {tmp_path / 'glance-api.conf'} (INI): took [DEFAULT] bind_host" in logs
    assert "[keystone_authtoken] www_authenticate_uri" in not_used[0]
    assert "[DEFAULT] image_cache_max_size" not in not_used[0]
    assert not any(secret in logs for secret in SECRETS)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"image_cache_max_size": "10GB"}, "[DEFAULT] image_cache_max_size must be an int, not '10GB'"),
        ({"image_cache_driver": "redis"},
         "[DEFAULT] image_cache_driver must be one of sqlite, xattr, centralized_db, not 'redis'"),
        ({"bind_port": "99999"}, "[DEFAULT] bind_port must be between 1 and 65535, not 99999"),
    ],
)
def test_a_bad_value_stops_the_node_with_one_line_naming_it(tmp_path: Path, values: dict, message: str) -> None:
    conf = tmp_path / "glance-api.conf"
    conf.write_text(glance_api_conf(**{"bind_port": free_port(), **values}), encoding="utf-8")
    done = run_imagecache("serve", "--config", str(conf), "--data-dir", str(tmp_path / "data"))
    assert done.returncode == 2
    assert done.stderr == f"Error: config file {conf}: {message}\n"


def test_the_cache_tools_take_a_glance_cache_conf(tmp_path: Path) -> None:
    """glance-cache.conf's stall time drives the cleaner, its size the pruner; -v lists the rest."""
    cache_dir = tmp_path / "image-cache"
    conf = tmp_path / "glance-cache.conf"
    conf.write_text(glance_cache_conf(image_cache_dir=cache_dir, image_cache_stall_time=600,
                                      image_cache_max_size=12345), encoding="utf-8")
    incomplete = cache_dir / "incomplete"
    incomplete.mkdir(parents=True)
    stalled, fresh = incomplete / str(uuid.uuid4()), incomplete / str(uuid.uuid4())
    for path in (stalled, fresh):
        path.write_bytes(b"part of an image")
    an_hour_ago = time.time() - 3600
    os.utime(stalled, (an_hour_ago, an_hour_ago))  # older than the file's 600 s; the other is not

    done = run_imagecache("clean", "--config", str(conf), "--json", "-v")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"invalid_removed": 0, "stalled_removed": 1}
    assert not stalled.exists() and fresh.exists()
    assert "options not used by imagecache: [DEFAULT] log_file, admin_user" in done.stderr
    assert not any(secret in done.stderr for secret in SECRETS)

    quiet = run_imagecache("prune", "--config", str(conf), "--json")
    assert quiet.returncode == 0, quiet.stderr
    assert json.loads(quiet.stdout)["max_size"] == 12345
    assert quiet.stderr == ""  # without -v, a cron line stays silent


@pytest.mark.postgres
def test_centralized_db_and_the_worker_url_make_a_central_node(factory: ServerFactory, tmp_path: Path) -> None:
    """Glance's centralized_db driver is our central index; worker_self_reference_url names the node."""
    with scratch_schema(migrated=True) as db_url:

        def conf(port: int) -> str:
            return glance_api_conf(f"\n[imagecache]\ndb_url = {db_url}\n", bind_port=port,
                                   image_cache_driver="centralized_db", node_url=f"http://127.0.0.1:{port}",
                                   image_cache_dir=tmp_path / "cache")

        server = start_from_config(factory, tmp_path, conf)
        try:
            data = os.urandom(64 * 1024)
            image_id = create(server, "admin", data)
            assert server.request("GET", f"/v2/images/{image_id}/file").body == data
            wait_until(lambda: server.request("GET", f"/v2/cache/nodes/{image_id}").json() == [server.url],
                       f"{server.url} listed as caching {image_id}",
                       describe=lambda: server.request("GET", f"/v2/cache/nodes/{image_id}").text)
        finally:
            factory.stop_all()  # before the schema is dropped
