"""The read fast path answers exactly as the routed handler would."""

from __future__ import annotations

import uuid

import httpx

from tests.builders import SEED_CAMPAIGN, assert_problem, create
from tests.conftest import Tenant


async def test_fast_and_routed_reads_agree(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    doc = await create(client, "/v1/campaigns", SEED_CAMPAIGN, admin)
    canonical = f"/v1/campaigns/{doc['id']}"
    # Not the canonical 36-character form, so the fast path leaves it to the router.
    routed = f"/v1/campaigns/{doc['id'].replace('-', '')}"

    fast, slow = await client.get(canonical, headers=admin), await client.get(routed, headers=admin)

    assert fast.status_code == slow.status_code == 200
    assert fast.json() == slow.json() == doc
    assert fast.headers["ETag"] == slow.headers["ETag"]
    assert fast.headers["content-type"] == slow.headers["content-type"]
    for url in (canonical, routed):
        again = await client.get(url, headers={**admin, "If-None-Match": fast.headers["ETag"]})
        assert again.status_code == 304


async def test_fast_path_refusals_are_the_usual_problems(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    doc = await create(client, "/v1/campaigns", SEED_CAMPAIGN, tenant.headers())
    url = f"/v1/campaigns/{doc['id']}"

    assert_problem(await client.get(url), 401, "UNAUTHORIZED")
    no_read = tenant.headers(permissions=["insert@campaigns"])
    assert "read@campaigns" in assert_problem(await client.get(url, headers=no_read), 403)["detail"]
    assert_problem(await client.get(url, headers=other_tenant.headers()), 404, "NOT_FOUND")
    missing = f"/v1/campaigns/{uuid.uuid4()}"
    assert_problem(await client.get(missing, headers=tenant.headers()), 404, "NOT_FOUND")
    assert_problem(await client.get("/v1/campaigns/not-a-uuid", headers=tenant.headers()), 400)
