"""Quality flags on interactions through HTTP (docs/quality.md): far-from-door,
low-gps-confidence, impossible-speed and burst, on single POST, PATCH and the outbox
bulk, with concurrent knocks, and filtering by flag."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from polis_api.auth import mint_token
from polis_api.config import Settings
from polis_api.filtering import Params, compile_filter, parse_filter
from polis_api.resources import interactions
from polis_api.resources.interactions import INTERACTIONS
from tests.builders import assert_problem, if_match
from tests.canvassing import NEW_YORK, Door, door, interaction
from tests.conftest import Tenant

# One degree of latitude is 69.09 miles (the haversine's Earth radius).
MILES_PER_DEGREE = 3958.7613 * 3.141592653589793 / 180
T0 = "2026-11-28T14:00:00.000Z"


def at_door(miles_north: float = 0.0, **extra: Any) -> dict[str, Any]:
    """A location ``miles_north`` of NEW_YORK (where ``door`` puts households)."""
    return {
        "lat": NEW_YORK["lat"] + miles_north / MILES_PER_DEGREE,
        "lng": NEW_YORK["lng"],
        **extra,
    }


def at_time(seconds: float) -> str:
    whole = int(seconds)
    millis = round((seconds - whole) * 1000)
    minutes, secs = divmod(whole, 60)
    return f"2026-11-28T{14 + minutes // 60:02d}:{minutes % 60:02d}:{secs:02d}.{millis:03d}Z"


def canvasser(settings: Settings, tenant: Tenant) -> dict[str, str]:
    """A canvasser of the tenant with a ``sub`` of its own."""
    token = mint_token(
        settings,
        roles=["canvasser"],
        permissions=None,
        customer_id=tenant.customer_id,
        sub=uuid.uuid4(),
        ttl_seconds=600,
    )
    return {"Authorization": f"Bearer {token}"}


async def knock(
    client: httpx.AsyncClient, headers: dict[str, str], at: Door, **data: Any
) -> dict[str, Any]:
    body = interaction(at, **{"timestamp": T0, "location": at_door(), **data})
    response = await client.post("/v2/interactions", json=body, headers=headers)
    assert response.status_code == 201, response.text
    document: dict[str, Any] = response.json()
    return document


def flags_of(document: dict[str, Any]) -> list[str]:
    return list(document["data"].get("qualityFlags", []))


# --- far-from-door and low-gps-confidence ------------------------------------------------


@pytest.mark.parametrize(
    ("miles", "flagged"), [(0.0, False), (0.24, False), (0.26, True), (5.0, True)]
)
async def test_a_knock_far_from_its_door_is_flagged_at_the_setting(
    client: httpx.AsyncClient, admin: dict[str, str], miles: float, flagged: bool
) -> None:
    at = await door(client, admin)

    document = await knock(client, admin, at, location=at_door(miles))

    assert document["data"]["distance"] == pytest.approx(miles, abs=0.001)
    assert flags_of(document) == (["far-from-door"] if flagged else [])


async def test_a_knock_that_raises_no_flag_has_no_quality_flags_field(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)

    document = await knock(client, admin, at, qualityFlags=["burst"])

    assert "qualityFlags" not in document["data"], "a client's flags are never taken"


@pytest.mark.parametrize(
    ("confidence", "flagged"), [(0, False), (5, False), (100, False), (100.5, True), (2000, True)]
)
async def test_a_wide_gps_accuracy_radius_is_low_confidence(
    client: httpx.AsyncClient, admin: dict[str, str], confidence: float, flagged: bool
) -> None:
    at = await door(client, admin)

    document = await knock(client, admin, at, location=at_door(confidence=confidence))

    assert flags_of(document) == (["low-gps-confidence"] if flagged else [])


async def test_a_knock_without_a_location_is_judged_by_nothing_it_lacks(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin, coords=None)

    document = await knock(client, admin, at, location=None)

    assert "distance" not in document["data"] and "qualityFlags" not in document["data"]


# --- impossible-speed ---------------------------------------------------------------------


async def test_a_knock_a_mile_away_a_minute_later_is_impossible_speed(
    client: httpx.AsyncClient, settings: Settings, tenant: Tenant, admin: dict[str, str]
) -> None:
    me = canvasser(settings, tenant)
    here, there, later = (
        await door(client, admin),
        await door(client, admin),
        await door(client, admin),
    )

    first = await knock(client, me, here, timestamp=at_time(0))
    # 1 mile in 60 s is 60 mph; 1 mile in 10 minutes more is 6 mph.
    second = await knock(client, me, there, timestamp=at_time(60), location=at_door(1.0))
    third = await knock(client, me, later, timestamp=at_time(660), location=at_door(2.0))

    assert flags_of(first) == []
    assert flags_of(second) == ["far-from-door", "impossible-speed"]
    assert flags_of(third) == ["far-from-door"]


async def test_speed_is_judged_per_canvasser(
    client: httpx.AsyncClient, settings: Settings, tenant: Tenant, admin: dict[str, str]
) -> None:
    here, there = await door(client, admin), await door(client, admin)

    await knock(client, canvasser(settings, tenant), here, timestamp=at_time(0))
    other = await knock(
        client, canvasser(settings, tenant), there, timestamp=at_time(60), location=at_door(1.0)
    )

    assert "impossible-speed" not in flags_of(other)


async def test_a_knock_that_syncs_late_is_held_against_the_next_one(
    client: httpx.AsyncClient, settings: Settings, tenant: Tenant, admin: dict[str, str]
) -> None:
    me = canvasser(settings, tenant)
    here, there = await door(client, admin), await door(client, admin)

    newer = await knock(client, me, there, timestamp=at_time(60), location=at_door(1.0))
    older = await knock(client, me, here, timestamp=at_time(0))

    assert "impossible-speed" not in flags_of(newer), "nothing before it was known yet"
    assert flags_of(older) == ["impossible-speed"]


async def test_two_knocks_sent_at_once_are_judged_one_after_the_other(
    client: httpx.AsyncClient, settings: Settings, tenant: Tenant, admin: dict[str, str]
) -> None:
    me = canvasser(settings, tenant)
    here, there = await door(client, admin), await door(client, admin)

    documents = await asyncio.gather(
        knock(client, me, here, timestamp=at_time(0)),
        knock(client, me, there, timestamp=at_time(30), location=at_door(0.2)),
    )

    # 0.2 miles in 30 s is 24 mph: whichever was written second sees the first.
    speeding = [doc for doc in documents if "impossible-speed" in flags_of(doc)]
    assert len(speeding) == 1


# --- burst ------------------------------------------------------------------------------


async def test_the_eleventh_knock_within_a_minute_is_a_burst(
    client: httpx.AsyncClient, settings: Settings, tenant: Tenant, admin: dict[str, str]
) -> None:
    me = canvasser(settings, tenant)
    at = await door(client, admin)

    # Ten knocks within 54 s: no burst yet. One more inside the same minute is.
    first_ten = [await knock(client, me, at, timestamp=at_time(6 * n)) for n in range(10)]
    eleventh = await knock(client, me, at, timestamp=at_time(59.9))

    assert all(flags_of(doc) == [] for doc in first_ten)
    assert flags_of(eleventh) == ["burst"]


async def test_knocks_spread_over_more_than_a_minute_are_no_burst(
    client: httpx.AsyncClient, settings: Settings, tenant: Tenant, admin: dict[str, str]
) -> None:
    me = canvasser(settings, tenant)
    at = await door(client, admin)

    documents = [await knock(client, me, at, timestamp=at_time(6.1 * n)) for n in range(11)]

    assert all("burst" not in flags_of(doc) for doc in documents)


async def test_the_outbox_bulk_flags_its_knocks_whatever_their_order(
    client: httpx.AsyncClient, settings: Settings, tenant: Tenant, admin: dict[str, str]
) -> None:
    me = canvasser(settings, tenant)
    doors = [await door(client, admin) for _ in range(3)]
    # Twelve knocks in twelve seconds, listed newest first, and one far from its door.
    items = [
        interaction(doors[n % 3], timestamp=at_time(11 - n), location=at_door()) for n in range(12)
    ]
    items.append(interaction(doors[0], timestamp=at_time(600), location=at_door(0.5)))

    response = await client.post("/v2/interactions/bulk", json={"data": items}, headers=me)

    assert response.status_code == 207, response.text
    results = response.json()["data"]
    assert all(result["status"] == 201 for result in results)
    bursts = [result for result in results[:12] if "burst" in flags_of(result["document"])]
    assert len(bursts) >= 1, "once eleven are known, each further one is flagged"
    assert flags_of(results[12]["document"]) == ["far-from-door"]


# --- PATCH re-judges --------------------------------------------------------------------


async def test_a_patch_judges_the_knock_again(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    document = await knock(client, admin, at)

    moved = await client.patch(
        f"/v2/interactions/{document['id']}",
        json={"data": [{"op": "replace", "path": "/location", "value": at_door(3.0)}]},
        headers={**admin, **if_match(document)},
    )
    assert moved.status_code == 200, moved.text
    back = await client.patch(
        f"/v2/interactions/{document['id']}",
        json={"data": [{"op": "replace", "path": "/location", "value": at_door()}]},
        headers={**admin, **if_match(moved.json())},
    )

    assert flags_of(moved.json()) == ["far-from-door"]
    assert back.status_code == 200, back.text
    assert "qualityFlags" not in back.json()["data"], "it is not held against itself"


# --- filtering by flag ------------------------------------------------------------------


async def flagged_ids(
    client: httpx.AsyncClient, headers: dict[str, str], campaign_id: str, expression: str
) -> set[str]:
    response = await client.get(
        "/v2/interactions",
        params={"filter": f'/data/campaignId eq "{campaign_id}" and {expression}'},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return {doc["id"] for doc in response.json()["data"]}


async def test_a_filter_on_a_flag_means_the_list_holds_it(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    campaign = at.campaign_id
    clean = await knock(client, admin, at, timestamp=at_time(0))
    far = await knock(client, admin, at, timestamp=at_time(900), location=at_door(1.0))
    vague = await knock(
        client, admin, at, timestamp=at_time(1800), location=at_door(confidence=500)
    )
    both = await knock(
        client, admin, at, timestamp=at_time(2700), location=at_door(1.0, confidence=500)
    )

    assert await flagged_ids(client, admin, campaign, '/data/qualityFlags eq "far-from-door"') == {
        far["id"],
        both["id"],
    }
    assert await flagged_ids(client, admin, campaign, '/data/qualityFlags neq "far-from-door"') == {
        clean["id"],
        vague["id"],
    }
    assert await flagged_ids(
        client, admin, campaign, '/data/qualityFlags in ["far-from-door", "low-gps-confidence"]'
    ) == {far["id"], vague["id"], both["id"]}
    assert await flagged_ids(
        client, admin, campaign, '/data/qualityFlags nin ["far-from-door", "low-gps-confidence"]'
    ) == {clean["id"]}
    assert await flagged_ids(client, admin, campaign, "/data/qualityFlags eq nil") == {clean["id"]}
    assert await flagged_ids(client, admin, campaign, '/data/qualityFlags eq "burst"') == set()


async def test_a_flag_filter_works_in_the_bracket_form_too(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    far = await knock(client, admin, at, location=at_door(1.0))
    await knock(client, admin, at, timestamp=at_time(3600))

    response = await client.get(
        "/v2/interactions",
        params={
            "filter[/data/qualityFlags]": "far-from-door",
            "filter[/data/campaignId]": at.campaign_id,
        },
        headers=admin,
    )

    assert response.status_code == 200, response.text
    assert [doc["id"] for doc in response.json()["data"]] == [far["id"]]


async def test_one_canvassers_flagged_knocks_are_one_filter_away(
    client: httpx.AsyncClient, settings: Settings, tenant: Tenant, admin: dict[str, str]
) -> None:
    me, other = canvasser(settings, tenant), canvasser(settings, tenant)
    at = await door(client, admin)
    mine = await knock(client, me, at, location=at_door(1.0))
    await knock(client, me, at, timestamp=at_time(3600))
    await knock(client, other, at, location=at_door(1.0))
    sub = mine["meta"]["createdBy"]

    found = await flagged_ids(
        client, admin, at.campaign_id, f'/meta/createdBy eq "{sub}" and /data/qualityFlags neq nil'
    )

    assert found == {mine["id"]}


@pytest.mark.parametrize(
    "expression",
    [
        '/data/qualityFlags gt "burst"',
        '/data/qualityFlags like "far*"',
        '/data/qualityFlags between "a","b"',
        "/data/qualityFlags eq /data/campaignId",
    ],
)
async def test_ordering_a_list_of_flags_is_a_clear_400(
    client: httpx.AsyncClient, admin: dict[str, str], expression: str
) -> None:
    response = await client.get("/v2/interactions", params={"filter": expression}, headers=admin)

    body = assert_problem(response, 400, "BAD_FILTER")
    assert "is a list" in body["detail"]


# --- the indexes serve both reads -----------------------------------------------------


# A tenant with many knocks, one in a hundred flagged, so the planner chooses as it
# would at scale (the table is analysed after the insert).
_MANY_KNOCKS = """
INSERT INTO interactions (customer_id, id, security_group_id, data, created, modified,
                          created_by, modified_by, etag)
