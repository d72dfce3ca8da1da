"""Image data over HTTP: upload, download (whole and ranges), deactivation."""

from __future__ import annotations

import hashlib
import io
import os
import wsgiref.util
from pathlib import Path
from typing import Any

import pytest
import webob
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagecache.config import Settings
from imagecache.images import make_app
from tests.unit.images.conftest import ADMIN, ALICE, ANONYMOUS, BOB, Client

DATA = bytes(range(256)) * 4099 + b"tail"  # a little over 1 MiB: more than one chunk


# -- upload ------------------------------------------------------------------------------------


def test_upload_activates_with_size_and_checksums(client: Client) -> None:
    image = client.create()
    response = client.upload(image["id"], DATA)
    assert response.status_int == 204
    shown = client.show(image["id"]).json
    assert shown["status"] == "active"
    assert shown["size"] == len(DATA)
    assert shown["checksum"] == hashlib.md5(DATA).hexdigest()
    assert shown["os_hash_algo"] == "sha512"
    assert shown["os_hash_value"] == hashlib.sha512(DATA).hexdigest()
    assert Path(client.app.store.path(image["id"])).read_bytes() == DATA


@pytest.mark.parametrize("algorithm", ["sha256", "sha384", "sha512", "md5", "sha1"])
def test_multihash_follows_the_hashing_algorithm_setting(tmp_path: Path, algorithm: str) -> None:
    app = make_app(Settings(data_dir=str(tmp_path), hashing_algorithm=algorithm))
    client = Client(app)
    image = client.active_image(DATA)
    shown = client.show(image["id"]).json
    assert shown["os_hash_algo"] == algorithm
    assert shown["os_hash_value"] == hashlib.new(algorithm, DATA).hexdigest()
    assert shown["checksum"] == hashlib.md5(DATA).hexdigest()


def test_upload_without_content_length_reads_until_eof(client: Client) -> None:
    """python-glanceclient sends chunked bodies; the server hands them over de-chunked."""
    image = client.create()
    response = client.request(
        "PUT",
        f"/v2/images/{image['id']}/file",
        body=DATA,
        content_type="application/octet-stream",
        environ={"CONTENT_LENGTH": "", "HTTP_TRANSFER_ENCODING": "chunked"},
    )
    assert response.status_int == 204
    assert client.show(image["id"]).json["size"] == len(DATA)


def test_upload_with_no_content_length_header_at_all(client: Client) -> None:
    image = client.create()
    request = webob.Request.blank(f"/v2/images/{image['id']}/file", method="PUT")
    request.environ["wsgi.input"] = io.BytesIO(DATA)
    request.environ.pop("CONTENT_LENGTH", None)
    request.content_type = "application/octet-stream"
    from imagecache.http.context import set_context

    set_context(request.environ, ALICE)
    assert request.get_response(client.app).status_int == 204
    assert client.show(image["id"]).json["checksum"] == hashlib.md5(DATA).hexdigest()


def test_empty_upload_makes_an_empty_active_image(client: Client) -> None:
    image = client.active_image(b"")
    shown = client.show(image["id"]).json
    assert shown["status"] == "active" and shown["size"] == 0
    assert shown["checksum"] == hashlib.md5(b"").hexdigest()
    response = client.request("GET", f"/v2/images/{image['id']}/file")
    assert response.status_int == 200 and response.body == b"" and response.content_length == 0


def test_upload_twice_conflicts(client: Client) -> None:
    image = client.active_image()
    assert client.upload(image["id"], b"again").status_int == 409


def test_upload_needs_formats(client: Client) -> None:
    image = client.create(disk_format=None, container_format=None)
    response = client.upload(image["id"], b"x")
    assert response.status_int == 400
    assert "disk_format, container_format" in response.text
    assert client.show(image["id"]).json["status"] == "queued"


