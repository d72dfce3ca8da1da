"""``python -m bench edge-check``: an imagecache edge node in front of real Glance 33, item by item.

Brings up Glance (:mod:`bench.glance`, no cache flavor) and ``imagecache
serve --upstream <glance>`` (2 workers) on loopback, then runs a checklist
against the edge and prints ``PASS``/``FAIL``/``SKIP`` per item with what it
saw.  Exit status 1 if any item failed.

Identities (``--glance-auth tokens``, the default): Glance runs its keystone
pipeline with :mod:`bench.glance_auth` standing in for Keystone, so
``glance-admin-tok`` is an admin of ``p-admin`` and ``glance-alice-tok`` a
member of ``p-alice``.  The edge runs ``--auth tokens`` with a tokens file
naming only the admin token (its local admin, for ``/v2/cache``) and
``upstream_auth_token`` = the admin token; alice's token is unknown to the
edge and goes on to Glance, which judges it.  With ``--glance-auth noauth``
every caller is an admin on both nodes and the member-only items are skipped.

Every wait is bounded: HTTP calls time out, threads are joined with a
deadline, glanceclient runs under ``subprocess`` timeouts.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.glance import GlanceError, GlanceServer, GlanceVenv, ensure_venv, work_directory
from bench.http import Metrics
from bench.server import ImagecacheServer

GLANCECLIENT = Path(sys.executable).with_name("glance")
HTTP_TIMEOUT = 60.0
LISTED_TIMEOUT = 30.0
#: The edge's default auth_cache_ttl (README): how long an upstream answer is reused.
AUTH_CACHE_TTL = 5.0

Out = Callable[[str], None]


def _stdout(line: str) -> None:
    print(line, flush=True)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Failed(Exception):
    """The item failed; the message is the detail."""


class Skipped(Exception):
    """The item cannot be checked here; the message says why."""


@dataclass
class Item:
    name: str
    status: str  # PASS, FAIL, SKIP
    detail: str
    seconds: float


@dataclass
class Checklist:
    out: Out = _stdout
    items: list[Item] = field(default_factory=list)

    def run(self, name: str, check: Callable[[], str]) -> bool:
        started = time.monotonic()
        try:
            detail, status = check(), "PASS"
        except Failed as exc:
            detail, status = str(exc), "FAIL"
        except Skipped as exc:
            detail, status = str(exc), "SKIP"
        except Exception as exc:  # noqa: BLE001 - an unexpected error is this item's failure, not the run's
            last = traceback.extract_tb(exc.__traceback__)[-1]
            detail, status = f"{type(exc).__name__}: {exc} (at {Path(last.filename).name}:{last.lineno})", "FAIL"
        item = Item(name, status, detail, time.monotonic() - started)
        self.items.append(item)
        lines = item.detail.splitlines() or [""]
        self.out(f"{status:4}  {name}  [{item.seconds:.1f} s]")
        for line in lines:
            self.out(f"        {line}")
        return status == "PASS"

    @property
    def failed(self) -> list[Item]:
        return [item for item in self.items if item.status == "FAIL"]


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise Failed(message)


# -- HTTP with tokens ------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Node:
    """Requests to one server, as a given token (None: no X-Auth-Token)."""

    def __init__(self, name: str, host: str, port: int) -> None:
        self.name = name
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def call(
        self, method: str, path: str, token: str | None, *, body: Any = None,
        headers: dict[str, str] | None = None, timeout: float = HTTP_TIMEOUT,
    ) -> Reply:
        all_headers = dict(headers or {})
        if token:
            all_headers["X-Auth-Token"] = token
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=all_headers)
            response = connection.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()

    def download(self, image_id: str, token: str | None, *, rng: str | None = None,
                 timeout: float = HTTP_TIMEOUT) -> tuple[Reply, str, int]:
        """(reply without body, sha256 hex, bytes): the body hashed as it streams."""
        headers = {"Range": rng} if rng else {}
        if token:
            headers["X-Auth-Token"] = token
        digest = hashlib.sha256()
        n = 0
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout, blocksize=1 << 20)
        try:
            connection.request("GET", f"/v2/images/{image_id}/file", headers=headers)
            response = connection.getresponse()
            head = Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, b"")
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                n += len(chunk)
            return head, digest.hexdigest(), n
        finally:
            connection.close()


@dataclass(frozen=True)
class ImageData:
    path: Path
    size: int
    sha256: str
    md5: str
    sha512: str

    @classmethod
    def write(cls, path: Path, size: int) -> ImageData:
        digests = [hashlib.sha256(), hashlib.md5(), hashlib.sha512()]
        with open(path, "wb") as fh:
            left = size
            while left > 0:
                chunk = os.urandom(min(left, 4 << 20))
                fh.write(chunk)
                for d in digests:
                    d.update(chunk)
                left -= len(chunk)
        return cls(path, size, *(d.hexdigest() for d in digests))

    def read(self, start: int, end: int) -> bytes:
        with open(self.path, "rb") as fh:
            fh.seek(start)
            return fh.read(end - start)


# -- the check -------------------------------------------------------------------------


@dataclass
class EdgeCheckConfig:
    size: int = 16 << 20
    herd: int = 8
    glance_auth: str = "tokens"
    edge_workers: int = 2
    work_dir: Path | None = None
    keep: bool = False
    python: str | None = None


class EdgeCheck:
    """The checklist's state: the two servers, the identities, the images made so far."""

    def __init__(self, config: EdgeCheckConfig, work: Path, venv: GlanceVenv, out: Out = _stdout) -> None:
        self.config = config
        self.work = work
        self.venv = venv
        self.list = Checklist(out)
        self.tokens_mode = config.glance_auth == "tokens"
        self.glance_server: GlanceServer | None = None
        self.edge_server: ImagecacheServer | None = None
        self.glance: Node | None = None
        self.edge: Node | None = None
        self.admin = "glance-admin-tok" if self.tokens_mode else "anything"
        self.member = "glance-alice-tok" if self.tokens_mode else "anything"
        self.images: dict[str, str] = {}  # role -> image id
        self.data: dict[str, ImageData] = {}
        self.gc_log: list[str] = []

    # -- helpers -------------------------------------------------------------------
    def need(self, *names: str) -> None:
        missing = [name for name in names if name not in self.images]
        if missing:
            raise Skipped(f"needs the image(s) {', '.join(missing)} from an earlier item that failed")
        if self.glance_server is None or self.edge is None:
            raise Skipped("needs Glance and the edge up")

    def metrics(self) -> Metrics:
        assert self.edge is not None
        reply = self.edge.call("GET", "/metrics", None)
        expect(reply.status == 200, f"GET /metrics on the edge: {reply.status}")
        return Metrics.parse(reply.text)

    def cached(self) -> dict[str, dict[str, Any]]:
        assert self.edge is not None
        reply = self.edge.call("GET", "/v2/cache", self.admin)
        expect(reply.status == 200, f"GET /v2/cache on the edge as admin: {reply.status} {reply.text[:300]}")
        return {entry["image_id"]: entry for entry in reply.json().get("cached_images", [])}

    def wait_listed(self, image_id: str, timeout: float = LISTED_TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            entry = self.cached().get(image_id)
            if entry is not None:
                return entry
            if time.monotonic() > deadline:
                raise Failed(f"image {image_id} not listed in the edge's /v2/cache within {timeout:.0f} s")
            time.sleep(0.1)

    def wait_hits(self, image_id: str, hits: int, timeout: float = LISTED_TIMEOUT) -> dict[str, Any]:
        """The listing's entry once it counts ``hits`` (each worker writes its hits once per flush interval)."""
        deadline = time.monotonic() + timeout
        while True:
            entry = self.wait_listed(image_id, timeout)
            if entry["hits"] >= hits or time.monotonic() > deadline:
                return entry
            time.sleep(0.1)

    def upload(self, node: Node, name: str, token: str, data: ImageData) -> str:
        reply = node.call("POST", "/v2/images", token,
                          body={"name": name, "disk_format": "raw", "container_format": "bare"})
        expect(reply.status == 201, f"POST /v2/images via {node.name}: {reply.status} {reply.text[:300]}")
        image_id = str(reply.json()["id"])
        with open(data.path, "rb") as fh:
            put = node.call("PUT", f"/v2/images/{image_id}/file", token, body=fh, timeout=600,
                            headers={"Content-Type": "application/octet-stream", "Content-Length": str(data.size)})
        expect(put.status == 204, f"PUT /v2/images/{image_id}/file via {node.name}: {put.status} {put.text[:300]}")
        return image_id

    def new_data(self, role: str, size: int | None = None) -> ImageData:
        data = ImageData.write(self.work / f"{role}.raw", size or self.config.size)
        self.data[role] = data
        return data

    def glance_fetches(self, image_id: str) -> int:
        assert self.glance_server is not None
        return self.glance_server.data_fetches(image_id)

    # -- the items -----------------------------------------------------------------
    def start_glance(self) -> str:
        server = GlanceServer(self.work / "glance", venv=self.venv, flavor="none",
                              auth=self.config.glance_auth, log=_stderr)
        self.glance_server = server
        server.start()
        self.glance = Node("Glance", server.host, server.port)
        versions = self.glance.call("GET", "/versions", None)
        current = [v["id"] for v in versions.json().get("versions", []) if v.get("status") == "CURRENT"]
        return (f"glance {self.venv.version()} at {server.url}, paste flavor "
                f"{server.paste_flavor or 'default (unauthenticated-context)'}, CURRENT {current}; "
                f"venv {'reused' if not self.venv.install_seconds else f'built in {self.venv.install_seconds:.0f} s'}")

    def start_edge(self) -> str:
        if self.glance_server is None:
            raise Skipped("Glance did not start")
        extra = ["--upstream", self.glance_server.url]
        env: dict[str, str] = {}
        if self.tokens_mode:
            tokens_file = self.work / "edge-tokens.toml"
            tokens_file.write_text(f'[tokens."{self.admin}"]\nproject = "p-admin"\nroles = ["admin"]\n',
                                   encoding="utf-8")
            extra += ["--auth", "tokens", "--tokens-file", str(tokens_file)]  # after ImagecacheServer's --auth none
            env["IMAGECACHE_UPSTREAM_AUTH_TOKEN"] = self.admin
        server = ImagecacheServer(self.work / "edge", workers=self.config.edge_workers, extra_args=extra, env=env)
        self.edge_server = server
        server.start()
        self.edge = Node("the edge", server.host, server.port)
        detail = f"{server.url}: {' '.join(server.argv[1:])}"
        if self.tokens_mode:
            anonymous = self.edge.call("GET", "/v2/cache", None)
            expect(anonymous.status == 401,
                   f"--auth tokens not in force? GET /v2/cache without a token: {anonymous.status}")
            member = self.edge.call("GET", "/v2/cache", self.member)
            expect(member.status == 403, f"GET /v2/cache as a member (unknown to the edge): {member.status}")
            detail += "\n/v2/cache: no token 401, member 403"
        return detail

    def versions(self) -> str:
        self.need()
        assert self.edge is not None and self.glance is not None
        via, direct = self.edge.call("GET", "/versions", None), self.glance.call("GET", "/versions", None)
        expect(via.status == direct.status, f"/versions: edge {via.status}, Glance {direct.status}")
        ids = lambda r: [v["id"] for v in r.json()["versions"]]  # noqa: E731
        # The edge serves the cache API itself, so it adds the versions a Glance
        # with a cache lists (v2.14, v2.16, v2.18) to whatever its upstream lists.
        cache_versions = {"v2.14", "v2.16", "v2.18"}
        expect(set(ids(via)) == set(ids(direct)) | cache_versions,
               f"/versions: edge {ids(via)} is not Glance's {ids(direct)} plus {sorted(cache_versions)}")
        current = [v["id"] for v in via.json()["versions"] if v.get("status") == "CURRENT"]
        expect(current == ["v2.18"], f"/versions: CURRENT on the edge is {current}, not v2.18")
        added = sorted(set(ids(via)) - set(ids(direct)))
        return (f"{via.status}, {len(ids(via))} versions: Glance's {len(ids(direct))} plus the cache API's "
                f"{', '.join(added) or 'none (Glance lists them itself)'}; CURRENT v2.18 "
                f"(via: {via.headers.get('via')})")

    def create_upload(self) -> str:
        self.need()
        assert self.edge is not None and self.glance is not None
        data = self.new_data("main")
        image_id = self.upload(self.edge, "edge-check-main", self.member, data)
        self.images["main"] = image_id
        meta = self.glance.call("GET", f"/v2/images/{image_id}", self.admin).json()
        expect(meta["status"] == "active", f"status {meta['status']}")
        expect(meta["size"] == data.size, f"size {meta['size']} != {data.size}")
        expect(meta["checksum"] == data.md5, f"checksum {meta['checksum']} != md5 {data.md5}")
        expect(meta.get("os_hash_algo") == "sha512" and meta.get("os_hash_value") == data.sha512,
               f"multihash {meta.get('os_hash_algo')}:{str(meta.get('os_hash_value'))[:16]}... != sha512 of the data")
        return (f"image {image_id} ({data.size} bytes) created and uploaded as the member through the edge; "
                f"Glance says active, checksum and sha512 multihash match, owner {meta.get('owner')}")

    def download_miss(self) -> str:
        self.need("main")
        assert self.edge is not None
        image_id, data = self.images["main"], self.data["main"]
        expect(image_id not in self.cached(), "already cached before the first download")
        before = self.metrics()
        reply, sha, n = self.edge.download(image_id, self.member)
        expect(reply.status == 200, f"status {reply.status}")
        expect(n == data.size and sha == data.sha256,
               f"got {n} bytes, sha256 {sha[:16]}... (want {data.size}, {data.sha256[:16]}...)")
        expect(reply.headers.get("content-md5") == data.md5,
               f"Content-MD5 {reply.headers.get('content-md5')} != {data.md5}")
        entry = self.wait_listed(image_id)
        delta = self.metrics() - before
        fetches = self.glance_fetches(image_id)
        expect(fetches == 1, f"Glance served the data {fetches} times (access log), wanted 1")
        expect(delta.get("imagecache_upstream_bytes_total") == data.size,
               f"upstream bytes +{delta.get('imagecache_upstream_bytes_total'):.0f}, wanted +{data.size}")
        return (f"200, {n} bytes, sha256 and Content-MD5 right; listed (size {entry['size']}); Glance data GETs: 1; "
                f"metrics: misses +{delta.get('imagecache_cache_misses_total'):.0f}, upstream bytes "
                f"+{delta.get('imagecache_upstream_bytes_total'):.0f}, fills completed "
                f"+{delta.get('imagecache_fills_total', result='completed'):.0f}")

    def download_hit(self) -> str:
        self.need("main")
        assert self.edge is not None
        image_id, data = self.images["main"], self.data["main"]
        hits_before = self.cached()[image_id]["hits"]
        before = self.metrics()
        reply, sha, n = self.edge.download(image_id, self.member)
        expect(reply.status == 200 and sha == data.sha256 and n == data.size,
               f"status {reply.status}, {n} bytes, sha ok: {sha == data.sha256}")
        expect(reply.headers.get("content-md5") == data.md5, f"Content-MD5 {reply.headers.get('content-md5')}")
        delta = self.metrics() - before
        entry = self.cached()[image_id]
        fetches = self.glance_fetches(image_id)
        expect(delta.get("imagecache_cache_hits_total") == 1,
               f"hits +{delta.get('imagecache_cache_hits_total'):.0f}, wanted +1")
        expect(delta.get("imagecache_upstream_bytes_total") == 0,
               f"upstream bytes +{delta.get('imagecache_upstream_bytes_total'):.0f}, wanted 0")
        if entry["hits"] < hits_before + 1:  # the other worker's hit: in the index within its flush interval
            entry = self.wait_hits(image_id, hits_before + 1)
        expect(entry["hits"] == hits_before + 1, f"/v2/cache hits {hits_before} -> {entry['hits']}")
        expect(fetches == 1, f"Glance data GETs now {fetches}, wanted still 1")
        return (f"200 from the cache: /v2/cache hits {hits_before} -> {entry['hits']}; metrics hits +1, "
                f"served cache bytes +{delta.get('imagecache_served_bytes_total', source='cache'):.0f}, "
                "upstream bytes +0 "
                f"(total {self.metrics().get('imagecache_upstream_bytes_total'):.0f}); Glance data GETs still 1")

    def ranges(self) -> str:
        self.need("main")
        assert self.edge is not None
        image_id, data = self.images["main"], self.data["main"]
        before = self.metrics()
        results = []
        for rng, first, last in (("bytes=1000-66535", 1000, 66535), ("bytes=-100", data.size - 100, data.size - 1),
                                 (f"bytes={data.size - 10}-", data.size - 10, data.size - 1)):
            reply, sha, n = self.edge.download(image_id, self.member, rng=rng)
            want = hashlib.sha256(data.read(first, last + 1)).hexdigest()
            expect(reply.status == 206, f"{rng}: status {reply.status}")
            expect(reply.headers.get("content-range") == f"bytes {first}-{last}/{data.size}",
                   f"{rng}: Content-Range {reply.headers.get('content-range')}")
            expect(n == last - first + 1 and sha == want, f"{rng}: {n} bytes, right bytes: {sha == want}")
            results.append(f"{rng} -> 206 {reply.headers.get('content-range')}")
        bad, _, _ = self.edge.download(image_id, self.member, rng=f"bytes={data.size + 10}-")
        expect(bad.status == 416, f"unsatisfiable range: {bad.status}")
        delta = self.metrics() - before
        expect(delta.get("imagecache_cache_hits_total") == 3,
               f"hits +{delta.get('imagecache_cache_hits_total'):.0f}, wanted +3")
        partial = self.glance_server.data_fetches(image_id, (206,)) if self.glance_server else -1
        expect(partial == 0 and self.glance_fetches(image_id) == 1, f"Glance saw {partial} ranged GETs")
        return "; ".join(results) + "; past the end -> 416; hits +3, Glance not asked for data"

    def herd(self) -> str:
        self.need()
        assert self.edge is not None
        data = self.new_data("herd")
        image_id = self.upload(self.edge, "edge-check-herd", self.member, data)
        self.images["herd"] = image_id
        before = self.metrics()
        barrier = threading.Barrier(self.config.herd)
        results: list[tuple[int, str, int] | str] = [""] * self.config.herd

        def one(i: int) -> None:
            try:
                barrier.wait(30)
                reply, sha, n = self.edge.download(image_id, self.member)  # type: ignore[union-attr]
                results[i] = (reply.status, sha, n)
            except Exception as exc:  # noqa: BLE001
                results[i] = f"{type(exc).__name__}: {exc}"

        threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(self.config.herd)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(1.0, 300 - (time.monotonic() - started)))
        wall = time.monotonic() - started
        expect(not any(t.is_alive() for t in threads), "downloads still running after 300 s")
        good = sum(1 for r in results
                   if isinstance(r, tuple) and r[0] == 200 and r[1] == data.sha256 and r[2] == data.size)
        expect(good == self.config.herd, f"{good}/{self.config.herd} got the right image: {results}")
        self.wait_listed(image_id)
        delta = self.metrics() - before
        fetches = self.glance_fetches(image_id)
        expect(fetches == 1, f"Glance served the image's data {fetches} times (access log), wanted 1")
        return (f"{good}/{self.config.herd} right in {wall:.2f} s; Glance data GETs: {fetches}; upstream bytes "
                f"+{delta.get('imagecache_upstream_bytes_total'):.0f} "
                f"({delta.get('imagecache_upstream_bytes_total') / data.size:.2f}x the image), "
                f"followers +{delta.get('imagecache_fill_followers_total'):.0f}, "
                f"hits +{delta.get('imagecache_cache_hits_total'):.0f}")

    def _member_statuses(self, image_id: str, count: int) -> list[int]:
        assert self.edge is not None
        return [self.edge.download(image_id, self.member)[0].status for _ in range(count)]

    def _glance_metadata_gets(self, image_id: str) -> int:
        assert self.glance_server is not None
        needle = f'"GET /v2/images/{image_id} HTTP/1.1"'
        return sum(1 for line in self.glance_server.access_lines() if needle in line)

    def deactivate(self) -> str:
        self.need("herd")
        if not self.tokens_mode:
            raise Skipped("Glance noauth: unauthenticated-context makes every caller admin (it reads no X-Roles / "
                          "X-Tenant-Id), and admins may download deactivated images; use --glance-auth tokens")
        assert self.edge is not None
        image_id = self.images["herd"]
        # Warm both workers' memo of "active" for the member (the herd did that too).
        warm = self._member_statuses(image_id, 4)
        reply = self.edge.call("POST", f"/v2/images/{image_id}/actions/deactivate", self.admin)
        expect(reply.status == 204, f"deactivate through the edge: {reply.status} {reply.text[:200]}")
        before = self.metrics()
        asked = self._glance_metadata_gets(image_id)
        at_once = self._member_statuses(image_id, 6)
        hits = (self.metrics() - before).get("imagecache_cache_hits_total")
        asked = self._glance_metadata_gets(image_id) - asked
        admin_status = self.edge.download(image_id, self.admin)[0].status
        time.sleep(AUTH_CACHE_TTL + 1)
        later = self._member_statuses(image_id, 6)
        detail = (f"member before {warm}; deactivate 204; member at once {at_once} (cache hits +{hits:.0f}, "
                  f"Glance asked for the image's metadata {asked} times); admin {admin_status}; "
                  f"member after auth_cache_ttl+1 s {later}")
        expect(all(s == 403 for s in later), f"member not refused even after the memo expired: {detail}")
        expect(all(s == 403 for s in at_once), f"a member still got the deactivated image right after the deactivate "
               f"through the edge: {detail}")
        expect(admin_status == 200, f"admin refused a deactivated image: {detail}")
        return detail

    def reactivate(self) -> str:
        self.need("herd")
        assert self.edge is not None
        image_id, data = self.images["herd"], self.data["herd"]
        reply = self.edge.call("POST", f"/v2/images/{image_id}/actions/reactivate", self.admin)
        expect(reply.status == 204, f"reactivate through the edge: {reply.status} {reply.text[:200]}")
        statuses = []
        for _ in range(4):
            head, sha, _n = self.edge.download(image_id, self.member)
            statuses.append(head.status)
            expect(head.status == 200 and sha == data.sha256,
                   f"after reactivate: {statuses}, sha ok {sha == data.sha256}")
        return f"reactivate 204; member downloads {statuses}, right bytes"

    def delete(self) -> str:
        self.need("herd")
        assert self.edge is not None and self.glance is not None
        image_id = self.images["herd"]
        expect(image_id in self.cached(), "the image was not cached before the delete")
        evictions = self.metrics().get("imagecache_evictions_total")
        reply = self.edge.call("DELETE", f"/v2/images/{image_id}", self.member)
        expect(reply.status == 204, f"DELETE through the edge: {reply.status} {reply.text[:200]}")
        listed = image_id in self.cached()
        gone = self.glance.call("GET", f"/v2/images/{image_id}", self.admin).status
        after = self.edge.download(image_id, self.member)[0].status
        expect(not listed, "still listed in the edge's /v2/cache after the delete")
        expect(gone == 404 and after == 404, f"Glance GET {gone}, edge download {after} (wanted 404, 404)")
        evicted = self.metrics().get("imagecache_evictions_total") - evictions
        return (f"DELETE 204; gone from /v2/cache (evictions +{evicted:.0f}); "
                f"Glance 404; edge download 404")

    def cache_api(self) -> str:
        self.need()
        assert self.edge is not None and self.glance is not None
        data = self.new_data("queued", 4 << 20)
        image_id = self.upload(self.glance, "edge-check-queued", self.member, data)  # straight to Glance
        self.images["queued"] = image_id
        if self.tokens_mode:
            refused = self.edge.call("PUT", f"/v2/cache/{image_id}", self.member)
            expect(refused.status == 403, f"PUT /v2/cache as a member: {refused.status}")
        reply = self.edge.call("PUT", f"/v2/cache/{image_id}", self.admin)
        expect(reply.status in (200, 202, 204),
               f"PUT /v2/cache/{image_id} as the edge's admin: {reply.status} {reply.text[:200]}")
        started = time.monotonic()
        entry = self.wait_listed(image_id)
        took = time.monotonic() - started
        expect(entry["size"] == data.size, f"listed with size {entry['size']}")
        head, sha, _ = self.edge.download(image_id, self.member)
        expect(head.status == 200 and sha == data.sha256,
               f"download after prefetch: {head.status}, sha ok {sha == data.sha256}")
        fetches = self.glance_fetches(image_id)
        expect(fetches == 1, f"Glance data GETs {fetches}, wanted 1 (the prefetch)")
        return (f"PUT {reply.status}{' (member: 403)' if self.tokens_mode else ''}; listed after {took:.1f} s with "
                f"size {entry['size']}; then a member's download is a hit; Glance data GETs: 1")

    def _glanceclient(self) -> Callable[..., str]:
        """``glance ARGS`` against the edge, as ``token``: its stdout, or Failed with its output."""
        assert self.edge is not None
        if not GLANCECLIENT.exists():
            raise Skipped(f"{GLANCECLIENT} not installed (python-glanceclient is a test dependency: make test)")
        home = self.work / "gc-home"
        home.mkdir(exist_ok=True)
        url = self.edge.url

        def glance(*args: str, token: str, timeout: float = 180) -> str:
            env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "OS_IMAGE_URL": url, "OS_AUTH_TOKEN": token}
            try:
                done = subprocess.run([str(GLANCECLIENT), *args], env=env, capture_output=True, text=True,
                                      timeout=timeout, check=False)
            except subprocess.TimeoutExpired:
                raise Failed(f"glance {' '.join(args)}: no answer in {timeout:.0f} s") from None
            self.gc_log.append(f"glance {' '.join(args)} -> exit {done.returncode}")
            if done.returncode != 0:
                raise Failed("\n".join(self.gc_log) + f"\n{(done.stdout + done.stderr).strip()[-1500:]}")
            return done.stdout

        return glance

    def glanceclient_images(self) -> str:
        self.need()
        self.gc_log = []
        glance = self._glanceclient()
        data = self.new_data("gc", 4 << 20)
        made = glance("--os-image-api-version", "2", "image-create", "--name", "edge-check-gc", "--disk-format", "raw",
                      "--container-format", "bare", "--file", str(data.path), token=self.member)
        image_id = _table_field(made, "id")
        self.images["gc"] = image_id
        expect(_table_field(made, "status") == "active", f"image-create: status {_table_field(made, 'status')}")
        out = self.work / "gc-out.raw"
        glance("image-download", "--file", str(out), image_id, token=self.member)
        expect(_sha256(out) == data.sha256, "image-download: wrong bytes")
        self.wait_listed(image_id)
        glance("image-download", "--file", str(out), image_id, token=self.member)
        expect(_sha256(out) == data.sha256, "second image-download: wrong bytes")
        fetches = self.glance_fetches(image_id)
        expect(fetches == 1, f"Glance data GETs {fetches}, wanted 1")
        return "\n".join(self.gc_log) + "\nright bytes twice; Glance data GETs: 1 (the second was a hit)"

    def glanceclient_cache(self) -> str:
        self.need("gc")
        self.gc_log = []
        glance = self._glanceclient()
        assert self.edge is not None
        versions = [v["id"] for v in self.edge.call("GET", "/versions", None).json().get("versions", [])]
        image_id = self.images["gc"]
        try:
            listing = glance("cache-list", token=self.admin)
            expect(image_id in listing, f"cache-list does not show {image_id}:\n{listing}")
            # cache-queue an image the edge has never seen, then cache-list shows it cached.
            other = ImageData.write(self.work / "gc-queued.raw", 1 << 20)
            queued_id = _table_field(glance("image-create", "--name", "edge-check-gc-q", "--disk-format", "raw",
                                            "--container-format", "bare", "--file", str(other.path),
                                            token=self.member), "id")
            glance("cache-queue", queued_id, token=self.admin)
            self.wait_listed(queued_id)
            listing = glance("cache-list", token=self.admin)
            expect(queued_id in listing, f"cache-list after cache-queue does not show {queued_id}:\n{listing}")
        except Failed as exc:
            raise Failed(f"{exc}\nthe edge's /versions: {', '.join(versions)} "
                         f"(v2.14, the cache API: {'listed' if 'v2.14' in versions else 'NOT listed'})") from None
        if self.tokens_mode:
            try:
                glance("cache-list", token=self.member)
            except Failed:
                self.gc_log[-1] += " (a member: refused, as it should be)"
            else:
                raise Failed("cache-list as a member succeeded; it needs the edge's admin")
        return "\n".join(self.gc_log)

    def glance_down(self) -> str:
        self.need("main")
        assert self.edge is not None and self.glance_server is not None
        image_id, _data = self.images["main"], self.data["main"]
        expect(image_id in self.cached(), "the main image is no longer cached")
        # A memo answer lives auth_cache_ttl from its fetch (a hit does not refresh it): let the old ones
        # expire, so that these requests fetch fresh ones in both workers.
        time.sleep(AUTH_CACHE_TTL + 0.5)
        warm = self._member_statuses(image_id, 4)
        stopping = time.monotonic()
        status = self.glance_server.stop()
        stop_took = time.monotonic() - stopping
        within_ttl = self._member_statuses(image_id, 4)
        time.sleep(AUTH_CACHE_TTL + 1)
        hit, _sha, _ = self.edge.download(image_id, self.member)
        body = self.edge.call("GET", f"/v2/images/{image_id}/file", self.member)
        listing = self.edge.call("GET", "/v2/images", self.member)
        miss = self.edge.call("GET", "/v2/images/00000000-0000-4000-8000-000000000000/file", self.member)
        detail = (f"member hits {warm}; Glance stopped (status {status}, {stop_took:.1f} s); "
                  f"hits at once (fresh authorization answers, kept auth_cache_ttl): {within_ttl}; "
                  f"after auth_cache_ttl+1 s: {hit.status} Retry-After {hit.headers.get('retry-after')} "
                  f"{_message(body)!r}; image list {listing.status}; uncached image {miss.status} "
                  f"{miss.headers.get('x-imagecache-upstream-error')}")
        expect(hit.status == 503, f"hit not refused: {detail}")
        expect(listing.status == 502 and miss.status == 502, f"proxy errors: {detail}")
        return detail


