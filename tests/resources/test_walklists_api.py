"""Walk lists through HTTP: three ways to make one, the walk order, leased
reservations on the door records (renew, release, close, delete, expiry), roles,
since, and the 50-canvasser race."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx

from polis_api.config import Settings
from tests.builders import assert_problem, create, if_match
from tests.canvassing import Door, door, door_record, new_campaign
from tests.conftest import Tenant, client_with, running_server
from tests.documents.test_change_feed_api import Feed
from tests.geo_builders import (
    TURFS,
    WALKLISTS,
    near,
    new_walklist,
    placed_door,
    turf,
    walklist,
)


async def street(
    client: httpx.AsyncClient, headers: dict[str, str], campaign: str, doors: int
) -> list[Door]:
    """Doors along the equator, 0.001° apart, from lng 0.001 eastwards."""
    return [await placed_door(client, headers, campaign, 0.001 * (n + 1)) for n in range(doors)]


def pairs(doors: list[Door]) -> list[str]:
    return [d.contact_household_id for d in doors]


async def reservation(
    client: httpx.AsyncClient, headers: dict[str, str], at: Door
) -> dict[str, Any]:
    record = await door_record(client, headers, at)
    assert record is not None
    found: dict[str, Any] = record["data"].get("reservation") or {}
    return found


async def test_near_and_size_take_the_nearest_doors_in_walk_order_and_reserve_them(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    doors = await street(client, admin, campaign, 5)

    made = await new_walklist(client, admin, campaign, near=near(0.0035), size=3)

    # Nearest to 0.0035: doors 3 and 4 (0.0005 away), then 2 or 5; the walk starts
    # at the door nearest the place and goes on to the nearest next one.
    assert made["data"]["doors"][0] in pairs(doors[2:4])
    assert set(made["data"]["doors"]) <= set(pairs(doors[1:5]))
    assert made["data"]["status"] == "open"
    assert made["data"]["expiresAt"] > made["meta"]["created"]
    held = {d.contact_household_id: await reservation(client, admin, d) for d in doors}
    for pair in made["data"]["doors"]:
        assert held[pair] == {
            "reserved": True,
            "walklistId": made["id"],
            "expiresAt": made["data"]["expiresAt"],
        }
    assert sum(1 for r in held.values() if r.get("reserved")) == 3


async def test_a_second_list_gets_only_the_free_doors(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    doors = await street(client, admin, campaign, 5)
    first = await new_walklist(client, admin, campaign, near=near(0.0), size=3)

    second = await new_walklist(client, admin, campaign, near=near(0.0), size=3)

    assert first["data"]["doors"] == pairs(doors[:3])
    assert second["data"]["doors"] == pairs(doors[3:])


async def test_a_turf_list_takes_the_turfs_free_doors(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    inside = await street(client, admin, campaign, 3)
    outside = await placed_door(client, admin, campaign, 0.5)
    area = await create(client, TURFS, turf(campaign), admin)
    taken = await new_walklist(client, admin, campaign, doors=[inside[1].contact_household_id])

    made = await new_walklist(client, admin, campaign, turfId=area["id"])

    # The walk starts nearest the boundary's first corner (0, 0).
    assert made["data"]["doors"] == [inside[0].contact_household_id, inside[2].contact_household_id]
    assert made["data"]["turfId"] == area["id"]
    assert not (await reservation(client, admin, outside))["reserved"]
    assert (await reservation(client, admin, inside[1]))["walklistId"] == taken["id"]


async def test_explicit_doors_are_ordered_into_a_walk_from_the_first(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    doors = await street(client, admin, campaign, 4)
    given = pairs([doors[1], doors[3], doors[0], doors[2]])

    made = await new_walklist(client, admin, campaign, doors=given)

    assert made["data"]["doors"] == pairs([doors[1], doors[0], doors[2], doors[3]])


async def test_explicit_doors_held_by_another_live_list_are_a_409_listing_them(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    doors = await street(client, admin, campaign, 3)
    await new_walklist(client, admin, campaign, doors=pairs(doors[:2]))

    response = await client.post(
        WALKLISTS, json=walklist(campaign, doors=pairs(doors[1:])), headers=admin
    )

    problem = assert_problem(response, 409, "CONFLICT")
    assert doors[1].contact_household_id in problem["detail"]
    assert doors[2].contact_household_id not in problem["detail"]
    assert [e["path"] for e in problem["errors"]] == ["/data/doors/0"]
    assert not (await reservation(client, admin, doors[2]))["reserved"]


async def test_explicit_doors_must_be_doors_of_the_campaign(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    recorded = await placed_door(client, admin, campaign, 0.001)
    unrecorded = await door(client, admin, campaign_id=campaign)

    response = await client.post(
        WALKLISTS,
        json=walklist(campaign, doors=pairs([recorded, unrecorded])),
        headers=admin,
    )

    problem = assert_problem(response, 400, "VALIDATION_ERROR")
    assert unrecorded.contact_household_id in problem["detail"]
    assert [e["path"] for e in problem["errors"]] == ["/data/doors/1"]
    assert not (await reservation(client, admin, recorded))["reserved"]


async def test_a_create_names_exactly_one_way_to_choose_its_doors(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    area = await create(client, TURFS, turf(campaign), admin)
    for data in [
        {},
        {"turfId": area["id"], "near": near(0), "size": 2},
        {"near": near(0)},
        {"size": 2, "turfId": area["id"]},
        {"doors": []},
        {"near": near(0), "size": 0},
        {"status": "closed", "near": near(0), "size": 1},
        {"turfId": str(uuid.uuid4())},
    ]:
        response = await client.post(WALKLISTS, json=walklist(campaign, **data), headers=admin)
        assert_problem(response, 400, "VALIDATION_ERROR")


async def test_size_and_doors_are_bounded_by_a_setting(settings: Settings, tenant: Tenant) -> None:
    async with client_with(settings, max_walklist_doors=2) as client:
        admin = tenant.headers()
        campaign = await new_campaign(client, admin)
        doors = await street(client, admin, campaign, 3)
        at_bound = await new_walklist(client, admin, campaign, near=near(0), size=2)
        assert len(at_bound["data"]["doors"]) == 2
        past = await client.post(
            WALKLISTS, json=walklist(campaign, near=near(0), size=3), headers=admin
        )
        assert "POLIS_MAX_WALKLIST_DOORS" in assert_problem(past, 400)["detail"]
        too_many = await client.post(
            WALKLISTS, json=walklist(campaign, doors=pairs(doors)), headers=admin
        )
        assert "POLIS_MAX_WALKLIST_DOORS" in assert_problem(too_many, 400)["detail"]


async def test_renew_extends_the_lease_on_the_list_and_its_doors(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    doors = await street(client, admin, campaign, 2)
    made = await new_walklist(client, admin, campaign, doors=pairs(doors))
    await asyncio.sleep(0.01)  # a later millisecond

    response = await client.post(f"{WALKLISTS}/{made['id']}/renew", headers=admin)

    assert response.status_code == 200, response.text
    renewed = response.json()
    assert renewed["data"]["expiresAt"] > made["data"]["expiresAt"]
    assert renewed["meta"]["etag"] != made["meta"]["etag"]
    for at in doors:
        assert (await reservation(client, admin, at))["expiresAt"] == renewed["data"]["expiresAt"]


async def test_release_frees_the_doors_and_closes_the_list(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    doors = await street(client, admin, campaign, 2)
    made = await new_walklist(client, admin, campaign, doors=pairs(doors))

    response = await client.post(f"{WALKLISTS}/{made['id']}/release", headers=admin)

    assert response.status_code == 200, response.text
    assert response.json()["data"]["status"] == "closed"
    for at in doors:
        assert await reservation(client, admin, at) == {"reserved": False}
    again = await new_walklist(client, admin, campaign, doors=pairs(doors))
    assert again["data"]["doors"] == pairs(doors)
    renew = await client.post(f"{WALKLISTS}/{made['id']}/renew", headers=admin)
    assert_problem(renew, 409)


async def test_closing_frees_the_doors_and_a_closed_list_stays_closed(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    doors = await street(client, admin, campaign, 2)
    made = await new_walklist(client, admin, campaign, doors=pairs(doors))
    path = f"{WALKLISTS}/{made['id']}"

    closed = await client.patch(
        path,
        json={"data": [{"op": "replace", "path": "/status", "value": "closed"}]},
        headers={**admin, **if_match(made)},
    )

    assert closed.status_code == 200, closed.text
    for at in doors:
        assert (await reservation(client, admin, at))["reserved"] is False
    reopened = await client.patch(
        path,
        json={"data": [{"op": "replace", "path": "/status", "value": "open"}]},
        headers={**admin, **if_match(closed.json())},
    )
    assert assert_problem(reopened, 400)["errors"][0]["path"] == "/data/status"


async def test_the_server_owns_doors_and_expiry_on_a_patch(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    doors = await street(client, admin, campaign, 1)
    made = await new_walklist(client, admin, campaign, doors=pairs(doors))

    response = await client.patch(
        f"{WALKLISTS}/{made['id']}",
        json={"data": [{"op": "replace", "path": "/doors", "value": []}]},
        headers={**admin, **if_match(made)},
    )

    assert assert_problem(response, 400)["errors"][0]["path"] == "/data/doors"
    renamed = await client.patch(
        f"{WALKLISTS}/{made['id']}",
        json={"data": [{"op": "replace", "path": "/name", "value": "Sunday"}]},
        headers={**admin, **if_match(made)},
    )
    assert renamed.json()["data"]["name"] == "Sunday"


async def test_deleting_a_list_frees_its_doors(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    doors = await street(client, admin, campaign, 2)
    made = await new_walklist(client, admin, campaign, doors=pairs(doors))

    deleted = await client.delete(f"{WALKLISTS}/{made['id']}", headers={**admin, **if_match(made)})

    assert deleted.status_code == 204
    for at in doors:
        assert (await reservation(client, admin, at))["reserved"] is False


async def test_an_expired_reservation_counts_as_free(settings: Settings, tenant: Tenant) -> None:
    # A lease of a few microseconds has run out by the next request.
    async with client_with(settings, reservation_hours=1e-9) as client:
        admin = tenant.headers()
        campaign = await new_campaign(client, admin)
        doors = await street(client, admin, campaign, 2)
        first = await new_walklist(client, admin, campaign, doors=pairs(doors))

        second = await new_walklist(client, admin, campaign, near=near(0), size=2)
        third = await new_walklist(client, admin, campaign, doors=pairs(doors))

        assert second["data"]["doors"] == first["data"]["doors"]
        assert (await reservation(client, admin, doors[0]))["walklistId"] == third["id"]
        # The first list's release leaves the doors others took since alone.
        await client.post(f"{WALKLISTS}/{first['id']}/release", headers=admin)
        assert (await reservation(client, admin, doors[0]))["walklistId"] == third["id"]


async def test_roles_canvassers_read_walk_lists_admins_make_them(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    admin = tenant.headers()
    campaign = await new_campaign(client, admin)
    doors = await street(client, admin, campaign, 1)
    made = await new_walklist(client, admin, campaign, doors=pairs(doors))
    canvasser = tenant.headers("canvasser")

    read = await client.get(f"{WALKLISTS}/{made['id']}", headers=canvasser)
    assert read.status_code == 200
    assert read.json()["data"]["doors"] == pairs(doors)
    listed = await client.get(WALKLISTS, headers=canvasser)
    assert made["id"] in [w["id"] for w in listed.json()["data"]]
    for request in [
        client.post(WALKLISTS, json=walklist(campaign, near=near(0), size=1), headers=canvasser),
        client.post(f"{WALKLISTS}/{made['id']}/release", headers=canvasser),
        client.post(f"{WALKLISTS}/{made['id']}/renew", headers=tenant.headers("viewer")),
    ]:
        assert_problem(await request, 403)
    theirs = other_tenant.headers()
    assert_problem(await client.get(f"{WALKLISTS}/{made['id']}", headers=theirs), 404)
    assert_problem(await client.post(f"{WALKLISTS}/{made['id']}/release", headers=theirs), 404)
    other = await client.post(
        WALKLISTS, json=walklist(campaign, near=near(0), size=1), headers=theirs
    )
    assert assert_problem(other, 400)["errors"][0]["path"] == "/data/campaignId"


async def test_since_follows_walk_lists(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    campaign = await new_campaign(client, admin)
    doors = await street(client, admin, campaign, 1)
    feed = Feed(client, WALKLISTS, admin)
    made = await new_walklist(client, admin, campaign, doors=pairs(doors))
    assert [w["id"] for w in await feed.until({made["id"]})] == [made["id"]]
    await client.post(f"{WALKLISTS}/{made['id']}/release", headers=admin)
    changed = await feed.until({made["id"]})
    assert changed[-1]["data"]["status"] == "closed"


# --- the race ------------------------------------------------------------------------


async def assert_no_door_twice(
    client: httpx.AsyncClient, admin: dict[str, str], doors: list[Door], made: list[dict[str, Any]]
) -> None:
    """Every handed-out door is in one list only, and its record names that list."""
    handed = Counter(pair for w in made for pair in w["data"]["doors"])
    assert handed and max(handed.values()) == 1, handed.most_common(3)
    holder = {pair: w["id"] for w in made for pair in w["data"]["doors"]}
    for at in doors:
        held = await reservation(client, admin, at)
        if at.contact_household_id in holder:
            assert held["walklistId"] == holder[at.contact_household_id]
        else:
            assert not held["reserved"]


async def test_fifty_canvassers_asking_at_once_never_share_a_door(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    doors = await street(client, admin, campaign, 120)

    async def ask() -> dict[str, Any]:
        body = walklist(campaign, near=near(0.03), size=3)
        response = await client.post(WALKLISTS, json=body, headers=admin)
        assert response.status_code == 201, response.text
        document: dict[str, Any] = response.json()
        return document

    made = await asyncio.gather(*(ask() for _ in range(50)))

    await assert_no_door_twice(client, admin, doors, list(made))
    # 150 doors asked of 120: every door went to someone.
    assert sum(len(w["data"]["doors"]) for w in made) == 120


async def test_canvassers_racing_on_two_worker_processes_never_share_a_door(
    client: httpx.AsyncClient, admin: dict[str, str], database_url: str
) -> None:
    campaign = await new_campaign(client, admin)
    doors = await street(client, admin, campaign, 30)
    with running_server(database_url, "walklist-race") as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as remote:

            async def ask() -> dict[str, Any]:
                body = walklist(campaign, near=near(0.015), size=4)
                response = await remote.post(WALKLISTS, json=body, headers=admin)
                assert response.status_code == 201, response.text
                document: dict[str, Any] = response.json()
                return document

            made = await asyncio.gather(*(ask() for _ in range(10)))

    await assert_no_door_twice(client, admin, doors, list(made))
    assert sum(len(w["data"]["doors"]) for w in made) == 30