def test_upload_needs_octet_stream(client: Client) -> None:
    image = client.create()
    for content_type in ("application/json", None):
        response = client.request("PUT", f"/v2/images/{image['id']}/file", body=b"x", content_type=content_type or "")
        assert response.status_int == 415
    assert client.show(image["id"]).json["status"] == "queued"


def test_upload_permissions(client: Client) -> None:
    private = client.create(ALICE)["id"]
    public = client.create(ADMIN, visibility="public")["id"]
    assert client.upload(private, b"x", BOB).status_int == 404
    assert client.upload(public, b"x", BOB).status_int == 403
    assert client.upload(public, b"x", ANONYMOUS).status_int == 403
    assert client.upload(private, b"x", ADMIN).status_int == 204


def _put(
    client: Client, image_id: str, environ: dict[str, Any], headers: dict[str, str] | None = None
) -> webob.Response:
    environ = {**environ, "webob.is_body_seekable": False}  # our inputs are plain streams
    return client.request(
        "PUT",
        f"/v2/images/{image_id}/file",
        body=b"",
        content_type="application/octet-stream",
        environ=environ,
        headers=headers,
    )


class BrokenInput:
    """A wsgi.input whose client disconnects after some bytes."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        chunk = self._data.read(size)
        if not chunk:
            raise ConnectionResetError("client went away")
        return chunk


@pytest.mark.parametrize(
    ("environ", "headers"),
    [
        ({"wsgi.input": io.BytesIO(b"short"), "CONTENT_LENGTH": "100"}, None),
        ({"wsgi.input": BrokenInput(b"partial"), "CONTENT_LENGTH": ""}, None),
        ({"wsgi.input": io.BytesIO(b"x"), "CONTENT_LENGTH": "abc"}, None),
        ({"wsgi.input": io.BytesIO(b"xyz"), "CONTENT_LENGTH": "3"}, {"x-openstack-image-size": "4"}),
        ({"wsgi.input": io.BytesIO(b"xyz"), "CONTENT_LENGTH": "3"}, {"x-openstack-image-size": "three"}),
    ],
)
def test_failed_upload_goes_back_to_queued_and_leaves_no_file(
    client: Client, environ: dict[str, Any], headers: dict[str, str] | None
) -> None:
    image = client.create()
    response = _put(client, image["id"], environ, headers)
    assert response.status_int == 400, response.text
    shown = client.show(image["id"]).json
    assert shown["status"] == "queued" and shown["size"] is None
    assert os.listdir(client.app.store.root) == []
    assert client.upload(image["id"], b"retry").status_int == 204


def test_matching_image_size_header_is_accepted(client: Client) -> None:
    image = client.create()
    environ = {"wsgi.input": io.BytesIO(b"xyz"), "CONTENT_LENGTH": ""}
    response = _put(client, image["id"], environ, {"x-openstack-image-size": "3"})
    assert response.status_int == 204


def test_disk_full_is_413_and_image_stays_queued(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    image = client.create()

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(client.app.store, "write", full)
    assert client.upload(image["id"], b"x").status_int == 413
    assert client.show(image["id"]).json["status"] == "queued"


def test_image_deleted_during_upload_is_gone(client: Client) -> None:
    image = client.create()

    def chunks_then_delete() -> Any:
        yield b"first"
        assert client.request("DELETE", f"/v2/images/{image['id']}").status_int == 204
        yield b"second"

    class Input:
        def __init__(self) -> None:
            self._chunks = chunks_then_delete()

        def read(self, size: int = -1) -> bytes:
            return next(self._chunks, b"")

    response = _put(client, image["id"], {"wsgi.input": Input(), "CONTENT_LENGTH": ""})
    assert response.status_int == 410
    assert os.listdir(client.app.store.root) == []


# -- download -------------------------------------------------------------------------------


def test_download_whole_image(client: Client) -> None:
    image = client.active_image(DATA)
    response = client.request("GET", f"/v2/images/{image['id']}/file")
    assert response.status_int == 200
    assert response.content_type == "application/octet-stream"
    assert response.content_length == len(DATA)
    assert response.headers["Content-MD5"] == hashlib.md5(DATA).hexdigest()
    assert "Content-Range" not in response.headers
    assert response.body == DATA


def test_download_streams_in_one_mib_chunks(client: Client) -> None:
    image = client.active_image(DATA)
    request = webob.Request.blank(f"/v2/images/{image['id']}/file")
    from imagecache.http.context import set_context

    set_context(request.environ, ALICE)
    response = request.get_response(client.app)
    chunks = list(response.app_iter)
    response.app_iter.close()
    assert [len(c) for c in chunks] == [1 << 20, len(DATA) - (1 << 20)]


def test_download_uses_the_servers_file_wrapper(client: Client) -> None:
    image = client.active_image(DATA)
    wrapper = {"wsgi.file_wrapper": wsgiref.util.FileWrapper}
    response = client.request("GET", f"/v2/images/{image['id']}/file", environ=wrapper)
    assert response.body == DATA
    ranged = client.request(
        "GET",
        f"/v2/images/{image['id']}/file",
        headers={"Range": "bytes=10-19"},
        environ={"wsgi.file_wrapper": wsgiref.util.FileWrapper},
    )
    assert ranged.status_int == 206 and ranged.body == DATA[10:20]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-0", slice(0, 1)),
        ("bytes=100-1999999", slice(100, None)),
        ("bytes=-10", slice(-10, None)),
        ("bytes=1048570-1048580", slice(1048570, 1048581)),
        ("bytes=5-", slice(5, None)),
    ],
)
def test_download_range(client: Client, header: str, expected: slice) -> None:
    image = client.active_image(DATA)
    response = client.request("GET", f"/v2/images/{image['id']}/file", headers={"Range": header})
    assert response.status_int == 206
    part = DATA[expected]
    assert response.body == part
    assert response.content_length == len(part)
    start = expected.indices(len(DATA))[0]
    assert response.headers["Content-Range"] == f"bytes {start}-{start + len(part) - 1}/{len(DATA)}"
    assert "Content-MD5" not in response.headers


@pytest.mark.parametrize("header", [f"bytes={len(DATA)}-", "bytes=-0", f"bytes={len(DATA) + 5}-{len(DATA) + 9}"])
def test_download_unsatisfiable_range(client: Client, header: str) -> None:
    image = client.active_image(DATA)
    response = client.request("GET", f"/v2/images/{image['id']}/file", headers={"Range": header})
    assert response.status_int == 416
    assert response.headers["Content-Range"] == f"bytes */{len(DATA)}"


@pytest.mark.parametrize("header", ["bytes=5-1", "bytes=0-1,4-5", "lines=1-2", "garbage"])
def test_download_ignores_invalid_or_multiple_ranges(client: Client, header: str) -> None:
    image = client.active_image(b"0123456789")
    response = client.request("GET", f"/v2/images/{image['id']}/file", headers={"Range": header})
    assert response.status_int == 200 and response.body == b"0123456789"


def test_download_ignores_range_with_if_range(client: Client) -> None:
    image = client.active_image(b"0123456789")
    response = client.request(
        "GET", f"/v2/images/{image['id']}/file", headers={"Range": "bytes=1-2", "If-Range": '"abc"'}
    )
    assert response.status_int == 200 and response.body == b"0123456789"


def test_image_data_carries_the_checksum_as_a_strong_etag(client: Client) -> None:
    image = client.active_image(b"0123456789")
    etag = f'"{hashlib.md5(b"0123456789").hexdigest()}"'
    whole = client.request("GET", f"/v2/images/{image['id']}/file")
    part = client.request("GET", f"/v2/images/{image['id']}/file", headers={"Range": "bytes=1-2"})
    assert whole.headers["ETag"] == part.headers["ETag"] == etag
    assert "Last-Modified" not in whole.headers and "Last-Modified" not in part.headers


def test_download_honours_range_with_a_matching_if_range(client: Client) -> None:
    image = client.active_image(b"0123456789")
    etag = f'"{hashlib.md5(b"0123456789").hexdigest()}"'
    path = f"/v2/images/{image['id']}/file"
    matching = client.request("GET", path, headers={"Range": "bytes=1-2", "If-Range": etag})
    assert matching.status_int == 206 and matching.body == b"12"
    assert matching.headers["Content-Range"] == "bytes 1-2/10" and "Content-MD5" not in matching.headers
    unsatisfiable = client.request("GET", path, headers={"Range": "bytes=10-", "If-Range": etag})
    assert unsatisfiable.status_int == 416 and unsatisfiable.headers["Content-Range"] == "bytes */10"
    for other in (f"W/{etag}", "Sat, 29 Oct 1994 19:43:31 GMT"):  # weak tags and dates never match
        ignored = client.request("GET", path, headers={"Range": "bytes=1-2", "If-Range": other})
        assert ignored.status_int == 200 and ignored.body == b"0123456789"
        assert ignored.headers["Content-MD5"] == hashlib.md5(b"0123456789").hexdigest()


def test_legacy_download_follows_the_same_range_rule(client: Client) -> None:
    image = client.active_image(b"0123456789")
    etag = f'"{hashlib.md5(b"0123456789").hexdigest()}"'
    part = client.request("GET", f"/v1/images/{image['id']}", headers={"Range": "bytes=-3"})
    assert part.status_int == 206 and part.body == b"789" and part.headers["Content-Range"] == "bytes 7-9/10"
    assert part.headers["ETag"] == etag and part.headers["x-image-meta-id"] == image["id"]
    whole = client.request("GET", f"/v1/images/{image['id']}", headers={"Range": "bytes=-3", "If-Range": '"x"'})
    assert whole.status_int == 200 and whole.body == b"0123456789" and whole.headers["ETag"] == etag


def test_range_on_empty_image_is_unsatisfiable(client: Client) -> None:
    image = client.active_image(b"")
    response = client.request("GET", f"/v2/images/{image['id']}/file", headers={"Range": "bytes=0-"})
    assert response.status_int == 416
    assert response.headers["Content-Range"] == "bytes */0"


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(first=st.integers(0, 300), length=st.integers(0, 300), form=st.sampled_from(["closed", "open", "suffix"]))
def test_ranges_match_slicing(client: Client, first: int, length: int, form: str) -> None:
    data = bytes(range(200))
    if not hasattr(client, "_range_image"):
        client._range_image = client.active_image(data)["id"]  # type: ignore[attr-defined]
    image_id = client._range_image  # type: ignore[attr-defined]
    forms = {"closed": f"bytes={first}-{first + length}", "open": f"bytes={first}-", "suffix": f"bytes=-{length}"}
    header = forms[form]
    response = client.request("GET", f"/v2/images/{image_id}/file", headers={"Range": header})
    if form == "suffix":
        expected = data[-length:] if length else None
    else:
        expected = data[first : first + length + 1] if form == "closed" else data[first:]
        expected = expected if first < len(data) else None
    if expected is None:
        assert response.status_int == 416
    else:
        assert response.status_int == 206
        assert response.body == expected


def test_queued_image_download_is_204(client: Client) -> None:
    image = client.create()
    response = client.request("GET", f"/v2/images/{image['id']}/file")
    assert response.status_int == 204 and response.body == b""


def test_active_image_without_file_is_204(client: Client) -> None:
    image = client.active_image()
    os.unlink(client.app.store.path(image["id"]))
    assert client.request("GET", f"/v2/images/{image['id']}/file").status_int == 204


def test_private_image_of_another_project_is_not_found(client: Client) -> None:
    image = client.active_image(context=ALICE, visibility="private")
    for caller in (BOB, ANONYMOUS):
        assert client.show(image["id"], caller).status_int == 404
        assert client.request("GET", f"/v2/images/{image['id']}/file", caller).status_int == 404
        ranged = client.request("GET", f"/v2/images/{image['id']}/file", caller, headers={"Range": "bytes=0-1"})
        assert ranged.status_int == 404
    assert client.request("GET", f"/v2/images/{image['id']}/file", ADMIN).status_int == 200


def test_public_and_community_images_download_for_everyone(client: Client) -> None:
    public = client.active_image(DATA, ADMIN, visibility="public")["id"]
    community = client.active_image(DATA, ALICE, visibility="community")["id"]
    for image_id in (public, community):
        for caller in (ALICE, BOB, ANONYMOUS, ADMIN):
            assert client.request("GET", f"/v2/images/{image_id}/file", caller).body == DATA


def test_download_keeps_streaming_an_image_deleted_meanwhile(client: Client) -> None:
    image = client.active_image(DATA)
    request = webob.Request.blank(f"/v2/images/{image['id']}/file")
    from imagecache.http.context import set_context

    set_context(request.environ, ALICE)
    response = request.get_response(client.app)
    assert client.request("DELETE", f"/v2/images/{image['id']}").status_int == 204
    assert b"".join(response.app_iter) == DATA
    response.app_iter.close()


# -- deactivate / reactivate ----------------------------------------------------------------


def _action(client: Client, image_id: str, action: str, context: Any = ADMIN) -> int:
    return client.request("POST", f"/v2/images/{image_id}/actions/{action}", context).status_int


def test_deactivate_and_reactivate(client: Client) -> None:
    image = client.active_image(DATA, ALICE, visibility="community")
    image_id = image["id"]
    assert _action(client, image_id, "deactivate") == 204
    assert client.show(image_id).json["status"] == "deactivated"
    assert _action(client, image_id, "deactivate") == 204  # no-op
    for caller in (ALICE, BOB, ANONYMOUS):
        assert client.request("GET", f"/v2/images/{image_id}/file", caller).status_int == 403
        assert client.request("GET", f"/v1/images/{image_id}", caller).status_int == 403
        assert client.show(image_id, caller).status_int == 200  # metadata stays visible
    assert client.request("GET", f"/v2/images/{image_id}/file", ADMIN).body == DATA
    assert client.request("GET", f"/v1/images/{image_id}", ADMIN).body == DATA
    assert image_id in [i["id"] for i in client.request("GET", "/v2/images", ALICE).json["images"]]

    assert _action(client, image_id, "reactivate") == 204
    assert _action(client, image_id, "reactivate") == 204  # no-op
    assert client.show(image_id).json["status"] == "active"
    assert client.request("GET", f"/v2/images/{image_id}/file", BOB).body == DATA


def test_activation_actions_are_for_admins(client: Client) -> None:
    image_id = client.active_image(context=ALICE)["id"]
    assert _action(client, image_id, "deactivate", ALICE) == 403
    assert _action(client, image_id, "deactivate", ANONYMOUS) == 404
    assert _action(client, image_id, "deactivate", BOB) == 404
    assert client.show(image_id).json["status"] == "active"


def test_activation_actions_need_active_or_deactivated(client: Client) -> None:
    image_id = client.create()["id"]
    assert _action(client, image_id, "deactivate") == 403
    assert _action(client, image_id, "reactivate") == 403
    assert client.show(image_id).json["status"] == "queued"


def test_activation_on_malformed_or_missing_ids(client: Client) -> None:
    assert _action(client, "nope", "deactivate") == 404
    zero_id = "0" * 8 + "-0000-0000-0000-" + "0" * 12
    assert client.request("GET", f"/v2/images/{zero_id}/actions/deactivate", ADMIN).status_int == 405