def _message(reply: Reply) -> str:
    try:
        return str(reply.json()["error"]["message"])[:120]
    except (ValueError, KeyError, TypeError):
        return reply.text[:120]


def _table_field(table: str, name: str) -> str:
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] == name:
            return cells[1]
    raise Failed(f"no {name!r} in glanceclient's output:\n{table[-1500:]}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _excerpts(check: EdgeCheck, out: Out) -> None:
    if check.edge_server is not None:
        lines = check.edge_server.log_excerpt(60)
        out(f"\nedge log ({check.edge_server.log_path}): {len(lines)} warning/error lines" + (":" if lines else ""))
        for line in lines:
            out(f"    {line}")
    if check.glance_server is not None:
        lines = check.glance_server.errors(30)
        out(f"\nGlance errors ({check.glance_server.glance_log}): {len(lines)}" + (":" if lines else ""))
        for line in lines:
            out(f"    {line[:300]}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_edge_check(config: EdgeCheckConfig, out: Out = _stdout) -> int:
    """Run the checklist; SIGTERM, like Ctrl-C, still stops both servers (they run in their own sessions)."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _run(config, out)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(config: EdgeCheckConfig, out: Out) -> int:
    try:
        venv = ensure_venv(python=config.python)
    except GlanceError as exc:
        out(f"FAIL  Glance venv\n        {exc}")
        return 1
    with work_directory("edge-check-", config.work_dir, config.keep or config.work_dir is not None) as work:
        check = EdgeCheck(config, work, venv, out)
        out(f"edge-check: Glance auth {config.glance_auth}, image size {config.size}, herd {config.herd}, work {work}")
        try:
            items: list[tuple[str, Callable[[], str]]] = [
                ("Glance 33 up (no cache flavor)", check.start_glance),
                (f"edge up: imagecache serve --upstream, {config.edge_workers} workers", check.start_edge),
                ("GET /versions through the edge", check.versions),
                ("image-create + upload through the edge (v2)", check.create_upload),
                ("download through the edge: miss (sha256, Content-MD5, Glance read once)", check.download_miss),
                ("second download: hit (/v2/cache hits, /metrics upstream bytes)", check.download_hit),
                ("Range from the cached image (206, right bytes)", check.ranges),
                (f"{config.herd} concurrent first downloads read Glance once", check.herd),
                ("deactivate: member gets 403 through the edge, admin 200", check.deactivate),
                ("reactivate: member downloads again", check.reactivate),
                ("delete through the edge evicts from the edge's cache", check.delete),
                ("cache API on the edge: PUT /v2/cache/{id}, then listed", check.cache_api),
                ("glanceclient through the edge: image-create --file, image-download", check.glanceclient_images),
                ("glanceclient through the edge: cache-list, cache-queue", check.glanceclient_cache),
                ("Glance stopped: a hit is 503 (proxied calls 502)", check.glance_down),
            ]
            for name, item in items:
                ok = check.list.run(name, item)
                if not ok and item in (check.start_glance, check.start_edge):
                    if check.glance_server is not None and item == check.start_glance:
                        out(check.glance_server.log_tails())
                    break
        finally:
            _excerpts(check, out)
            if check.edge_server is not None:
                check.edge_server.stop()
            if check.glance_server is not None:
                check.glance_server.stop()
        counts = {s: sum(1 for i in check.list.items if i.status == s) for s in ("PASS", "FAIL", "SKIP")}
        out(f"\n{counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
        return 1 if counts["FAIL"] or not counts["PASS"] else 0
