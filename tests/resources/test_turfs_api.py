"""Turfs through HTTP: validated boundaries, the doors inside, tenancy, since."""

from __future__ import annotations

import math
from typing import Any

import httpx

from tests.builders import assert_problem, create, if_match
from tests.canvassing import new_campaign
from tests.conftest import Tenant
from tests.documents.test_change_feed_api import Feed
from tests.geo_builders import HOLE, SQUARE, TURFS, placed_door, turf


async def doors_inside(
    client: httpx.AsyncClient, headers: dict[str, str], turf_id: str, **params: Any
) -> list[dict[str, Any]]:
    response = await client.get(
        f"{TURFS}/{turf_id}/contact-households", params=params, headers=headers
    )
    assert response.status_code == 200, response.text
    documents: list[dict[str, Any]] = response.json()["data"]
    return documents


async def test_a_turf_lists_the_doors_inside_with_its_edge_and_without_its_hole(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    inside = await placed_door(client, admin, campaign, 0.002, 0.002)
    on_edge = await placed_door(client, admin, campaign, 0.005, 0.0)
    on_corner = await placed_door(client, admin, campaign, 0.01, 0.01)
    on_hole_edge = await placed_door(client, admin, campaign, 0.004, 0.005)
    await placed_door(client, admin, campaign, 0.005, 0.005)  # in the hole
    await placed_door(client, admin, campaign, 0.02, 0.02)  # outside
    await placed_door(client, admin, campaign, None)  # no coordinates
    elsewhere = await new_campaign(client, admin)
    await placed_door(client, admin, elsewhere, 0.002, 0.002)  # another campaign's door
    created = await create(client, TURFS, turf(campaign, SQUARE, HOLE), admin)

    found = await doors_inside(client, admin, created["id"], count="true")

    expected = {inside, on_edge, on_corner, on_hole_edge}
    assert {d["data"]["contactHouseholdId"] for d in found} == {
        door.contact_household_id for door in expected
    }
    assert {d["meta"]["resource"] for d in found} == {"contact-household-campaigns"}


async def test_the_doors_inside_take_list_parameters(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    for n in range(3):
        await placed_door(client, admin, campaign, 0.001 * (n + 1), 0.001)
    created = await create(client, TURFS, turf(campaign), admin)
    path = f"{TURFS}/{created['id']}/contact-households"

    page = (await client.get(path, params={"limit": 2, "count": "true"}, headers=admin)).json()
    assert len(page["data"]) == 2
    assert page["meta"]["total"] == 3
    filtered = await doors_inside(
        client, admin, created["id"], filter='/data/type eq "high-priority"'
    )
    assert filtered == []
    everything = await doors_inside(client, admin, created["id"], limit="9007199254740991")
    assert len(everything) == 3
    feed = Feed(client, path, admin)
    ids = {d["id"] for d in everything}
    assert {d["id"] for d in await feed.until(ids)} == ids


async def test_an_invalid_boundary_is_a_400_naming_the_problem_and_where(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    cases = [
        ([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0.5]], "/data/boundary/coordinates/0/4", "first"),
        ([[0, 0], [1, 1], [0, 0]], "/data/boundary/coordinates/0", "at least 4"),
        ([[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]], "/data/boundary/coordinates/0/2", "itself"),
        ([[0, 0], [1, 0], [1, 95], [0, 0]], "/data/boundary/coordinates/0/2/1", "latitude"),
        (
            [[170, 0], [-170, 0], [-170, 1], [170, 1], [170, 0]],
            "/data/boundary/coordinates/0",
            "antimeridian",
        ),
    ]
    for ring, path, words in cases:
        response = await client.post(TURFS, json=turf(campaign, ring), headers=admin)
        problem = assert_problem(response, 400, "VALIDATION_ERROR")
        assert problem["errors"][0]["path"] == path, problem
        assert words in problem["errors"][0]["message"]
        assert words in problem["detail"]
    outside_hole = [[20, 20], [21, 20], [21, 21], [20, 20]]
    response = await client.post(TURFS, json=turf(campaign, SQUARE, outside_hole), headers=admin)
    assert "hole outside" in assert_problem(response, 400)["errors"][0]["message"]


def ring_of(positions: int) -> list[list[float]]:
    corners = positions - 1
    ring = [
        [
            round(0.01 * math.cos(2 * math.pi * n / corners), 9),
            round(0.01 * math.sin(2 * math.pi * n / corners), 9),
        ]
        for n in range(corners)
    ]
    return [*ring, ring[0]]


async def test_a_boundary_holds_at_most_10000_positions(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    await create(client, TURFS, turf(campaign, ring_of(10_000)), admin)
    too_many = await client.post(TURFS, json=turf(campaign, ring_of(10_001)), headers=admin)
    problem = assert_problem(too_many, 400, "VALIDATION_ERROR")
    assert "POLIS_MAX_TURF_POSITIONS" in problem["detail"]


async def test_a_patch_is_checked_like_a_create(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await create(client, TURFS, turf(await new_campaign(client, admin)), admin)
    bow_tie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    response = await client.patch(
        f"{TURFS}/{created['id']}",
        json={"data": [{"op": "replace", "path": "/boundary", "value": bow_tie}]},
        headers={**admin, **if_match(created)},
    )
    assert "itself" in assert_problem(response, 400)["detail"]


async def test_turfs_belong_to_their_tenant(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine = tenant.headers()
    theirs = other_tenant.headers()
    campaign = await new_campaign(client, mine)
    created = await create(client, TURFS, turf(campaign), mine)

    assert_problem(await client.get(f"{TURFS}/{created['id']}", headers=theirs), 404)
    listed = await client.get(f"{TURFS}/{created['id']}/contact-households", headers=theirs)
    assert_problem(listed, 404)
    # Their turf cannot name my campaign.
    response = await client.post(TURFS, json=turf(campaign), headers=theirs)
    assert assert_problem(response, 400)["errors"][0]["path"] == "/data/campaignId"


async def test_viewers_read_turfs_and_only_admins_write_them(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    campaign = await new_campaign(client, tenant.headers())
    created = await create(client, TURFS, turf(campaign), tenant.headers())
    for role in ("viewer", "canvasser"):
        headers = tenant.headers(role)
        assert (await client.get(f"{TURFS}/{created['id']}", headers=headers)).status_code == 200
        response = await client.post(TURFS, json=turf(campaign), headers=headers)
        assert_problem(response, 403)


async def test_since_follows_turfs(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    feed = Feed(client, TURFS, admin)
    written = await create(client, TURFS, turf(await new_campaign(client, admin)), admin)
    assert [t["id"] for t in await feed.until({written["id"]})] == [written["id"]]
