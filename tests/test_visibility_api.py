"""Assigned-only visibility through HTTP: role by setting by route.

With viewUnassignedData off, a canvasser or viewer reaches contacts, households and
door records only through the open walk lists assigned to its sub; everything else
is a 404 or simply absent from lists, feeds and maps. Admins always see everything.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.builders import assert_problem, create
from tests.canvassing import (
    Door,
    associate,
    door_record,
    interaction,
    new_campaign,
    new_household,
    put_door,
    record_interaction,
    status_named,
)
from tests.conftest import Tenant
from tests.geo_builders import TURFS, WALKLISTS, turf
from tests.list_builders import Pair, members, new_list, put_on

SETTINGS = "/v1/settings"
GEOJSON = {"Accept": "application/geo+json"}


@dataclass(frozen=True)
class Street:
    campaign: str
    mine: list[Door]  # on an open walk list assigned to the caller's sub
    others: list[Door]  # on someone else's walk list, on a closed one of mine, or on none


async def contact_door(
    client: httpx.AsyncClient, headers: dict[str, str], campaign: str, lng: float
) -> Door:
    household = await new_household(client, headers, {"lat": 0.001, "lng": lng})
    contact = await create(
        client,
        "/v2/contacts",
        {"data": {"profile": {"name": {"anglican": {"given": f"N{lng}"}}}}},
        headers,
    )
    pair = await associate(client, headers, contact["id"], household)
    at = Door(campaign, contact["id"], household, pair)
    await put_door(client, headers, at, {"type": "normal"})
    return at


async def walk_list(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    campaign: str,
    assignee: uuid.UUID,
    doors: list[Door],
    **data: Any,
) -> dict[str, Any]:
    body = {
        "data": {
            "campaignId": campaign,
            "name": "Saturday",
            "assigneeId": str(assignee),
            "doors": [d.contact_household_id for d in doors],
            **data,
        }
    }
    return await create(client, WALKLISTS, body, headers)


@pytest.fixture
async def street(client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]) -> Street:
    campaign = await new_campaign(client, admin)
    doors = [await contact_door(client, admin, campaign, 0.001 * (n + 1)) for n in range(5)]
    await walk_list(client, admin, campaign, tenant.user_id, doors[:2])
    await walk_list(client, admin, campaign, uuid.uuid4(), doors[2:3])
    closed = await walk_list(client, admin, campaign, tenant.user_id, doors[3:4])
    released = await client.post(f"{WALKLISTS}/{closed['id']}/release", headers=admin)
    assert released.status_code == 200, released.text
    return Street(campaign, doors[:2], doors[2:])


async def hide_unassigned(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.patch(
        SETTINGS, json={"data": {"viewUnassignedData": False}}, headers=admin
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"viewUnassignedData": False}}


def ids(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["data"]}


def feature_ids(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {feature["properties"]["id"] for feature in response.json()["features"]}


async def visible_routes(
    client: httpx.AsyncClient, headers: dict[str, str], street: Street
) -> dict[str, set[str]]:
    """What each list route shows this caller, as the doors' contact-household ids."""
    campaign_doors = f"/v1/campaigns/{street.campaign}/contact-households"
    every = [*street.mine, *street.others]
    by_contact = {d.contact_id: d.contact_household_id for d in every}
    by_household = {d.household_id: d.contact_household_id for d in every}

    def records(response: httpx.Response) -> set[str]:
        assert response.status_code == 200, response.text
        return {item["data"]["contactHouseholdId"] for item in response.json()["data"]}

    seen = {
        "contacts": {by_contact[i] for i in ids(await client.get("/v2/contacts", headers=headers))},
        "households": {
            by_household[i] for i in ids(await client.get("/v2/households", headers=headers))
        },
        "contact-households": ids(await client.get("/v1/contact-households", headers=headers)),
        "campaign doors": records(await client.get(campaign_doors, headers=headers)),
        "contacts since": {
            by_contact[i]
            for i in ids(await client.get("/v2/contacts", params={"since": ""}, headers=headers))
        },
        "campaign doors since": records(
            await client.get(campaign_doors, params={"since": ""}, headers=headers)
        ),
    }
    geo = await client.get(campaign_doors, headers={**headers, **GEOJSON})
    assert geo.status_code == 200, geo.text
    seen["campaign doors geojson"] = {
        by_household[f["properties"]["householdId"]] for f in geo.json()["features"]
    }
    houses = await client.get("/v2/households", headers={**headers, **GEOJSON})
    seen["households geojson"] = {by_household[i] for i in feature_ids(houses)}
    return seen


