"""The organiser's dashboard: GET /dashboard, a page polis-api serves itself.

The page is three static files shipped in this package (``static/``): no build step,
no CDN, nothing fetched from another host, so it works on a laptop without a network.
In the browser it reads only the public REST API, with a token the organiser pastes;
the server adds no route of its own beyond the files (docs/dashboard.md).
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

PAGE = "/dashboard"
STATIC = "/dashboard/static"
ASSETS = resources.files(__package__) / "static"

# Only this server's own script, stylesheet and API: no inline script or style, no
# other host, no framing (https://www.w3.org/TR/CSP3/). The pasted token is as strong
# as its owner; a page that cannot run injected script cannot leak it.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    # A new version of polis-api brings a new page; the browser asks again each time.
    "Cache-Control": "no-cache",
}


def add_dashboard_routes(app: FastAPI) -> None:
    """Mount the page's assets and serve the page with its Content-Security-Policy."""
    app.mount(STATIC, StaticFiles(directory=str(ASSETS)), name="dashboard-static")
    page = (ASSETS / "index.html").read_text(encoding="utf-8")

    @app.get(PAGE, include_in_schema=False)
    async def dashboard() -> HTMLResponse:
        return HTMLResponse(page, headers=PAGE_HEADERS)
