"""Our filters in a paste.deploy pipeline, as Glance's glance-api-paste.ini builds one."""

from __future__ import annotations

import hashlib
import json
import os

from paste.deploy import loadapp
from webob import Request

from imagecache.http.context import RequestContext, set_context
from tests.support.waiting import wait_until

INI = """\
[pipeline:main]
pipeline = cache cachemanage images

[filter:cache]
paste.filter_factory = imagecache.wsgi.cache_filter:filter_factory
image_cache_dir = {cache_dir}
image_cache_max_size = 1073741824
image_cache_min_free = 0

[filter:cachemanage]
paste.filter_factory = imagecache.wsgi.cache_manage:filter_factory
image_cache_dir = {cache_dir}
image_cache_min_free = 0

[app:images]
paste.app_factory = imagecache.images:app_factory
data_dir = {data_dir}
"""


def call(app, method: str, path: str, body: bytes | None = None, content_type: str | None = None):
    request = Request.blank(path, method=method)
    # No auth middleware in this pipeline: the context an auth filter would set.
    set_context(request.environ, RequestContext.admin(project_id="p1"))
    if body is not None:
        request.body = body
    if content_type:
        request.content_type = content_type
    return request.get_response(app)


def cached_in_pipeline(tmp_path):
    """A pipeline loaded from an ini file, with one image downloaded (so cached) through it."""
    ini = tmp_path / "api-paste.ini"
    cache_dir = tmp_path / "cache"
    ini.write_text(INI.format(cache_dir=cache_dir, data_dir=tmp_path / "data"))
    app = loadapp(f"config:{ini}")
    fields = {"name": "p", "disk_format": "raw", "container_format": "bare"}
    made = call(app, "POST", "/v2/images", json.dumps(fields).encode(), "application/json")
    assert made.status_int == 201
    image_id = made.json["id"]
    data = os.urandom(100_000)
    assert call(app, "PUT", f"/v2/images/{image_id}/file", data, "application/octet-stream").status_int == 204
    first = call(app, "GET", f"/v2/images/{image_id}/file")
    assert first.body == data and first.headers["Content-MD5"] == hashlib.md5(data).hexdigest()  # read: the fill runs
    assert (cache_dir / image_id).read_bytes() == data
    return app, cache_dir, image_id, data


def test_a_paste_pipeline_caches_downloads(tmp_path):
    app, _, image_id, data = cached_in_pipeline(tmp_path)
    assert call(app, "GET", f"/v2/images/{image_id}/file").body == data

    def counted() -> list[tuple[str, int]]:
        return [(e["image_id"], e["hits"]) for e in call(app, "GET", "/v2/cache").json["cached_images"]]

    # Each paste filter opens a cache of its own: the filter's flusher writes the hit within its interval.
    wait_until(lambda: counted() == [(image_id, 1)], "the hit in the listing", describe=counted)


def test_a_cached_image_deleted_behind_the_cache_is_evicted_on_next_request(tmp_path):
    app, cache_dir, image_id, _ = cached_in_pipeline(tmp_path)
    images_app = app.app.app  # cache -> cachemanage -> images: delete without the filter seeing it
    assert call(images_app, "DELETE", f"/v2/images/{image_id}").status_int == 204
    assert call(app, "GET", f"/v2/images/{image_id}/file").status_int == 404  # answered as the app answers
    assert not (cache_dir / image_id).exists()


def test_a_callers_404_does_not_evict_another_projects_image(tmp_path):
    app, cache_dir, image_id, _ = cached_in_pipeline(tmp_path)
    stranger = Request.blank(f"/v2/images/{image_id}/file")
    set_context(stranger.environ, RequestContext(project_id="p2", roles=("member",)))
    assert stranger.get_response(app).status_int == 404
    assert (cache_dir / image_id).exists()
