"""The interactive API docs (/docs, /redoc) and the root pointer, served offline.

FastAPI's own pages fetch Swagger UI and ReDoc from a CDN, which fails on a laptop
without a network or behind a strict firewall. The ``fastapi-offline`` package ships
those bundles; they are served from ``/docs/static`` and the pages name only
same-origin URLs (https://fastapi.tiangolo.com/how-to/custom-docs-ui-assets/).
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from polis_api import jsoncodec
from polis_api.documents.responses import json_response

DOCS = "/docs"
REDOC = "/redoc"
STATIC = "/docs/static"
OPENAPI = "/openapi.json"
# The bundles inside the fastapi-offline wheel: swagger-ui-bundle.js, swagger-ui.css,
# redoc.standalone.js and favicon.png.
ASSETS = resources.files("fastapi_offline") / "static"
# What the pages may fetch besides their same-origin scripts: ReDoc's menu footer shows
# a logo from its maker's CDN (it hides itself when that fails); the browser is told
# not to ask, so reading the docs contacts no other host.
SAME_ORIGIN_ONLY = "img-src 'self' data:; font-src 'self' data:; connect-src 'self'"


def add_docs_routes(app: FastAPI) -> None:
    """Mount the bundled assets and add /docs, /redoc and the root pointer."""
    app.mount(STATIC, StaticFiles(directory=str(ASSETS)), name="docs-static")

    @app.get(DOCS, include_in_schema=False)
    async def swagger_ui(request: Request) -> Response:
        root = _root_path(request)
        page = get_swagger_ui_html(
            openapi_url=root + OPENAPI,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC}/favicon.png",
            # No OAuth2 flow here: a bearer token is pasted under "Authorize".
            oauth2_redirect_url=None,
        )
        return _same_origin_only(page)

    @app.get(REDOC, include_in_schema=False)
    async def redoc(request: Request) -> Response:
        root = _root_path(request)
        page = get_redoc_html(
            openapi_url=root + OPENAPI,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{STATIC}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC}/favicon.png",
            with_google_fonts=False,  # fonts from Google would be a request off-site
        )
        return _same_origin_only(page)

    @app.get("/", include_in_schema=False)
    async def root(request: Request) -> Response:
        # A browser lands on the docs; a script gets the same pointers as JSON.
        root_path = _root_path(request)
        if "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(root_path + DOCS, status_code=307)
        links = {
            "name": app.title,
            "docs": root_path + DOCS,
            "redoc": root_path + REDOC,
            "openapi": root_path + OPENAPI,
            "health": root_path + "/healthz",
        }
        return json_response(jsoncodec.dumps(links))


def _same_origin_only(page: Response) -> Response:
    page.headers["Content-Security-Policy"] = SAME_ORIGIN_ONLY
    return page


def _root_path(request: Request) -> str:
    # Behind a proxy that mounts the API under a prefix, links must carry it.
    return str(request.scope.get("root_path", "")).rstrip("/")