ALL_LISTS = (
    "contacts",
    "households",
    "contact-households",
    "campaign doors",
    "contacts since",
    "campaign doors since",
    "campaign doors geojson",
    "households geojson",
)


async def gets(client: httpx.AsyncClient, headers: dict[str, str], at: Door) -> dict[str, int]:
    """The status of each single GET of one door's documents."""
    return {
        "contact": (await client.get(f"/v2/contacts/{at.contact_id}", headers=headers)).status_code,
        "household": (
            await client.get(f"/v2/households/{at.household_id}", headers=headers)
        ).status_code,
        "contact-household": (
            await client.get(f"/v1/contact-households/{at.contact_household_id}", headers=headers)
        ).status_code,
        "door record": (await client.get(at.path, headers=headers)).status_code,
    }


@pytest.mark.parametrize("role", ["admin", "canvasser", "viewer"])
async def test_with_the_default_setting_every_role_sees_every_door(
    client: httpx.AsyncClient, tenant: Tenant, street: Street, role: str
) -> None:
    headers = tenant.headers(role)
    every = {d.contact_household_id for d in [*street.mine, *street.others]}
    seen = await visible_routes(client, headers, street)
    assert seen == {route: every for route in ALL_LISTS}
    for at in [*street.mine, *street.others]:
        assert set((await gets(client, headers, at)).values()) == {200}


async def test_admins_see_everything_with_unassigned_data_hidden(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], street: Street
) -> None:
    await hide_unassigned(client, admin)
    every = {d.contact_household_id for d in [*street.mine, *street.others]}
    assert await visible_routes(client, admin, street) == {route: every for route in ALL_LISTS}
    for at in street.others:
        assert set((await gets(client, admin, at)).values()) == {200}


@pytest.mark.parametrize("roles", [("canvasser",), ("viewer",), ("canvasser", "viewer")])
async def test_restricted_roles_see_exactly_their_open_walk_lists_doors(
    client: httpx.AsyncClient,
    tenant: Tenant,
    admin: dict[str, str],
    street: Street,
    roles: tuple[str, ...],
) -> None:
    await hide_unassigned(client, admin)
    headers = tenant.headers(*roles)
    mine = {d.contact_household_id for d in street.mine}

    assert await visible_routes(client, headers, street) == {route: mine for route in ALL_LISTS}
    for at in street.mine:
        assert set((await gets(client, headers, at)).values()) == {200}
    for at in street.others:
        statuses = await gets(client, headers, at)
        assert statuses == dict.fromkeys(statuses, 404), statuses
        assert_problem(await client.get(f"/v2/contacts/{at.contact_id}", headers=headers), 404)


async def test_one_list_url_shows_each_caller_what_it_may_see(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], street: Street
) -> None:
    # The same query string, one caller after the other: the parsed list kept for
    # the first (documents/listing.RecentLists) must not answer for the second.
    await hide_unassigned(client, admin)
    url = "/v1/contact-households?limit=50"
    every = {d.contact_household_id for d in [*street.mine, *street.others]}
    mine = {d.contact_household_id for d in street.mine}

    assert ids(await client.get(url, headers=admin)) == every
    assert ids(await client.get(url, headers=tenant.headers("canvasser"))) == mine
    assert ids(await client.get(url, headers=admin)) == every


async def test_a_role_beyond_canvasser_and_viewer_is_not_restricted(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], street: Street
) -> None:
    await hide_unassigned(client, admin)
    headers = tenant.headers("canvasser", "admin")
    every = {d.contact_household_id for d in [*street.mine, *street.others]}
    assert (await visible_routes(client, headers, street))["contacts"] == every


