"""Access rules as plain functions, and the listing SQL that must agree with them."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagecache.http.context import RequestContext
from imagecache.images import policy
from imagecache.images.db import ImageDB
from imagecache.images.listing import ListQuery
from imagecache.images.model import Image, new_id
from imagecache.images.policy import Download

NOW = datetime(2024, 1, 1, tzinfo=UTC)
ADMIN = RequestContext(project_id="p1", roles=("admin",))
PROJECTLESS_ADMIN = RequestContext(roles=("admin",))
P1 = RequestContext(project_id="p1", roles=("member",))
P2 = RequestContext(project_id="p2", roles=("member",))
ANONYMOUS = RequestContext()
CONTEXTS = (ADMIN, PROJECTLESS_ADMIN, P1, P2, ANONYMOUS)


def image(owner: str | None = "p1", visibility: str = "shared", status: str = "active") -> Image:
    return Image(id=new_id(), owner=owner, created_at=NOW, updated_at=NOW, visibility=visibility, status=status)


@pytest.mark.parametrize(
    ("context", "visibility", "owner", "visible"),
    [
        (P1, "private", "p1", True),
        (P1, "shared", "p1", True),
        (P2, "private", "p1", False),
        (P2, "shared", "p1", False),
        (P2, "public", "p1", True),
        (P2, "community", "p1", True),
        (ANONYMOUS, "private", None, False),
        (ANONYMOUS, "public", None, True),
        (P1, "private", None, False),
        (ADMIN, "private", "p2", True),
        (PROJECTLESS_ADMIN, "private", None, True),
    ],
)
def test_may_see(context: RequestContext, visibility: str, owner: str | None, visible: bool) -> None:
    assert policy.may_see(context, image(owner, visibility)) is visible


def test_download_verdicts() -> None:
    assert policy.download(P1, image()) is Download.ALLOWED
    assert policy.download(P2, image()) is Download.NOT_FOUND
    assert policy.download(P1, image(status="queued")) is Download.NO_DATA
    assert policy.download(P1, image(status="saving")) is Download.NO_DATA
    assert policy.download(P1, image(status="deactivated")) is Download.DEACTIVATED
    assert policy.download(ADMIN, image(status="deactivated")) is Download.ALLOWED
    assert policy.download(P2, image(status="deactivated")) is Download.NOT_FOUND


def test_modify_create_and_admin_actions() -> None:
    assert policy.may_modify(P1, image()) and policy.may_modify(ADMIN, image(owner="p9"))
    assert not policy.may_modify(P2, image(visibility="public"))
    assert not policy.may_modify(ANONYMOUS, image(owner=None, visibility="public"))
    assert policy.may_create(P1) and policy.may_create(PROJECTLESS_ADMIN) and not policy.may_create(ANONYMOUS)
    assert not policy.may_set_visibility(P1, "public") and policy.may_set_visibility(P1, "community")
    assert policy.may_set_visibility(ADMIN, "public")
    assert policy.may_set_owner(P1, "p1") and not policy.may_set_owner(P1, "p2")
    assert not policy.may_set_owner(ANONYMOUS, None) and policy.may_set_owner(ADMIN, "p2")
    assert policy.may_change_activation(ADMIN) and not policy.may_change_activation(P1)


images_strategy = st.lists(
    st.tuples(
        st.sampled_from(["p1", "p2", None]),
        st.sampled_from(["public", "private", "shared", "community"]),
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(
    specs=images_strategy,
    visibility=st.sampled_from([None, "public", "private", "shared", "community", "all"]),
)
def test_listing_sql_agrees_with_may_list(specs: list[tuple[str | None, str]], visibility: str | None) -> None:
    with tempfile.TemporaryDirectory() as directory:
        db = ImageDB(str(Path(directory) / "images.db"))
        stored = []
        for i, (owner, vis) in enumerate(specs):
            moment = NOW + timedelta(seconds=i)
            record = Image(id=new_id(), owner=owner, created_at=moment, updated_at=moment, visibility=vis)
            assert db.insert(record)
            stored.append(record)
        for context in CONTEXTS:
            listed, more = db.list(context, ListQuery(limit=100, visibility=visibility))
            expected = [r for r in reversed(stored) if policy.may_list(context, r, visibility)]
            assert [r.id for r in listed] == [r.id for r in expected]
            assert not more
        db.close()
