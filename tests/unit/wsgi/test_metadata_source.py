"""DirectMetadata answers exactly what the sub-request to the embedded image service answers.

A real :class:`ImagesApp` on a temporary data dir, images written to its
database as they are stored (every visibility, status and owner), asked by
every kind of caller both ways.  The embedded service has no image members
(``shared`` is private to its owner there), so "a member" is one more other
project and pending/accepted/rejected memberships do not exist to test.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagecache.config import Settings
from imagecache.http.context import RequestContext, set_context
from imagecache.images import ImagesApp, make_app
from imagecache.images.model import Image, utcnow
from imagecache.wsgi.metadata_source import DirectMetadata, ImageMeta, SubRequestMetadata

CALLERS: dict[str, RequestContext | None] = {
    "admin": RequestContext(project_id="admin-project", roles=("admin",)),
    "owner": RequestContext(project_id="alice", roles=("member",)),
    "member": RequestContext(project_id="bob", roles=("member",)),
    "other": RequestContext(project_id="carol", roles=("reader",)),
    "anonymous": None,
}
VISIBILITIES = ("public", "private", "shared", "community")
STATUSES = ("queued", "saving", "active", "deactivated")
OWNERS = ("alice", None)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[ImagesApp]:
    application = make_app(Settings(data_dir=str(tmp_path / "data")))
    yield application
    application.db.close()


def _image(owner: str | None, visibility: str, status: str, **extra: Any) -> Image:
    now = utcnow()
    data: dict[str, Any] = {}
    if status in ("active", "deactivated"):
        data = {"size": 4096, "checksum": "0" * 32, "os_hash_algo": "sha512", "os_hash_value": "1" * 128}
    return Image(id=str(uuid.uuid4()), owner=owner, created_at=now, updated_at=now, name="img",
                 status=status, visibility=visibility, disk_format="raw", container_format="bare",
                 **data, **extra)


def _environ(caller: RequestContext | None) -> dict[str, Any]:
    environ: dict[str, Any] = {"HTTP_HOST": "localhost:9292"}
    if caller is not None:
        set_context(environ, caller)
    return environ


def _both(app: ImagesApp, caller: RequestContext | None, image_id: str) -> tuple[ImageMeta, ImageMeta]:
    sub = SubRequestMetadata(app)
    direct = DirectMetadata(app.image_document, sub)
    return sub.fetch(_environ(caller), image_id), direct.fetch(_environ(caller), image_id)


def _assert_same(by_request: ImageMeta, direct: ImageMeta) -> None:
    assert direct.status == by_request.status
    assert direct.found == by_request.found
    assert direct.image == by_request.image
    if not by_request.found:
        assert direct.response.body == by_request.response.body
        assert direct.response.headerlist == by_request.response.headerlist


def test_every_visibility_status_owner_and_caller_answers_alike(app: ImagesApp) -> None:
    ids = []
    for owner, visibility, status in itertools.product(OWNERS, VISIBILITIES, STATUSES):
        ids.append(app.db.insert(_image(owner, visibility, status)).id)
    deleted = app.db.insert(_image("alice", "public", "active")).id
    app.db.delete(deleted, lambda image: None)
    ids += [deleted, str(uuid.uuid4()), "not-a-uuid", ids[0].upper()]
    seen = set()
    for image_id, caller in itertools.product(ids, CALLERS.values()):
        by_request, direct = _both(app, caller, image_id)
        _assert_same(by_request, direct)
        seen.add(by_request.status)
    assert seen == {200, 404}  # both answers were exercised


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    properties=st.dictionaries(st.text(st.characters(codec="utf-8"), min_size=1, max_size=20).filter(
        lambda key: key not in Image.__dataclass_fields__ and key not in ("self", "file", "schema")),
        st.text(st.characters(codec="utf-8"), max_size=40), max_size=4),
    tags=st.lists(st.text(st.characters(codec="utf-8"), min_size=1, max_size=20), max_size=3, unique=True),
    name=st.none() | st.text(st.characters(codec="utf-8"), max_size=30),
    visibility=st.sampled_from(VISIBILITIES),
    caller=st.sampled_from(sorted(CALLERS)),
)
def test_any_document_reads_the_same_both_ways(
    app: ImagesApp, properties: dict[str, str], tags: list[str], name: str | None, visibility: str, caller: str,
) -> None:
    image = _image("alice", visibility, "active", tags=tuple(tags), properties=properties)
    image_id = app.db.insert(image.evolve(name=name)).id
    by_request, direct = _both(app, CALLERS[caller], image_id)
    _assert_same(by_request, direct)