async def test_a_turfs_doors_are_only_the_assigned_ones_when_restricted(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], street: Street
) -> None:
    made = await create(client, TURFS, turf(street.campaign), admin)
    path = f"{TURFS}/{made['id']}/contact-households"

    def records(response: httpx.Response) -> set[str]:
        assert response.status_code == 200, response.text
        return {item["data"]["contactHouseholdId"] for item in response.json()["data"]}

    every = {d.contact_household_id for d in [*street.mine, *street.others]}
    assert records(await client.get(path, headers=tenant.headers("canvasser"))) == every
    await hide_unassigned(client, admin)
    mine = {d.contact_household_id for d in street.mine}
    assert records(await client.get(path, headers=tenant.headers("canvasser"))) == mine
    assert records(await client.get(path, headers=admin)) == every


async def test_a_new_assignment_shows_at_once_and_a_closed_list_hides_again(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], street: Street
) -> None:
    await hide_unassigned(client, admin)
    headers = tenant.headers("canvasser")
    newcomer = street.others[-1]  # on no walk list
    assert (await gets(client, headers, newcomer))["contact"] == 404

    made = await walk_list(client, admin, street.campaign, tenant.user_id, [newcomer])
    assert set((await gets(client, headers, newcomer)).values()) == {200}

    await client.post(f"{WALKLISTS}/{made['id']}/release", headers=admin)
    assert (await gets(client, headers, newcomer))["household"] == 404


async def test_settings_read_by_anyone_changed_by_admins_only(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    for role in ("admin", "canvasser", "viewer"):
        response = await client.get(SETTINGS, headers=tenant.headers(role))
        assert response.status_code == 200, response.text
        assert response.json() == {"data": {"viewUnassignedData": True}}
    for role in ("canvasser", "viewer"):
        refused = await client.patch(
            SETTINGS, json={"data": {"viewUnassignedData": False}}, headers=tenant.headers(role)
        )
        assert_problem(refused, 403)
    await hide_unassigned(client, admin)
    again = await client.get(SETTINGS, headers=tenant.headers("viewer"))
    assert again.json() == {"data": {"viewUnassignedData": False}}
    # An empty change changes nothing; an unknown setting or a non-boolean is a 400.
    same = await client.patch(SETTINGS, json={"data": {}}, headers=admin)
    assert same.json() == {"data": {"viewUnassignedData": False}}
    for bad in ({"data": {"viewAll": True}}, {"data": {"viewUnassignedData": "no"}}, {}):
        assert_problem(await client.patch(SETTINGS, json=bad, headers=admin), 400)


async def test_one_tenants_setting_leaves_another_tenant_alone(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, admin: dict[str, str]
) -> None:
    await hide_unassigned(client, admin)
    theirs = await client.get(SETTINGS, headers=other_tenant.headers("canvasser"))
    assert theirs.json() == {"data": {"viewUnassignedData": True}}


async def test_counts_streams_a_contacts_households_and_door_writes_are_restricted_too(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], street: Street
) -> None:
    await hide_unassigned(client, admin)
    headers = tenant.headers("canvasser")
    counted = await client.get("/v2/contacts", params={"count": "true"}, headers=headers)
    assert counted.json()["meta"]["total"] == len(street.mine)
    streamed = await client.get(
        "/v2/households", params={"limit": "9007199254740991"}, headers=headers
    )
    assert ids(streamed) == {d.household_id for d in street.mine}
    mine, other = street.mine[0], street.others[0]
    linked = await client.get(f"/v2/contacts/{mine.contact_id}/households", headers=headers)
    assert ids(linked) == {mine.household_id}
    refused = await client.put(other.path, json={"data": {"type": "normal"}}, headers=headers)
    assert_problem(refused, 404)
    allowed = await client.put(other.path, json={"data": {"type": "normal"}}, headers=admin)
    assert allowed.status_code == 200, allowed.text


async def test_a_lists_members_are_only_the_assigned_doors_when_restricted(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], street: Street
) -> None:
    list_id = await new_list(client, admin)
    for at in [*street.mine, *street.others]:
        await put_on(client, admin, list_id, Pair(at.contact_id, at.household_id, "unused"))
    await hide_unassigned(client, admin)

    def doors(found: list[dict[str, Any]]) -> set[str]:
        return {member["data"]["contactHouseholdId"] for member in found}

    every = {d.contact_household_id for d in [*street.mine, *street.others]}
    assert doors(await members(client, admin, list_id)) == every
    mine = {d.contact_household_id for d in street.mine}
    assert doors(await members(client, tenant.headers("viewer"), list_id)) == mine
    feed = await members(client, tenant.headers("viewer"), list_id, {"since": ""})
    assert doors(feed) == mine


