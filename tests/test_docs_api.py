"""The docs a user reads: /docs and /redoc offline, the root pointer, OpenAPI spellings."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.builders import SEED_CAMPAIGN

DOOR = "/v1/campaigns/{campaignId}/contacts/{contactId}/households/{householdId}"
# Every URL a docs page loads: src="…", href="…", ReDoc's spec-url="…", Swagger's url: '…'.
_PAGE_URLS = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|\burl:\s*'([^']+)'""")
_CONTENT_TYPES = {
    ".js": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".png": ("image/png",),
    ".json": ("application/json",),
}


def _urls(html: str) -> list[str]:
    return [src or url for src, url in _PAGE_URLS.findall(html)]


async def _page(client: httpx.AsyncClient, path: str) -> str:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    return response.text


@pytest.mark.parametrize(
    ("path", "expected_assets"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}),
        ("/redoc", {"redoc.standalone.js", "favicon.png"}),
    ],
)
async def test_docs_pages_load_only_same_origin_assets(
    client: httpx.AsyncClient, path: str, expected_assets: set[str]
) -> None:
    html = await _page(client, path)
    urls = _urls(html)

    # Nothing off-site: no CDN, no web fonts, no absolute URL of any host.
    assert "://" not in html, [line for line in html.splitlines() if "://" in line]
    assert {url.rsplit("/", 1)[-1] for url in urls} >= expected_assets | {"openapi.json"}
    for url in urls:
        assert url.startswith("/"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rfind(".") :]
        assert asset.headers["content-type"].split(";")[0] in _CONTENT_TYPES[suffix], url
        assert len(asset.content) > 0, url


async def test_the_swagger_bundle_is_the_real_one(client: httpx.AsyncClient) -> None:
    swagger = await client.get("/docs/static/swagger-ui-bundle.js")
    redoc = await client.get("/docs/static/redoc.standalone.js")

    assert b"SwaggerUIBundle" in swagger.content
    assert b"Redoc" in redoc.content


async def test_a_missing_asset_is_a_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs/static/nothing-here.js")

    assert response.status_code == 404


async def test_the_root_sends_a_browser_to_the_docs(client: httpx.AsyncClient) -> None:
    response = await client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})

    assert response.status_code == 307
    assert response.headers["location"] == "/docs"


async def test_the_root_gives_a_script_the_links(client: httpx.AsyncClient) -> None:
    response = await client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "name": "polis-api",
        "docs": "/docs",
        "redoc": "/redoc",
        "openapi": "/openapi.json",
        "health": "/healthz",
    }
    for link in ("/docs", "/redoc", "/openapi.json", "/healthz"):
        assert (await client.get(link)).status_code == 200, link


# --- OpenAPI: both spellings of a door's path ---------------------------------------------


@pytest.fixture
async def openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    schema: dict[str, Any] = response.json()
    return schema


async def test_openapi_shows_both_spellings_of_a_door(openapi: dict[str, Any]) -> None:
    short, polis = openapi["paths"][DOOR], openapi["paths"][DOOR + "/status"]

    for method in ("get", "put", "patch"):
        assert method in short, method
        assert method in polis, method
        assert short[method]["operationId"] != polis[method]["operationId"]
        # The same operation: same parameters, bodies and answers.
        assert short[method]["responses"] == polis[method]["responses"]
        assert short[method].get("requestBody") == polis[method].get("requestBody")
        assert polis[method]["security"] == [{"bearer": []}]
    operation_ids = [
        operation["operationId"]
        for item in openapi["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    ]
    assert len(operation_ids) == len(set(operation_ids))


async def test_both_spellings_reach_the_same_door(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = (await client.post("/v1/campaigns", json=SEED_CAMPAIGN, headers=admin)).json()
    household = (
        await client.post("/v2/households", json={"data": {"unitNum": "1"}}, headers=admin)
    ).json()
    contact = "6b1f0c36-1d3e-4b7a-9a4e-0c2d8f1e5a77"
    pair = await client.put(f"/v2/contacts/{contact}/households/{household['id']}", headers=admin)
    assert pair.status_code == 201, pair.text
    door = f"/v1/campaigns/{campaign['id']}/contacts/{contact}/households/{household['id']}"

    put = await client.put(door + "/status", json={"data": {"type": "do-not-knock"}}, headers=admin)
    got = await client.get(door, headers=admin)

    assert put.status_code == 201, put.text
    assert got.json()["data"]["state"] == "not-contacted-do-not-knock"
    assert got.json()["id"] == put.json()["id"]


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_docs_pages_tell_the_browser_to_fetch_nothing_off_site(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)

    policy = response.headers["content-security-policy"]
    assert "img-src 'self' data:" in policy
    assert "connect-src 'self'" in policy


async def test_openapi_says_which_like_wildcards_work(openapi: dict[str, Any]) -> None:
    description = openapi["paths"]["/v1/campaigns"]["get"]["description"]

    assert "`*` is any run of characters and `?` one character" in description
    assert "`%` and `_` match only" in description
