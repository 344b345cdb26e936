"""Lists make a campaign's doors (SPEC §9): attach, add, several lists, dangling ids."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from polis_api.documents.etag import compute_etag
from tests.builders import campaign, create, if_match
from tests.conftest import Tenant
from tests.list_builders import Pair, new_list, new_pair, put_on

CAMPAIGNS = "/v1/campaigns"


async def doors(
    client: httpx.AsyncClient, headers: dict[str, str], campaign_id: str
) -> dict[str, dict[str, Any]]:
    """The campaign's door records by contact-household id."""
    response = await client.get(f"{CAMPAIGNS}/{campaign_id}/contact-households", headers=headers)
    assert response.status_code == 200, response.text
    return {door["data"]["contactHouseholdId"]: door for door in response.json()["data"]}


async def new_campaign(
    client: httpx.AsyncClient, headers: dict[str, str], *lists: tuple[str, str | None]
) -> dict[str, Any]:
    entries = [
        {"listId": list_id, "type": kind} if kind else {"listId": list_id}
        for list_id, kind in lists
    ]
    return await create(client, CAMPAIGNS, campaign(lists=entries), headers)


async def attach(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    document: dict[str, Any],
    *lists: tuple[str, str | None],
) -> dict[str, Any]:
    entries = [
        {"listId": list_id, "type": kind} if kind else {"listId": list_id}
        for list_id, kind in lists
    ]
    patch = [{"op": "replace", "path": "/lists", "value": entries}]
    response = await client.patch(
        f"{CAMPAIGNS}/{document['id']}",
        json={"data": patch},
        headers={**headers, **if_match(document)},
    )
    assert response.status_code == 200, response.text
    patched: dict[str, Any] = response.json()
    return patched


async def filled_list(
    client: httpx.AsyncClient, headers: dict[str, str], size: int
) -> tuple[str, list[Pair]]:
    list_id = await new_list(client, headers)
    pairs = [await new_pair(client, headers) for _ in range(size)]
    for pair in pairs:
        await put_on(client, headers, list_id, pair)
    return list_id, pairs


async def test_creating_a_campaign_with_a_list_gives_every_member_a_door(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    list_id, pairs = await filled_list(client, admin, 3)

    created = await new_campaign(client, admin, (list_id, None))

    found = await doors(client, admin, created["id"])
    assert set(found) == {pair.contact_household_id for pair in pairs}
    door = found[pairs[0].contact_household_id]
    assert door["data"] == {
        "campaignId": created["id"],
        "contactHouseholdId": pairs[0].contact_household_id,
        "contacted": False,
        "successful": False,
        "state": "not-contacted-normal",
        "statusId": None,
        "type": "normal",
        "availability": {"available": False, "unavailableReason": None},
        "reservation": {"reserved": False},
        "lastInteraction": None,
    }
    without_etag = {**door, "meta": {k: v for k, v in door["meta"].items() if k != "etag"}}
    assert door["meta"]["etag"] == compute_etag(without_etag), "the etag a single write gives"
    assert door["meta"]["resource"] == "contact-household-campaigns"


async def test_attaching_by_patch_types_the_doors_and_the_strongest_list_wins(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    normal, normal_pairs = await filled_list(client, admin, 2)
    priority, priority_pairs = await filled_list(client, admin, 1)
    shared = normal_pairs[0]
    await put_on(client, admin, priority, shared)
    knock = await new_list(client, admin)
    await put_on(client, admin, knock, normal_pairs[1])
    created = await new_campaign(client, admin)
    assert await doors(client, admin, created["id"]) == {}

    await attach(
        client, admin, created, (normal, None), (priority, "high-priority"), (knock, "do-not-knock")
    )

    states = {
        pair: door["data"]["state"]
        for pair, door in (await doors(client, admin, created["id"])).items()
    }
    assert states == {
        shared.contact_household_id: "not-contacted-high-priority",
        normal_pairs[1].contact_household_id: "not-contacted-do-not-knock",
        priority_pairs[0].contact_household_id: "not-contacted-high-priority",
    }


async def test_adding_a_member_to_an_attached_list_gives_it_a_door(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    list_id = await new_list(client, admin)
    first = await new_campaign(client, admin, (list_id, "high-priority"))
    second = await new_campaign(client, admin, (list_id, None))
    one, two = await new_pair(client, admin), await new_pair(client, admin)

    await put_on(client, admin, list_id, one)
    bulk = await client.post(
        f"/v1/lists/{list_id}/contact-households", json={"data": [two.item]}, headers=admin
    )

    assert bulk.status_code == 207
    for document, state in (
        (first, "not-contacted-high-priority"),
        (second, "not-contacted-normal"),
    ):
        found = await doors(client, admin, document["id"])
        assert set(found) == {one.contact_household_id, two.contact_household_id}
        assert {door["data"]["state"] for door in found.values()} == {state}


async def test_doors_already_there_keep_their_state_and_detaching_leaves_them(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    list_id, [pair] = await filled_list(client, admin, 1)
    created = await new_campaign(client, admin)
    door_path = (
        f"{CAMPAIGNS}/{created['id']}/contacts/{pair.contact_id}/households/{pair.household_id}"
    )
    put = await client.put(door_path, json={"data": {"state": "come-back"}}, headers=admin)
    assert put.status_code in (200, 201), put.text
    before = (await doors(client, admin, created["id"]))[pair.contact_household_id]

    attached = await attach(client, admin, created, (list_id, "do-not-knock"))
    await attach(client, admin, attached)

    after = (await doors(client, admin, created["id"]))[pair.contact_household_id]
    assert after == before


async def test_a_list_named_before_it_exists_makes_doors_once_it_has_members(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    list_id = str(uuid.uuid4())
    created = await new_campaign(client, admin, (list_id, "high-priority"))
    assert created["data"]["lists"] == [{"listId": list_id, "type": "high-priority"}]
    assert await doors(client, admin, created["id"]) == {}

    assert await new_list(client, admin, list_id) == list_id
    pair = await new_pair(client, admin)
    await put_on(client, admin, list_id, pair)

    found = await doors(client, admin, created["id"])
    assert found[pair.contact_household_id]["data"]["state"] == "not-contacted-high-priority"


async def test_another_tenants_list_makes_no_doors(
    client: httpx.AsyncClient, admin: dict[str, str], other_tenant: Tenant
) -> None:
    theirs = other_tenant.headers("admin")
    their_list, _ = await filled_list(client, theirs, 2)

    created = await new_campaign(client, admin, (their_list, None))

    assert await doors(client, admin, created["id"]) == {}


async def test_concurrent_adds_and_attaches_make_every_door_once(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    list_id = await new_list(client, admin)
    pairs = [await new_pair(client, admin) for _ in range(10)]
    campaigns = [await new_campaign(client, admin) for _ in range(4)]

    await asyncio.gather(
        *(client.put(pair.on(list_id), headers=admin) for pair in pairs),
        *(attach(client, admin, document, (list_id, None)) for document in campaigns),
    )

    for document in campaigns:
        response = await client.get(
            f"{CAMPAIGNS}/{document['id']}/contact-households",
            params={"count": "true"},
            headers=admin,
        )
        assert response.json()["meta"]["total"] == 10, "every door, none twice"
        assert {d["data"]["contactHouseholdId"] for d in response.json()["data"]} == {
            pair.contact_household_id for pair in pairs
        }
