"""Request parsing and change application, without HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from imagecache.http.context import RequestContext
from imagecache.images import parsing
from imagecache.images.listing import DEFAULT_LIMIT, MAX_LIMIT, ListQuery, parse_list_params
from imagecache.images.model import Image, new_id
from imagecache.images.refusals import Refusal
from imagecache.images.schemas import image_validator
from imagecache.images.views import v1_headers, versions_document

VALIDATOR = image_validator()
BASE = frozenset(VALIDATOR.schema["properties"])
NOW = datetime(2024, 1, 1, tzinfo=UTC)
LATER = datetime(2024, 1, 2, tzinfo=UTC)
OWNER = RequestContext(project_id="p", roles=("member",))
ADMIN = RequestContext(project_id="a", roles=("admin",))
V21 = "application/openstack-images-v2.1-json-patch"


def image(**fields: object) -> Image:
    values: dict[str, object] = {"id": new_id(), "owner": "p", "created_at": NOW, "updated_at": NOW}
    values.update(fields)
    return Image(**values)  # type: ignore[arg-type]


def changes(ops: object) -> list[parsing.Change]:
    parsed = parsing.parse_patch(V21, ops, VALIDATOR)
    assert all(isinstance(change, parsing.Change) for change in parsed), parsed
    return parsed


def test_parse_create_splits_attributes_tags_and_properties() -> None:
    parsed = parsing.parse_create(
        {"id": new_id().upper(), "name": "n", "tags": ["x", "x"], "min_ram": 2.0, "k": "v"}, VALIDATOR
    )
    assert isinstance(parsed, parsing.NewImage)
    assert parsed.id is not None and parsed.id == parsed.id.lower()
    assert parsed.attributes == {"name": "n", "min_ram": 2}
    assert isinstance(parsed.attributes["min_ram"], int)
    assert parsed.tags == ("x",)
    assert parsed.properties == {"k": "v"}


def test_pointer_escapes_are_decoded() -> None:
    (change,) = changes([{"op": "add", "path": "/a~1b~0c", "value": "v"}])
    assert change.name == "a/b~c"


def test_apply_changes_is_atomic_and_stamps_updated_at() -> None:
    original = image(properties={"k": "v"})
    replace_k = changes([{"op": "replace", "path": "/k", "value": "w"}])
    result = parsing.apply_changes(OWNER, original, replace_k, BASE, LATER)
    assert isinstance(result, Image)
    assert result.properties == {"k": "w"} and result.updated_at == LATER
    assert original.properties == {"k": "v"}
    same = parsing.apply_changes(OWNER, original, changes([{"op": "replace", "path": "/k", "value": "v"}]), BASE, LATER)
    assert same is original


def test_draft_4_add_of_existing_property_conflicts() -> None:
    draft_4 = "application/openstack-images-v2.0-json-patch"
    parsed = parsing.parse_patch(draft_4, [{"add": "/name", "value": "x"}], VALIDATOR)
    assert parsed == [parsing.Change("add", "name", "x", draft=4)]
    with pytest.raises(Refusal) as refused:
        parsing.apply_changes(OWNER, image(), parsed, BASE, LATER)
    assert refused.value.status == 409


@pytest.mark.parametrize(
    ("context", "ops", "status"),
    [
        (OWNER, [{"op": "replace", "path": "/visibility", "value": "public"}], 403),
        (OWNER, [{"op": "replace", "path": "/owner", "value": "q"}], 403),
        (ADMIN, [{"op": "replace", "path": "/visibility", "value": "public"}], None),
        (OWNER, [{"op": "replace", "path": "/min_ram", "value": 2**31}], 400),
    ],
)
def test_apply_change_policy(context: RequestContext, ops: object, status: int | None) -> None:
    if status is None:
        assert isinstance(parsing.apply_changes(context, image(), changes(ops), BASE, LATER), Image)
        return
    with pytest.raises(Refusal) as refused:
        parsing.apply_changes(context, image(), changes(ops), BASE, LATER)
    assert refused.value.status == status


def test_load_json() -> None:
    assert parsing.load_json(b'{"a": 1}') == {"a": 1}
    for bad in (b"", b"  ", b"{", b'"\\udc00"', b"[" * 100 + b"]" * 100):
        with pytest.raises(Refusal) as refused:
            parsing.load_json(bad)
        assert refused.value.status == 400


def test_list_params_defaults_and_caps() -> None:
    assert parse_list_params([]) == ListQuery()
    assert ListQuery().limit == DEFAULT_LIMIT
    query = parse_list_params([("limit", "5000"), ("sort_key", "name"), ("sort_key", "size"), ("sort_dir", "asc")])
    assert isinstance(query, ListQuery)
    assert query.limit == MAX_LIMIT
    assert query.sort == (("name", "asc"), ("size", "asc"))
    query = parse_list_params(
        [("sort", "name:asc,size"), ("tag", "a"), ("tag", "b"), ("x", "1"), ("status", "in:active,queued")]
    )
    assert isinstance(query, ListQuery)
    assert query.sort == (("name", "asc"), ("size", "desc"))
    assert query.tags == ("a", "b")
    assert query.properties == {"x": "1"}
    assert query.equals == {"status": ("active", "queued")}


def test_versions_document_links_to_the_host() -> None:
    document = versions_document("https://glance.example/prefix/")
    assert len(document["versions"]) == 19
    assert document["versions"][0] == {
        "id": "v2.18",
        "status": "CURRENT",
        "links": [{"rel": "self", "href": "https://glance.example/prefix/v2/"}],
    }


def test_v1_headers_are_latin1_safe() -> None:
    headers = dict(v1_headers(image(name="snow \u2603", properties={"ok": "1", "not ok": "2"})))
    assert headers["x-image-meta-name"].encode("latin-1").decode("utf-8") == "snow \u2603"
    assert headers["x-image-meta-property-ok"] == "1"
    assert "x-image-meta-property-not ok" not in headers
    assert "x-image-meta-size" not in headers
