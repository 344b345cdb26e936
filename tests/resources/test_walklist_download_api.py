"""The canvasser's download: a walk list's doors in walk order with their door
record, contact and household embedded, meta, since, roles and tenancy."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.canvassing import Door, door_record, new_campaign
from tests.conftest import Tenant
from tests.geo_builders import WALKLISTS, new_walklist, placed_door
from tests.surveys import EVERYONE, new_segment, new_survey


async def street(client: httpx.AsyncClient, headers: dict[str, str], campaign: str) -> list[Door]:
    doors = [await placed_door(client, headers, campaign, 0.001 * (n + 1)) for n in range(3)]
    for at in doors:  # the builder's contact-households name contacts that do not exist yet
        made = await client.post(
            "/v2/contacts", json={"id": at.contact_id, "data": {}}, headers=headers
        )
        assert made.status_code in (200, 201), made.text
    return doors


def download_path(walklist_id: str) -> str:
    return f"{WALKLISTS}/{walklist_id}/contact-households"


async def get(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def test_doors_come_in_walk_order_with_their_documents_embedded(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    admin = tenant.headers("admin")
    campaign = await new_campaign(client, admin)
    doors = await street(client, admin, campaign)
    made = await new_walklist(
        client, admin, campaign, doors=[d.contact_household_id for d in doors]
    )

    page = await get(client, download_path(made["id"]), admin)

    by_pair = {d.contact_household_id: d for d in doors}
    assert [item["data"]["contactHouseholdId"] for item in page["data"]] == made["data"]["doors"]
    for item in page["data"]:
        at = by_pair[item["data"]["contactHouseholdId"]]
        contact = item["data"].pop("contact")
        household = item["data"].pop("household")
        assert contact == await get(client, f"/v2/contacts/{at.contact_id}", admin)
        assert household == await get(client, f"/v2/households/{at.household_id}", admin)
        assert item == await door_record(client, admin, at)
    meta = page["meta"]
    assert meta["campaign"] == await get(client, f"/v1/campaigns/{campaign}", admin)
    assert meta["fields"] == meta["campaign"]["data"]["fields"]
    statuses = await get(client, f"/v1/campaigns/{campaign}/statuses?limit=1000", admin)
    assert {s["id"] for s in meta["statuses"]} == {s["id"] for s in statuses["data"]}
    assert meta["surveys"] == [] and meta["surveyByContact"] == {}


async def test_since_sends_a_door_again_when_its_record_contact_or_household_changes(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    admin = tenant.headers("admin")
    campaign = await new_campaign(client, admin)
    doors = await street(client, admin, campaign)
    made = await new_walklist(
        client, admin, campaign, doors=[d.contact_household_id for d in doors]
    )
    path = download_path(made["id"])
    first = await get(client, f"{path}?since=", admin)
    assert len(first["data"]) == 3 and not first["meta"]["more"]
    token = first["meta"]["next"]
    assert (await get(client, f"{path}?since={token}", admin))["data"] == []

    contact = await get(client, f"/v2/contacts/{doors[0].contact_id}", admin)
    changed = await client.patch(
        f"/v2/contacts/{doors[0].contact_id}",
        json={"data": [{"op": "add", "path": "/notes", "value": "dog"}]},
        headers={**admin, "If-Match": contact["meta"]["etag"]},
    )
    assert changed.status_code == 200, changed.text
    again = await get(client, f"{path}?since={token}", admin)
    assert [i["data"]["contactHouseholdId"] for i in again["data"]] == [
        doors[0].contact_household_id
    ]
    assert again["data"][0]["data"]["contact"] == changed.json()
    token = again["meta"]["next"]

    household = await get(client, f"/v2/households/{doors[1].household_id}", admin)
    changed = await client.patch(
        f"/v2/households/{doors[1].household_id}",
        json={"data": [{"op": "add", "path": "/unitNum", "value": "2B"}]},
        headers={**admin, "If-Match": household["meta"]["etag"]},
    )
    assert changed.status_code == 200, changed.text
    again = await get(client, f"{path}?since={token}", admin)
    assert [i["data"]["household"]["id"] for i in again["data"]] == [doors[1].household_id]
    token = again["meta"]["next"]

    released = await client.post(f"{WALKLISTS}/{made['id']}/release", headers=admin)
    assert released.status_code == 200, released.text
    gone = await get(client, f"{path}?since={token}", admin)
    assert len(gone["data"]) == 3
    assert all(item["meta"]["isDeleted"] for item in gone["data"])
    assert (await get(client, path, admin))["data"] == []


async def test_canvassers_download_only_their_own_lists_and_tenants_are_apart(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    admin = tenant.headers("admin")
    campaign = await new_campaign(client, admin)
    doors = await street(client, admin, campaign)
    pairs = [d.contact_household_id for d in doors]
    mine = await new_walklist(
        client, admin, campaign, doors=pairs[:2], assigneeId=str(tenant.user_id)
    )
    theirs = await new_walklist(client, admin, campaign, doors=pairs[2:])
    canvasser = tenant.headers("canvasser")

    assert len((await get(client, download_path(mine["id"]), canvasser))["data"]) == 2
    refused = await client.get(download_path(theirs["id"]), headers=canvasser)
    assert refused.status_code == 404
    viewer = tenant.headers("viewer")
    assert len((await get(client, download_path(theirs["id"]), viewer))["data"]) == 1
    elsewhere = await client.get(download_path(mine["id"]), headers=other_tenant.headers())
    assert elsewhere.status_code == 404


def only(contact_ids: list[str], operator: str = "in") -> dict[str, Any]:
    value: Any = contact_ids if operator == "in" else contact_ids[0]
    return {"filter": "all", "clauses": [{"source": "/id", "operator": operator, "value": value}]}


async def test_each_contact_gets_the_survey_of_its_first_matching_segment(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    admin = tenant.headers("admin")
    campaign = await new_campaign(client, admin)
    doors = await street(client, admin, campaign)
    first, second, third = (d.contact_id for d in doors)
    surveys = [
        await new_survey(client, admin, campaign, name=name)
        for name in ("Front", "Back", "Unused", "Gone")
    ]
    front, back, unused, gone = (s["id"] for s in surveys)
    # Precedence, not creation order, decides: the lowest first.
    await new_segment(client, admin, campaign, back, 20, criteria=only([first, second]))
    await new_segment(client, admin, campaign, front, 10, criteria=only([first], "eq"))
    await new_segment(client, admin, campaign, unused, 30, criteria=only([str(uuid.uuid4())]))
    await new_segment(client, admin, campaign, gone, 5, criteria=EVERYONE)
    deleted = await client.delete(
        f"/v1/surveys/{gone}", headers={**admin, "If-Match": surveys[3]["meta"]["etag"]}
    )
    assert deleted.status_code in (200, 204), deleted.text
    made = await new_walklist(
        client, admin, campaign, doors=[d.contact_household_id for d in doors]
    )

    page = await get(client, download_path(made["id"]), admin)
    feed = await get(client, f"{download_path(made['id'])}?since=", admin)

    expected = {first: front, second: back}
    for meta in (page["meta"], feed["meta"]):
        assert meta["surveyByContact"] == expected
        assert meta["surveys"] == [
            await get(client, f"/v1/surveys/{s}", admin) for s in sorted({front, back})
        ]
    for at in doors:  # the same answer as the contact's own survey route
        own = await client.get(
            f"/v1/campaigns/{campaign}/contacts/{at.contact_id}/survey", headers=admin
        )
        if at.contact_id in expected:
            assert own.status_code == 200, own.text
            assert own.json()["id"] == expected[at.contact_id]
        else:
            assert own.status_code == 404, own.text
    assert third not in page["meta"]["surveyByContact"]
    assert [item["data"]["contactHouseholdId"] for item in page["data"]] == made["data"]["doors"]
