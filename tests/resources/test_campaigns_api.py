"""Campaigns through HTTP, replaying seed 000."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx

from polis_api.resources.campaigns import DEFAULT_FIELDS
from tests.builders import (
    ETAG,
    SEED_CAMPAIGN,
    TIMESTAMP,
    assert_problem,
    campaign,
    create,
    if_match,
)
from tests.conftest import Tenant

SEED_PATCH = {
    "data": [
        {"op": "replace", "path": "/name", "value": "My Campaign Changed"},
        {"op": "replace", "path": "/description", "value": "My Campaign Description"},
        {
            "op": "replace",
            "path": "/lists",
            "value": [{"listId": "ea19c3ab-3526-4709-b027-3e3c1d1851b2"}],
        },
    ]
}


async def test_seed_create_fills_default_fields_and_envelope(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    response = await client.post("/v1/campaigns", json=SEED_CAMPAIGN, headers=admin)

    assert response.status_code == 201
    doc = response.json()
    assert doc["data"] == {**SEED_CAMPAIGN["data"], "fields": DEFAULT_FIELDS, "lists": []}
    assert doc["customerId"] == str(tenant.customer_id)
    assert doc["securityGroupId"] == str(tenant.customer_id)
    meta = doc["meta"]
    assert meta["resource"] == "campaigns"
    assert meta["createdBy"] == meta["modifiedBy"] == str(tenant.user_id)
    assert meta["isDeleted"] is False
    assert TIMESTAMP.match(meta["created"]) and meta["created"] == meta["modified"]
    assert ETAG.match(meta["etag"])
    assert response.headers["ETag"] == f'"{meta["etag"]}"'


async def test_retrieve_returns_the_created_document(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await create(client, "/v1/campaigns", SEED_CAMPAIGN, admin)

    response = await client.get(f"/v1/campaigns/{created['id']}", headers=admin)

    assert response.status_code == 200
    assert response.json() == created
    assert response.headers["ETag"] == f'"{created["meta"]["etag"]}"'


async def test_seed_patch_with_polis_etag_header(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await create(client, "/v1/campaigns", SEED_CAMPAIGN, admin)

    response = await client.patch(
        f"/v1/campaigns/{created['id']}",
        json=SEED_PATCH,
        headers={**admin, "ETag": created["meta"]["etag"]},
    )

    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["data"]["name"] == "My Campaign Changed"
    assert patched["data"]["lists"] == [{"listId": "ea19c3ab-3526-4709-b027-3e3c1d1851b2"}]
    assert patched["data"]["fields"] == DEFAULT_FIELDS
    assert patched["meta"]["etag"] != created["meta"]["etag"]
    assert patched["meta"]["created"] == created["meta"]["created"]
    assert patched["meta"]["modified"] >= created["meta"]["modified"]


async def test_seed_list_url_filters_and_sorts(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    org = "eb4dfe83-f1fd-46dd-a69d-b7cf7b566319"
    for name, status in [("Second Campaign", "complete"), ("First Campaign", "complete")]:
        await create(client, "/v1/campaigns", campaign(name=name, status=status), admin)
    await create(client, "/v1/campaigns", campaign(name="Running", status="started"), admin)
    await create(
        client,
        "/v1/campaigns",
        campaign(name="Other org", status="complete", organizationId=str(ORG_B)),
        admin,
    )
    # The seed's own URL, percent-encoding and all.
    query = (
        "filter=%2Fdata%2ForganizationId%20eq%20%22eb4dfe83-f1fd-46dd-a69d-b7cf7b566319%22"
        "%20and%20%2Fdata%2Fstatus%20eq%20%22complete%22&limit=10&skip=0"
        "&sort=%5B%22data%2Fname%22%2C%22ASC%22%5D"
    )

    response = await client.get(f"/v1/campaigns?{query}", headers=admin)

    assert response.status_code == 200, response.text
    body = response.json()
    assert [d["data"]["name"] for d in body["data"]] == ["First Campaign", "Second Campaign"]
    assert all(d["data"]["organizationId"] == org for d in body["data"])
    assert body["meta"] == {}


ORG_B = "118d0436-4243-4810-94e9-13713fdfa31c"


async def test_ended_follows_status(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    doc = await create(client, "/v1/campaigns", campaign(status="started"), admin)
    assert "ended" not in doc["data"]

    completed = await _set_status(client, admin, doc, "complete")
    assert TIMESTAMP.match(completed["data"]["ended"])

    renamed = await _patch(
        client, admin, completed, [{"op": "replace", "path": "/name", "value": "x"}]
    )
    assert renamed["data"]["ended"] == completed["data"]["ended"], "ended stays while complete"

    reopened = await _set_status(client, admin, renamed, "started")
    assert "ended" not in reopened["data"]

    born_complete = await create(client, "/v1/campaigns", campaign(status="complete"), admin)
    assert TIMESTAMP.match(born_complete["data"]["ended"])


async def test_client_cannot_set_ended(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    doc = await create(
        client, "/v1/campaigns", campaign(status="started", ended="2001-01-01T00:00:00.000Z"), admin
    )
    assert "ended" not in doc["data"]


async def test_delete_is_soft_and_hides_the_document(
    client: httpx.AsyncClient, admin: dict[str, str], app: object
) -> None:
    doc = await create(client, "/v1/campaigns", SEED_CAMPAIGN, admin)

    response = await client.delete(f"/v1/campaigns/{doc['id']}", headers={**admin, **if_match(doc)})

    assert response.status_code == 204
    assert (await client.get(f"/v1/campaigns/{doc['id']}", headers=admin)).status_code == 404
    by_id = urlencode({"filter": '/id eq "' + str(doc["id"]) + '"'})
    listed = await client.get(f"/v1/campaigns?{by_id}", headers=admin)
    assert listed.json()["data"] == []
    async with app.state.pool.acquire() as conn:  # type: ignore[attr-defined]
        row = await conn.fetchrow("SELECT is_deleted FROM campaigns WHERE id = $1", doc["id"])
    assert row is not None and row["is_deleted"] is True, "the row stays in the database"


async def test_invalid_campaigns_are_400_naming_the_field(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    cases = [
        (campaign(name=""), "/data/name"),
        (campaign(name="   "), "/data/name"),
        (campaign(status="archived"), "/data/status"),
        (campaign(organizationId="not-a-uuid"), "/data/organizationId"),
        (
            campaign(lists=[{"listId": "ffd8bd17-eafc-45ec-a975-23ecda1fa2e6", "type": "vip"}]),
            "/data/lists/0/type",
        ),
        (campaign(fields=[[{"type": "field"}]]), "/data/fields/0/0/field/path"),
        (campaign(colour="red"), "/data/colour"),
        ({"data": {"name": "No status"}}, "/data/status"),
        ({}, "/data"),
    ]
    for body, path in cases:
        response = await client.post("/v1/campaigns", json=body, headers=admin)
        problem = assert_problem(response, 400, "VALIDATION_ERROR")
        assert path in [e["path"] for e in problem["errors"]], (body, problem)


async def test_patch_that_breaks_validation_writes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    doc = await create(client, "/v1/campaigns", SEED_CAMPAIGN, admin)

    bad = await client.patch(
        f"/v1/campaigns/{doc['id']}",
        json={"data": [{"op": "replace", "path": "/status", "value": "archived"}]},
        headers={**admin, **if_match(doc)},
    )

    problem = assert_problem(bad, 400, "VALIDATION_ERROR")
    assert problem["errors"][0]["path"] == "/data/status"
    after = await client.get(f"/v1/campaigns/{doc['id']}", headers=admin)
    assert after.json() == doc


async def _patch(
    client: httpx.AsyncClient, admin: dict[str, str], doc: dict[str, object], ops: list[object]
) -> dict[str, object]:
    response = await client.patch(
        f"/v1/campaigns/{doc['id']}", json={"data": ops}, headers={**admin, **if_match(doc)}
    )
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


async def _set_status(
    client: httpx.AsyncClient, admin: dict[str, str], doc: dict[str, object], status: str
) -> dict[str, object]:
    return await _patch(client, admin, doc, [{"op": "replace", "path": "/status", "value": status}])
