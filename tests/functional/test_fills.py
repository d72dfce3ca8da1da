"""Fill once, serve many: real servers (2 gunicorn workers), real HTTP, origins that misbehave.

The origins are the embedded image service wrapped by origin_server.py:
slowed down so that a fill lasts long enough to join or kill, or flipping a
byte so that only verification can catch it.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import random
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.waiting import wait_until

from .conftest import RunningServer
from .test_cache_http import cache_listing, create, wait_cached

MiB = 1 << 20


def metrics(server: RunningServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = server.request("GET", "/metrics")
    assert answer.status == 200, answer.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def metric(values: dict, name: str, **labels: str) -> float:
    return values.get((name, tuple(sorted(labels.items()))), 0.0)


class Download:
    """One client's GET of an image's data, read to the end or to the failure."""

    def __init__(self, server: RunningServer, image_id: str, user: str = "alice") -> None:
        self.server, self.image_id, self.user = server, image_id, user
        self.status: int | None = None
        self.body = b""
        self.error: BaseException | None = None
        self.declared: int | None = None

    def __call__(self) -> None:
        connection = http.client.HTTPConnection(self.server.host, self.server.port, timeout=60)
        try:
            connection.request("GET", f"/v2/images/{self.image_id}/file", headers=self.server.headers(self.user))
            response = connection.getresponse()
            self.status = response.status
            length = response.getheader("Content-Length")
            self.declared = int(length) if length is not None else None
            chunks = []
            while True:
                chunk = response.read(MiB)
                if not chunk:
                    break
                chunks.append(chunk)
            self.body = b"".join(chunks)
            if self.declared is not None and len(self.body) != self.declared:
                raise http.client.IncompleteRead(self.body, self.declared - len(self.body))
        except (OSError, http.client.HTTPException) as exc:
            self.error = exc
        finally:
            connection.close()


def run_together(downloads: list[Download]) -> None:
    barrier = threading.Barrier(len(downloads))

    def go(download: Download) -> None:
        barrier.wait()
        download()

    threads = [threading.Thread(target=go, args=(d,)) for d in downloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
        assert not thread.is_alive(), "a download hung"


def writer_pid(incomplete: Path) -> int | None:
    """The pid holding the exclusive flock on ``incomplete`` (from /proc/locks)."""
    try:
        st = incomplete.stat()
    except FileNotFoundError:
        return None
    wanted = f":{st.st_ino}"
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        # e.g. "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[3] == "WRITE" and fields[5].endswith(wanted):
            return int(fields[4])
    return None


@pytest.fixture(scope="module")
def image_64m() -> bytes:
    return os.urandom(64 * MiB)


def test_sixteen_concurrent_first_downloads_fetch_the_image_once(start_server, image_64m):
    # 64 MiB at 64 MiB/s: every client arrives while the one fill is running.
    server = start_server(auth="tokens", workers=2, origin=f"throttled:{64 * MiB}")
    image_id = create(server, "alice", image_64m)
    downloads = [Download(server, image_id) for _ in range(16)]
    run_together(downloads)
    digest = hashlib.sha256(image_64m).hexdigest()
    for download in downloads:
        assert download.error is None and download.status == 200, (download.status, download.error)
        assert hashlib.sha256(download.body).hexdigest() == digest
    wait_cached(server, image_id)
    values = metrics(server)
    assert metric(values, "imagecache_upstream_bytes_total") == len(image_64m)
    assert metric(values, "imagecache_fills_total", result="completed") == 1
    assert metric(values, "imagecache_fill_followers_total") + metric(values, "imagecache_cache_hits_total") == 15
    assert metric(values, "imagecache_fill_followers_total") >= 8, "clients did not overlap the fill"
    assert metric(values, "imagecache_served_bytes_total", source="cache") == 16 * len(image_64m)
    assert metric(values, "imagecache_cache_size_bytes") == len(image_64m)


def test_a_writer_killed_mid_fill_fails_no_download_silently(start_server, image_64m):
    server = start_server(auth="tokens", workers=2, origin=f"throttled:{32 * MiB}")
    image_id = create(server, "alice", image_64m)
    incomplete = Path(server.data_dir, "image-cache", "incomplete", image_id)
    downloads = [Download(server, image_id) for _ in range(6)]
    threads = [threading.Thread(target=download) for download in downloads]
    for thread in threads:
        thread.start()
    kill_at = random.randint(1 * MiB, 48 * MiB)

    def writer_past_kill_point() -> int | None:
        pid = writer_pid(incomplete)
        return pid if pid is not None and incomplete.stat().st_size >= kill_at else None

    # Polled finely: at 32 MiB/s a coarse poll would overshoot the kill point by megabytes.
    pid = wait_until(writer_past_kill_point, f"a fill to kill at {kill_at} bytes", max_interval=0.005)
    os.kill(pid, signal.SIGKILL)
    for thread in threads:
        thread.join(120)
    digest = hashlib.sha256(image_64m).hexdigest()
    completed = failed = 0
    for download in downloads:
        if download.error is None and download.status == 200:
            assert hashlib.sha256(download.body).hexdigest() == digest, "a complete-looking wrong image"
            completed += 1
        else:
            assert download.error is not None or download.status != 200
            assert len(download.body) < len(image_64m), "a failed download must look incomplete"
            failed += 1
    assert completed + failed == 6 and failed >= 1  # the killed worker's own clients at least
    # Nobody finished that fill: not cached (gunicorn has replaced the worker meanwhile).
    assert image_id not in cache_listing(server)
    # After a full restart on the same data: still not cached until a fresh fill verifies it.
    server.stop()
    server = start_server(auth="tokens", workers=2, data_dir=server.data_dir)
    assert image_id not in cache_listing(server)
    again = Download(server, image_id)
    again()
    assert again.error is None and hashlib.sha256(again.body).hexdigest() == digest
    assert wait_cached(server, image_id)["size"] == len(image_64m)
    assert Path(server.data_dir, "image-cache", image_id).read_bytes() == image_64m


def test_a_corrupting_origin_is_caught_and_the_response_aborted(start_server):
    server = start_server(auth="tokens", workers=2, origin="corrupt")
    data = os.urandom(5 * MiB)
    image_id = create(server, "alice", data)
    for _ in range(2):  # the second request is not served a bad cached copy either
        download = Download(server, image_id)
        download()
        assert download.declared == len(data)
        assert download.error is not None, "a corrupted image was delivered as complete"
        assert len(download.body) < len(data)
    assert Path(server.data_dir, "image-cache", "invalid", image_id).exists()
    assert not Path(server.data_dir, "image-cache", image_id).exists()
    assert image_id not in cache_listing(server)
    assert metric(metrics(server), "imagecache_fills_total", result="failed") == 2


@pytest.fixture
def tiny_cache_fs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs as the cache dir: every fill of a larger image hits ENOSPC."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    data_dir = tmp_path / "tiny-data"
    cache_dir = data_dir / "image-cache"
    cache_dir.mkdir(parents=True)
    import subprocess

    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(cache_dir)], check=True)
    try:
        yield data_dir
    finally:
        subprocess.run(["umount", "-l", str(cache_dir)], check=False)


def test_disk_full_during_a_fill_still_delivers_the_whole_image(start_server, tiny_cache_fs):
    # The limit alone would allow it: only the filesystem is too small.
    server = start_server(auth="tokens", workers=2, data_dir=tiny_cache_fs, origin=f"throttled:{16 * MiB}")
    data = os.urandom(8 * MiB)
    image_id = create(server, "alice", data)
    downloads = [Download(server, image_id) for _ in range(4)]
    run_together(downloads)
    for download in downloads:
        assert download.error is None and download.status == 200
        assert download.body == data
    cache = Path(tiny_cache_fs, "image-cache")
    assert not (cache / image_id).exists()
    assert not list((cache / "incomplete").glob(image_id + "*"))
    assert image_id not in cache_listing(server)
    values = metrics(server)
    assert metric(values, "imagecache_fills_total", result="failed") == 1
    # The leader fetched it once for the fill, and each reader fetched the rest once.
    assert metric(values, "imagecache_upstream_bytes_total") <= 5 * len(data)