async def test_interactions_are_only_the_assigned_doors_when_restricted(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], street: Street
) -> None:
    mine = await record_interaction(client, admin, street.mine[0])
    other = await record_interaction(client, admin, street.others[0])
    await hide_unassigned(client, admin)
    headers = tenant.headers("canvasser")
    assert ids(await client.get("/v2/interactions", headers=headers)) == {mine["id"]}
    assert ids(await client.get("/v2/interactions", headers=admin)) == {mine["id"], other["id"]}
    assert (await client.get(f"/v2/interactions/{mine['id']}", headers=headers)).status_code == 200
    hidden = await client.get(f"/v2/interactions/{other['id']}", headers=headers)
    assert_problem(hidden, 404)


async def test_a_restricted_canvasser_knocks_only_on_its_own_doors(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], street: Street
) -> None:
    await hide_unassigned(client, admin)
    canvasser = tenant.headers("canvasser")
    mine, other = street.mine[0], street.others[0]
    before = await door_record(client, admin, other)

    hidden = await client.post("/v2/interactions", json=interaction(other), headers=canvasser)
    assert_problem(hidden, 404)
    allowed = await client.post("/v2/interactions", json=interaction(mine), headers=canvasser)
    assert allowed.status_code == 201, allowed.text
    unknown = interaction(mine, contactHouseholdId=str(uuid.uuid4()))
    refused = await client.post("/v2/interactions", json=unknown, headers=canvasser)
    assert_problem(refused, 400)  # a door that does not exist is still named, as before

    outbox = [interaction(mine), interaction(other)]
    answer = await client.post("/v2/interactions/bulk", json={"data": outbox}, headers=canvasser)
    assert answer.status_code == 207, answer.text
    assert [item["status"] for item in answer.json()["data"]] == [201, 404]

    history = await client.get(
        "/v2/interactions",
        params={"filter[/data/contactHouseholdId]": other.contact_household_id},
        headers=admin,
    )
    assert ids(history) == set(), "nothing was recorded on the hidden door"
    assert await door_record(client, admin, other) == before


async def test_a_restricted_canvasser_writes_only_its_own_door_records(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], street: Street
) -> None:
    await hide_unassigned(client, admin)
    canvasser = tenant.headers("canvasser")
    mine, other = street.mine[0], street.others[0]
    successful = await status_named(client, admin, "Successful")
    before = await door_record(client, admin, other)
    assert before is not None

    patch = {"data": [{"op": "replace", "path": "/statusId", "value": successful}]}
    hidden = await client.patch(
        other.path, json=patch, headers={**canvasser, "If-Match": before["meta"]["etag"]}
    )
    assert_problem(hidden, 404)

    def item(at: Door) -> dict[str, Any]:
        return {"data": {"campaignId": at.campaign_id, "statusId": successful}, "params": at.params}

    bulk = "/v1/campaigns/contact-households/bulk"
    refused = await client.post(bulk, json={"data": [item(mine), item(other)]}, headers=canvasser)
    assert_problem(refused, 404)
    assert await door_record(client, admin, other) == before, "nothing was written"
    mine_before = await door_record(client, admin, mine)
    assert mine_before is not None and mine_before["data"]["statusId"] != successful

    allowed = await client.post(bulk, json={"data": [item(mine)]}, headers=canvasser)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["data"][0]["data"]["statusId"] == successful


async def test_with_unassigned_data_shown_a_canvasser_writes_any_door(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], street: Street
) -> None:
    canvasser = tenant.headers("canvasser")
    other = street.others[0]
    answer = await client.post("/v2/interactions", json=interaction(other), headers=canvasser)
    assert answer.status_code == 201, answer.text
    successful = await status_named(client, admin, "Successful")
    item = {
        "data": {"campaignId": other.campaign_id, "statusId": successful},
        "params": other.params,
    }
    bulk = await client.post(
        "/v1/campaigns/contact-households/bulk", json={"data": [item]}, headers=canvasser
    )
    assert bulk.status_code == 200, bulk.text
