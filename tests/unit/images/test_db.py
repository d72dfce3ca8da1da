"""The metadata database: round trips, atomic changes, per-thread and per-process connections."""

from __future__ import annotations

import os
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from imagecache.http.context import RequestContext
from imagecache.images.db import ImageDB
from imagecache.images.listing import ListQuery
from imagecache.images.model import Image, new_id
from imagecache.images.refusals import Refusal, conflict, forbidden

NOW = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
ADMIN = RequestContext(project_id="p", roles=("admin",))


@pytest.fixture
def db(tmp_path: Path) -> ImageDB:
    return ImageDB(str(tmp_path / "images.db"))


def record(**fields: object) -> Image:
    values: dict[str, object] = {"id": new_id(), "owner": "p", "created_at": NOW, "updated_at": NOW}
    values.update(fields)
    return Image(**values)  # type: ignore[arg-type]


def test_round_trip(db: ImageDB) -> None:
    original = record(
        name="ünïcode", tags=("a", "b"), properties={"k": "v", "a/b": "\x00 nul"}, protected=True,
        os_hidden=True, size=5, checksum="c", min_ram=1, min_disk=2, disk_format="raw",
    )  # fmt: skip
    assert db.insert(original)
    assert db.get(original.id) == original
    assert db.get(new_id()) is None


def test_wal_mode(db: ImageDB) -> None:
    conn = sqlite3.connect(db.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_insert_refuses_taken_and_deleted_ids(db: ImageDB) -> None:
    image = record()
    assert db.insert(image)
    with pytest.raises(Refusal) as taken:
        db.insert(image)
    assert taken.value.status == 409
    assert db.delete(image.id, lambda current: None) == image
    with pytest.raises(Refusal) as deleted:
        db.insert(image)
    assert deleted.value.status == 409


def test_modify_writes_images_and_passes_refusals_on_unwritten(db: ImageDB) -> None:
    image = record(name="before")
    db.insert(image)
    refusal = conflict("refused")

    def refuse(current: Image) -> Image:
        raise refusal

    with pytest.raises(Refusal) as refused:
        db.modify(image.id, refuse)
    assert refused.value is refusal
    assert db.get(image.id) == image
    changed = db.modify(image.id, lambda current: current.evolve(name="after"))
    assert isinstance(changed, Image) and changed.name == "after"
    assert db.get(image.id) == changed
    with pytest.raises(Refusal) as missing:
        db.modify(new_id(), lambda current: current)
    assert missing.value.status == 404
    with pytest.raises(ValueError):
        db.modify(image.id, lambda current: current.evolve(id=new_id()))


def test_delete_veto(db: ImageDB) -> None:
    image = record(protected=True)
    db.insert(image)

    def check(current: Image) -> None:
        if current.protected:
            raise forbidden("protected")

    with pytest.raises(Refusal) as vetoed:
        db.delete(image.id, check)
    assert vetoed.value.message == "protected"
    assert db.get(image.id) == image
    with pytest.raises(Refusal) as missing:
        db.delete(new_id(), lambda current: None)
    assert missing.value.status == 404


def test_concurrent_modifications_do_not_lose_updates(db: ImageDB) -> None:
    image = record(min_ram=0)
    db.insert(image)

    def bump() -> None:
        for _ in range(25):
            db.modify(image.id, lambda current: current.evolve(min_ram=current.min_ram + 1))
        db.close()

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = db.get(image.id)
    assert stored is not None and stored.min_ram == 100


def test_each_thread_has_its_own_connection(db: ImageDB) -> None:
    seen: list[int] = []

    def remember() -> None:
        seen.append(id(db._connection()))

    remember()
    thread = threading.Thread(target=remember)
    thread.start()
    thread.join()
    remember()
    assert seen[0] == seen[2] != seen[1]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_opens_its_own_connection(db: ImageDB) -> None:
    image = record()
    db.insert(image)
    parent_connection = db._connection()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, never return into pytest
        status = 1
        try:
            fresh = db._connection() is not parent_connection
            child_image = record()
            ok = fresh and db.get(image.id) == image and db.insert(child_image)
            os.write(write_fd, (child_image.id if ok else "fail").encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    child_id = os.read(read_fd, 100).decode()
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert child_id != "fail"
    assert db.get(child_id) is not None
    assert db._connection() is parent_connection


def test_list_pages_follow_sort_order_with_ties(db: ImageDB) -> None:
    images = [record(name=name, created_at=NOW + timedelta(seconds=i % 2)) for i, name in enumerate("cabbac")]
    for image in images:
        db.insert(image)
    for sort in ((("name", "asc"),), (("name", "desc"), ("created_at", "asc")), (("created_at", "desc"),)):
        full, _ = db.list(ADMIN, ListQuery(limit=100, sort=sort))
        paged: list[Image] = []
        marker = None
        while True:
            page, more = db.list(ADMIN, ListQuery(limit=2, sort=sort), marker)
            paged += page
            if not more:
                break
            marker = page[-1]
        assert [i.id for i in paged] == [i.id for i in full]
        assert len({i.id for i in full}) == len(images)
