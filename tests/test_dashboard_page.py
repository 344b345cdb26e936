"""GET /dashboard: one page, its own assets, a strict Content-Security-Policy."""

from __future__ import annotations

import re

import httpx

# Every URL the page names: src="…" and href="…".
_PAGE_URLS = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
_CONTENT_TYPES = {".js": ("text/javascript", "application/javascript"), ".css": ("text/css",)}


async def test_the_page_is_served_with_a_strict_policy(client: httpx.AsyncClient) -> None:
    response = await client.get("/dashboard")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = dict(
        part.strip().split(" ", 1)
        for part in response.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_the_page_and_its_assets_name_no_other_host(client: httpx.AsyncClient) -> None:
    html = (await client.get("/dashboard")).text
    urls = _PAGE_URLS.findall(html)
    assert {url.rsplit("/", 1)[-1] for url in urls} >= {"dashboard.js", "dashboard.css"}

    texts = {"/dashboard": html}
    for url in urls:
        if url.startswith("data:"):
            continue  # the empty favicon: no request at all
        # Relative, so the page also works behind a proxy that adds a path prefix.
        assert not url.startswith("/"), url
        asset = await client.get("/" + url)
        assert asset.status_code == 200, url
        suffix = url[url.rfind(".") :]
        assert asset.headers["content-type"].split(";")[0] in _CONTENT_TYPES[suffix], url
        texts[url] = asset.text

    for name, text in texts.items():
        # The only absolute URL allowed is the SVG namespace, which is a name, not a request.
        offsite = [
            u for u in re.findall(r"\w+://[^\s\"'`)]+", text) if "www.w3.org/2000/svg" not in u
        ]
        assert offsite == [], name
    # Nothing inline for the policy to have to allow.
    assert re.search(r"<script(?![^>]*\ssrc=)", html) is None
    assert " style=" not in html and "<style" not in html
    assert "innerHTML" not in texts["dashboard/static/dashboard.js"]
