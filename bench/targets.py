"""The three things every comparison runs against, behind one small interface.

* :class:`ImagecacheTarget`: ``imagecache serve`` (embedded image service, 2
  gunicorn workers × 8 threads) with ``--auth tokens``: every request carries
  an admin's ``X-Auth-Token``, and a download is authorized like in
  production (a metadata sub-request, the policy) before a byte is sent.
* :class:`GlanceTarget`: real Glance 33.0.0 under gunicorn (2 workers × 8
  threads, like imagecache) with its own cache (paste flavor
  ``keystone+cachemanagement``, ``centralized_db`` driver) and the static
  token stand-in for Keystone (:mod:`bench.glance_auth`): the same admin
  token, Glance's own context middleware and policies.
* :class:`LimitTarget`: :class:`bench.limit.LimitServer`, a raw socket that
  sends a file in 1 MiB ``sendall`` calls: no auth, no cache, no hashing.

Each gives a :class:`bench.http.Client` that sends its auth headers,
``upload`` (a file -> an image id), ``evict`` (the image leaves the cache,
and the cache listing agrees), ``wait_cached``, ``hits`` (of one image, from
the cache listing), ``store_bytes`` (a counter of bytes read from the image
store so far) and ``pgid`` (the process group of its processes, for RSS).
"""

from __future__ import annotations

import math
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from bench.glance import GlanceServer, GlanceVenv
from bench.http import BenchHTTPError, Client
from bench.limit import LimitServer
from bench.procs import group_pids, io_counters
from bench.server import ImagecacheServer
from bench.units import GiB

ADMIN_TOKEN = "bench-admin-tok"
GLANCE_ADMIN_TOKEN = "glance-admin-tok"
TIMEOUT = 600.0


class Target:
    """What a scenario needs from a server (see the module doc)."""

    name = "target"
    has_cache = True

    def __init__(self) -> None:
        self.client: Client

    @property
    def url(self) -> str:
        return f"http://{self.client.host}:{self.client.port}"

    @property
    def headers(self) -> dict[str, str]:
        return self.client.headers

    @property
    def pgid(self) -> int:
        raise NotImplementedError

    def pids(self) -> list[int]:
        return group_pids(self.pgid)

    def upload(self, path: Path, name: str) -> str:
        image_id = self.client.create_image(name)
        self.client.upload_file(image_id, path, timeout=TIMEOUT)
        return image_id

    def cached(self) -> dict[str, dict[str, Any]]:
        return self.client.cached_images()

    def evict(self, image_id: str) -> None:
        self.client.evict(image_id)

    def wait_cached(self, image_id: str, timeout: float = 60.0) -> None:
        self.client.wait_cached(image_id, timeout)

    def hits(self, image_id: str) -> float:
        entry = self.cached().get(image_id)
        return float(entry["hits"]) if entry else 0.0

    def store_bytes(self) -> float:
        """Bytes read from the image store so far (a counter; NaN when not measurable)."""
        return float("nan")

    def close(self) -> None:
        raise NotImplementedError


class ImagecacheTarget(Target):
    name = "imagecache"

    def __init__(self, work: Path, *, workers: int = 2, max_size: int = 20 * GiB,
                 extra_env: dict[str, str] | None = None) -> None:
        super().__init__()
        work.mkdir(parents=True, exist_ok=True)
        tokens = work / "tokens.toml"
        tokens.write_text(f'[tokens."{ADMIN_TOKEN}"]\nproject = "p-admin"\nroles = ["admin"]\n', encoding="utf-8")
        self.server = ImagecacheServer(
            work / "imagecache", workers=workers,
            extra_args=["--auth", "tokens", "--tokens-file", str(tokens), "--image-cache-max-size", str(max_size)],
            env=extra_env,
        )
        self.server.start()
        self.client = Client(self.server.host, self.server.port, timeout=TIMEOUT,
                             headers={"X-Auth-Token": ADMIN_TOKEN})

    @property
    def pgid(self) -> int:
        assert self.server.pid is not None
        return self.server.pid

    def store_bytes(self) -> float:
        return self.client.metrics().get("imagecache_upstream_bytes_total")

    def metrics_hits(self) -> float:
        return self.client.metrics().get("imagecache_cache_hits_total")

    def close(self) -> None:
        self.server.stop()


class GlanceTarget(Target):
    """Glance's store reads: ``rchar`` of ``/proc/<pid>/io`` summed over gunicorn's
    processes, less one image size per cache hit (a hit reads the cache file)."""

    name = "glance"

    def __init__(self, work: Path, venv: GlanceVenv, *, workers: int = 2, threads: int = 8,
                 max_size: int = 20 * GiB) -> None:
        super().__init__()
        self.server = GlanceServer(
            work / "glance", venv=venv, flavor="cachemanagement", auth="tokens", workers=workers,
            threads=threads, image_cache_max_size=max_size,
        )
        self.server.start()
        self.client = Client(self.server.host, self.server.port, timeout=TIMEOUT,
                             headers={"X-Auth-Token": GLANCE_ADMIN_TOKEN})

    @property
    def pgid(self) -> int:
        assert self.server.pid is not None
        return self.server.pid

    def evict(self, image_id: str) -> None:
        answer = self.client.request("DELETE", f"/v2/cache/{image_id}")
        if answer.status not in (200, 204):
            raise BenchHTTPError(f"Glance DELETE /v2/cache/{image_id}: {answer.status} {answer.text[:300]}")
        deadline = time.monotonic() + 30
        while image_id in self.cached() or (self.server.cache_dir / image_id).exists():
            if time.monotonic() > deadline:
                raise BenchHTTPError(f"Glance still lists image {image_id} in /v2/cache after DELETE")
            time.sleep(0.05)

    def wait_cached(self, image_id: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while image_id not in self.cached() or not (self.server.cache_dir / image_id).exists():
            if time.monotonic() > deadline:
                raise BenchHTTPError(f"Glance did not list image {image_id} in /v2/cache within {timeout:.0f} s")
            time.sleep(0.05)

    def store_bytes(self) -> float:
        return float(io_counters(self.pids()).get("rchar", 0))

    def close(self) -> None:
        self.server.stop()


class LimitTarget(Target):
    name = "limit"
    has_cache = False

    def __init__(self, work: Path) -> None:
        super().__init__()
        self.root = work / "limit-files"
        self.server = LimitServer(self.root, work)
        self.server.start()
        self.client = Client(self.server.host, self.server.port, timeout=TIMEOUT)

    @property
    def pgid(self) -> int:
        return self.server.pid

    def upload(self, path: Path, name: str) -> str:
        image_id = str(uuid.uuid4())
        target = self.root / image_id
        try:
            os.link(path, target)
        except OSError:
            shutil.copyfile(path, target)
        return image_id

    def cached(self) -> dict[str, dict[str, Any]]:
        return {}

    def evict(self, image_id: str) -> None:
        return None

    def wait_cached(self, image_id: str, timeout: float = 60.0) -> None:
        return None

    def hits(self, image_id: str) -> float:
        return math.nan

    def close(self) -> None:
        self.server.stop()


def describe(target: Target) -> str:
    """One line on how the target runs (for the report)."""
    if isinstance(target, ImagecacheTarget):
        return " ".join(target.server.argv[1:])
    if isinstance(target, GlanceTarget):
        return (f"gunicorn glance.wsgi.api:application, {target.server.workers} workers × "
                f"{target.server.threads} threads, paste flavor {target.server.paste_flavor}, "
                f"image_cache_driver {target.server.image_cache_driver}")
    return "python -m bench.limit (thread per connection, sendall of 1 MiB chunks)"

