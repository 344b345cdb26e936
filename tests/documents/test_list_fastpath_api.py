"""GET {prefix} through the fast path, and the parsed lists it keeps.

The fast path (documents/fastpath.py) answers a resource's list before the router,
and the list's parse is kept by its query string (listing.RecentLists): what is
kept must be the request, never its rows, its caller or its representation.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Match

from polis_api.resources.registry import RESOURCES
from tests.builders import assert_problem, campaign, create
from tests.conftest import Tenant
from tests.test_metrics import sample, scrape

CAMPAIGNS = "/v1/campaigns"


def _names(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["data"]["name"] for item in response.json()["data"]]


@pytest.mark.parametrize(
    ("method", "route", "generic"),
    [("GET", "list", "list_documents"), ("POST", "create", "create")],
)
def test_the_fast_path_answers_only_what_the_generic_routes_own(
    app: FastAPI, method: str, route: str, generic: str
) -> None:
    # A resource's own list or create on its prefix, registered before the generic
    # one, would otherwise be shadowed by the fast path and never run.
    served = [resource for resource in RESOURCES if route in resource.routes]
    assert served
    for resource in served:
        scope = {"type": "http", "method": method, "path": resource.prefix, "root_path": ""}
        first = next(r for r in app.router.routes if r.matches(scope)[0] is Match.FULL)
        endpoint = getattr(first, "endpoint", None)
        assert endpoint is not None, resource.name
        assert (endpoint.__module__, endpoint.__name__) == (
            "polis_api.documents.router",
            generic,
        ), resource.name


async def test_the_same_list_again_shows_what_changed_since(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    params = {"filter": '/data/name like "Kept*"', "sort": "/data/name"}
    assert _names(await client.get(CAMPAIGNS, params=params, headers=admin)) == []

    await create(client, CAMPAIGNS, campaign(name="Kept B"), admin)
    assert _names(await client.get(CAMPAIGNS, params=params, headers=admin)) == ["Kept B"]
    await create(client, CAMPAIGNS, campaign(name="Kept A"), admin)
    assert _names(await client.get(CAMPAIGNS, params=params, headers=admin)) == [
        "Kept A",
        "Kept B",
    ]


async def test_the_same_query_string_lists_each_tenants_own_documents(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    await create(client, CAMPAIGNS, campaign(name="Mine"), tenant.headers())
    await create(client, CAMPAIGNS, campaign(name="Theirs"), other_tenant.headers())
    url = f"{CAMPAIGNS}?limit=10"

    assert _names(await client.get(url, headers=tenant.headers())) == ["Mine"]
    assert _names(await client.get(url, headers=other_tenant.headers())) == ["Theirs"]
    assert _names(await client.get(url, headers=tenant.headers())) == ["Mine"]


async def test_a_bad_list_is_refused_every_time_it_is_asked(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for _ in range(2):
        assert (
            "limt"
            in assert_problem(await client.get(f"{CAMPAIGNS}?limt=5", headers=admin), 400)["detail"]
        )
        assert_problem(await client.get(f"{CAMPAIGNS}?filter=/data/name eq", headers=admin), 400)
    assert_problem(await client.get(CAMPAIGNS), 401, "UNAUTHORIZED")


async def test_a_list_without_the_read_permission_is_forbidden(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = tenant.headers(permissions=["insert@campaigns"])
    problem = assert_problem(await client.get(CAMPAIGNS, headers=headers), 403)
    assert "read@campaigns" in problem["detail"]


async def test_the_same_query_string_answers_in_each_accepted_representation(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await create(client, CAMPAIGNS, campaign(name="Shown"), admin)
    url = f"{CAMPAIGNS}?limit=1"

    as_json = await client.get(url, headers=admin)
    as_csv = await client.get(url, headers={**admin, "Accept": "text/csv"})
    again = await client.get(url, headers=admin)

    assert as_json.headers["content-type"] == "application/json"
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.text.splitlines()[0].startswith('"id",')
    assert "Shown" in as_csv.text
    assert again.json() == as_json.json()
    refused = await client.get(url, headers={**admin, "Accept": "image/png"})
    assert_problem(refused, 406, "NOT_ACCEPTABLE")


async def test_a_full_page_continues_after_its_token_on_the_fast_path(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for name in ("Page 1", "Page 2", "Page 3"):
        await create(client, CAMPAIGNS, campaign(name=name), admin)
    params: dict[str, str | int] = {
        "filter": '/data/name like "Page*"',
        "sort": "/data/name",
        "limit": 2,
    }

    first = await client.get(CAMPAIGNS, params=params, headers=admin)
    token = first.json()["meta"]["next"]
    second = await client.get(CAMPAIGNS, params={**params, "after": token}, headers=admin)

    assert _names(first) == ["Page 1", "Page 2"]
    assert _names(second) == ["Page 3"]
    other = {**params, "sort": "/data/description", "after": token}
    assert_problem(await client.get(CAMPAIGNS, params=other, headers=admin), 400)


async def test_lists_are_counted_under_their_route_with_a_request_id(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    labels = {"route": CAMPAIGNS, "method": "GET"}
    before = await scrape(client)

    ok = await client.get(CAMPAIGNS, headers={**admin, "X-Request-Id": "list-1"})
    bad = await client.get(f"{CAMPAIGNS}?skip=-1", headers=admin)

    after = await scrape(client)
    assert ok.status_code == 200 and ok.headers["X-Request-Id"] == "list-1"
    assert assert_problem(bad, 400)["instance"] == bad.headers["X-Request-Id"]
    name = "polis_http_requests_total"
    for status in ("200", "400"):
        assert (
            sample(after, name, **labels, status=status)
            - sample(before, name, **labels, status=status)
            == 1
        )