SELECT $1::uuid, gen_random_uuid(), $1::uuid,
       jsonb_build_object('campaignId', $1::uuid::text, 'timestamp', '2026-10-01T00:00:00.000Z')
       || CASE WHEN n % 100 = 0 THEN '{"qualityFlags": ["burst"]}'::jsonb ELSE '{}' END,
       now(), now(), md5('user' || (n % 40))::uuid, $1::uuid, 'x'
FROM generate_series(1, 20000) AS n
"""


async def plan(database_url: str, sql: str, *args: object) -> str:
    """The plan PostgreSQL chooses for a tenant with 20 000 knocks."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(_MANY_KNOCKS, args[0])
        await conn.execute("ANALYZE interactions")
        rows = await conn.fetch("EXPLAIN " + sql, *args)
    finally:
        await conn.close()
    return "\n".join(row[0] for row in rows)


async def test_a_flag_filter_is_served_by_the_gin_index(database_url: str) -> None:
    params = Params([uuid.uuid4()])
    where = compile_filter(
        parse_filter('/data/qualityFlags eq "burst"'), INTERACTIONS.field_policy, params
    )
    values = [json.dumps(value) if isinstance(value, list) else value for value in params.values]

    found = await plan(
        database_url,
        f"SELECT id FROM interactions WHERE customer_id = $1 AND NOT is_deleted AND {where}",
        *values,
    )

    assert "ix_interactions_quality_flags" in found, found


async def test_a_knocks_neighbours_are_read_through_the_canvasser_indexes(
    database_url: str,
) -> None:
    # The statement a knock runs: its door's record (locked) and the canvasser's knocks.
    found = await plan(
        database_url,
        interactions._knocks_and_door_sql(10),
        uuid.uuid4(),
        str(uuid.uuid4()),
        str(uuid.uuid4()),
        uuid.UUID(hashlib.md5(b"user0").hexdigest()),
        uuid.uuid4(),
        T0,
        "2026-11-28T13:59:00.000Z",
        at_time(60),
    )

    # Each of the four LIMITed reads goes through one of the canvasser's own indexes
    # (which one for the located sides depends on the table's statistics), never
    # through a scan of the canvasser's or the tenant's history.
    scans = [line for line in found.splitlines() if " on interactions" in line]
    assert len(scans) == 4, found
    assert all("Index Scan" in line and "ix_interactions_canvasser_" in line for line in scans), (
        found
    )
