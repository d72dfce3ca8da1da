"""The OpenAPI document and the route tables in the code describe the same routes.

The node is built as ``imagecache serve`` builds it (:func:`imagecache.server.build_node`),
embedded and in edge mode, with the peer endpoint mounted; its layers are
walked from the outside in and each one that owns routes is asked for its
table.  Every (path, method) served must be documented, and (embedded) every
documented one served; a failure names each route missing and where.
Placeholder names may differ (``{id}`` in the code is ``{image_id}`` in the
document): only their places count.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from imagecache.config import Settings
from imagecache.images import ImagesApp
from imagecache.openapi import load_document
from imagecache.openapi.document import DOCUMENT_NAME, document_text
from imagecache.origin import open_image_service
from imagecache.peers import protocol
from imagecache.peers.endpoint import METHODS as PEER_METHODS
from imagecache.peers.endpoint import PeerEndpoint
from imagecache.server import Router, build_node
from imagecache.upstream import UpstreamApp
from imagecache.wsgi import cache_routes
from imagecache.wsgi.auth import AuthMiddleware
from imagecache.wsgi.cache_filter import CacheFilter
from imagecache.wsgi.cache_manage import CacheManageFilter
from imagecache.wsgi.request_metrics import RequestMetrics
from imagecache.wsgi.versions import CacheVersions

ROOT = Path(__file__).resolve().parents[2]
DOCS_COPY = ROOT / "docs" / "openapi.yaml"
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

#: (path template with placeholders as ``{}``, METHOD) -> where it comes from.
Routes = dict[tuple[str, str], str]
#: Layers that answer no route of their own: they act on routes the layers behind them own
#: (authentication, caching the image data, the upstream's versions).
PASS_THROUGH = (AuthMiddleware, CacheFilter, CacheVersions, RequestMetrics, UpstreamApp)


def normalized(template: str) -> str:
    return re.sub(r"\{[^}/]*\}", "{}", template)


def layers(app: Any) -> Iterator[Any]:
    """The pipeline's layers, outermost first (a Router's default is the next layer)."""
    while app is not None:
        yield app
        app = app.default if isinstance(app, Router) else getattr(app, "app", None)


def served_by(app: Any) -> Routes:
    """Every route the layers of ``app`` answer themselves, with the table it is in."""
    routes: Routes = {}

    def add(template: str, methods: Any, source: str) -> None:
        for method in methods:
            routes[(normalized(template), method)] = f"{template} in {source}"

    for layer in layers(app):
        if isinstance(layer, Router):
            for path, route_app in layer.routes.items():
                add(path, route_app.METHODS, f"server.py build_node's Router ({type(route_app).__name__})")
        elif isinstance(layer, PeerEndpoint):
            add(protocol.PATH_TEMPLATE, PEER_METHODS, "peers/endpoint.py")
        elif isinstance(layer, CacheManageFilter):
            for template, methods in cache_routes.TABLE:
                add(template, methods, "wsgi/cache_routes.py TABLE")
        elif isinstance(layer, ImagesApp):
            for template, methods in layer.routes.rows():
                add(template, methods, "images/app.py ImagesApp routes")
        else:
            assert isinstance(layer, PASS_THROUGH), (
                f"a new layer in the pipeline, {type(layer).__name__}: add the routes it answers to served_by "
                "(or, if it answers none, to PASS_THROUGH)")
    return routes


def documented(document: Mapping[str, Any]) -> Routes:
    return {
        (normalized(path), method.upper()): path
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def undocumented(served: Routes, document: Routes) -> list[str]:
    return [
        f"{method} {normalized_path} is served ({source}) but docs/openapi.yaml has no "
        f"'{method.lower()}' operation for it under paths"
        for (normalized_path, method), source in sorted(served.items())
        if (normalized_path, method) not in document
    ]


def unserved(served: Routes, document: Routes) -> list[str]:
    return [
        f"docs/openapi.yaml documents {method} {path}, which no route table of the node serves"
        for (normalized_path, method), path in sorted(document.items())
        if (normalized_path, method) not in served
    ]


def node_routes(tmp_path: Path, **options: Any) -> Routes:
    settings = Settings(data_dir=str(tmp_path / "data"), peer_token="peer-secret", **options)
    inner, close = open_image_service(settings)
    try:
        node = build_node(settings, app=inner)
        try:
            return served_by(node.app)
        finally:
            node.cache.close()
    finally:
        close()


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return load_document()


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_docs_openapi_yaml_is_the_packaged_document() -> None:
    """``docs/openapi.yaml`` is a link to the package's file; should it become a copy, it must stay identical."""
    assert DOCS_COPY.read_text(encoding="utf-8") == document_text(), (
        f"docs/openapi.yaml differs from src/imagecache/openapi/{DOCUMENT_NAME}: make it a link to that file again"
    )


def test_every_route_the_embedded_node_serves_is_documented_and_nothing_else(
    tmp_path: Path, document: dict[str, Any]
) -> None:
    served = node_routes(tmp_path)
    assert len(served) > 40  # the walk found every layer's table
    problems = undocumented(served, documented(document)) + unserved(served, documented(document))
    assert not problems, "the route tables and docs/openapi.yaml disagree:\n" + "\n".join(problems)


def test_every_route_an_edge_node_serves_itself_is_documented(tmp_path: Path, document: dict[str, Any]) -> None:
    """In edge mode the image service's routes are the upstream's; the node's own are the same tables."""
    served = node_routes(tmp_path, upstream_url="http://127.0.0.1:9")
    assert ("/v2/cache", "GET") in served and ("/v2/images", "GET") not in served
    problems = undocumented(served, documented(document))
    assert not problems, "routes an edge node serves are missing from docs/openapi.yaml:\n" + "\n".join(problems)


def test_removing_any_operation_from_the_document_is_caught(tmp_path: Path, document: dict[str, Any]) -> None:
    """The check itself: drop each documented operation in turn, and exactly that one is reported."""
    served = node_routes(tmp_path)
    for path, item in document["paths"].items():
        for method in [m for m in item if m in HTTP_METHODS]:
            shrunk = {**document, "paths": {**document["paths"], path: {k: v for k, v in item.items() if k != method}}}
            problems = undocumented(served, documented(shrunk))
            assert len(problems) == 1 and problems[0].startswith(f"{method.upper()} {normalized(path)} is served ("), (
                path, method, problems)


def test_a_new_route_in_a_table_is_reported_with_its_table(document: dict[str, Any]) -> None:
    """What the failure says when a route is added to the code but not to the document."""
    served = {("/v2/cache/pins/{}", "PUT"): "/v2/cache/pins/{id} in wsgi/cache_routes.py TABLE"}
    assert undocumented(served, documented(document)) == [
        "PUT /v2/cache/pins/{} is served (/v2/cache/pins/{id} in wsgi/cache_routes.py TABLE) "
        "but docs/openapi.yaml has no 'put' operation for it under paths"
    ]


def test_every_operation_that_needs_a_token_documents_its_401(document: dict[str, Any]) -> None:
    default = document["security"]
    missing = [
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS and operation.get("security", default) and "401" not in operation["responses"]
    ]
    assert not missing, f"operations behind a token without a documented 401: {missing}"


def test_every_cache_management_operation_documents_403_and_500(document: dict[str, Any]) -> None:
    missing = [
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS and set(operation.get("tags", ())) & {"cache", "cache-legacy"}
        and not {"403", "500"} <= set(operation["responses"])
    ]
    assert not missing, f"cache operations without their 403 (admins only) or 500 (the cache failed): {missing}"
