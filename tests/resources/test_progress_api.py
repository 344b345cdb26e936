"""GET /v1/campaigns/{id}/progress: counts equal to counting the documents (docs/progress.md).

Every expectation is computed here, independently, from what the list routes answer
(door records and interactions), never from the progress code itself.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from polis_api.auth import mint_token
from polis_api.config import Settings
from polis_api.resources import progress_sql
from tests.builders import assert_problem, create, if_match
from tests.canvassing import (
    Door,
    door,
    door_record,
    interaction,
    new_campaign,
    put_door,
    status_ids,
)
from tests.conftest import Tenant, client_with
from tests.geo_builders import SQUARE, TURFS, new_walklist, placed_door, turf

SURVEY_ID = "375d437b-3b47-4940-b43d-be8daec4afff"
QUESTION = "q-sign"
OTHER_QUESTION = "q-issues"


def progress_url(campaign_id: str) -> str:
    return f"/v1/campaigns/{campaign_id}/progress"


async def progress(
    client: httpx.AsyncClient, headers: dict[str, str], campaign_id: str, **params: str
) -> dict[str, Any]:
    response = await client.get(progress_url(campaign_id), params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"data", "meta"} and set(body["meta"]) == {"asOf"}
    return body["data"]


def answers(option: str | None = None, options: list[str] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"questionId": QUESTION}
    if option is not None:
        response["optionId"] = option
    if options is not None:
        response["optionIds"] = options
    return {"surveyId": SURVEY_ID, "responses": {QUESTION: response}}


def knock(at: Door, day: int, **data: Any) -> dict[str, Any]:
    body = interaction(at, timestamp=f"2026-11-{day:02d}T10:00:00.000Z", **data)
    body.pop("unavailableReason", None)
    return body


async def expected(
    client: httpx.AsyncClient, headers: dict[str, str], campaign_id: str
) -> dict[str, Any]:
    """The progress answer, counted by hand from the list routes."""
    doors_response = await client.get(
        f"/v1/campaigns/{campaign_id}/contact-households", params={"limit": 1000}, headers=headers
    )
    assert doors_response.status_code == 200, doors_response.text
    records = [doc["data"] for doc in doors_response.json()["data"]]
    knocks_response = await client.get(
        "/v2/interactions",
        params={"filter[/data/campaignId]": campaign_id, "limit": 1000},
        headers=headers,
    )
    assert knocks_response.status_code == 200, knocks_response.text
    knocks = knocks_response.json()["data"]
    states = await _contact_states(client, headers)

    def outcome(data: dict[str, Any]) -> tuple[bool, bool]:
        if data.get("statusId") is not None:
            state = states[data["statusId"]]
            return not state.startswith("not-contacted-"), state == SUCCESS
        return True, not data["unavailable"] and data.get("successful") is True

    by_day: dict[str, Counter[str]] = defaultdict(Counter)
    by_user: dict[str, Counter[str]] = defaultdict(Counter)
    surveys: dict[str, Counter[str]] = defaultdict(Counter)
    for doc in knocks:
        contacted, successful = outcome(doc["data"])
        for tally in (by_day[doc["data"]["timestamp"][:10]], by_user[doc["meta"]["createdBy"]]):
            tally.update(interactions=1, contacted=int(contacted), successful=int(successful))
        for question, response in doc["data"]["survey"].get("responses", {}).items():
            named = {response.get("optionId"), *response.get("optionIds", [])} - {None}
            surveys[question].update(named)
    contacted_doors = sum(1 for r in records if r["contacted"])
    return {
        "doors": len(records),
        "contacted": contacted_doors,
        "contactRate": contacted_doors / len(records) if records else 0.0,
        "successful": sum(1 for r in records if r["successful"]),
        "byState": dict(Counter(r["state"] for r in records)),
        "byStatus": dict(Counter(r["statusId"] for r in records if r["statusId"])),
        "byDay": [
            {"date": day, "interactions": c["interactions"], "contacted": c["contacted"]}
            for day, c in sorted(by_day.items())
        ],
        "byCanvasser": sorted(
            (
                {"userId": user, **{k: c[k] for k in ("interactions", "contacted", "successful")}}
                for user, c in by_user.items()
            ),
            key=lambda row: (-row["interactions"], row["userId"]),
        ),
        "surveys": {question: dict(options) for question, options in surveys.items() if options},
    }


SUCCESS = "contacted-available-successful"


async def _contact_states(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, str]:
    response = await client.get("/v1/statuses", params={"limit": 1000}, headers=headers)
    assert response.status_code == 200, response.text
    return {doc["id"]: doc["data"]["contactState"] for doc in response.json()["data"]}


async def test_a_new_campaign_counts_nothing(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)

    assert await progress(client, admin, campaign) == {
        "doors": 0,
        "contacted": 0,
        "contactRate": 0.0,
        "successful": 0,
        "byState": {},
        "byStatus": {},
        "byDay": [],
        "byCanvasser": [],
        "surveys": {},
    }


async def test_counts_doors_knocks_canvassers_and_answers(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], settings: Settings
) -> None:
    campaign = await new_campaign(client, admin)
    statuses = await status_ids(client, admin)
    doors = [await door(client, admin, campaign_id=campaign) for _ in range(4)]
    await put_door(client, admin, doors[3], {"type": "high-priority"})
    maria = _canvasser(settings, tenant)
    await create(
        client,
        "/v2/interactions",
        knock(doors[0], 1, successful=True, unavailable=False, survey=answers("yes")),
        maria,
    )
    await create(
        client,
        "/v2/interactions",
        knock(doors[1], 1, unavailable=True, survey=answers(options=["later", "call"])),
        admin,
    )
    await create(
        client,
        "/v2/interactions",
        knock(
            doors[2],
            2,
            unavailable=False,
            statusId=statuses["Default"],
            survey=answers("no", ["no", "call"]),
        ),
        maria,
    )

    counted = await progress(client, admin, campaign)

    assert counted == await expected(client, admin, campaign)
    assert counted["doors"] == 4
    assert counted["contacted"] == 2 and counted["contactRate"] == 0.5
    assert counted["successful"] == 1
    assert counted["byState"] == {
        "contacted-available-successful": 1,
        "contacted-unavailable-other": 1,
        "not-contacted-normal": 1,
        "not-contacted-high-priority": 1,
    }
    # The Default status' state is never-contacted: its knock is no contact.
    assert counted["byDay"] == [
        {"date": "2026-11-01", "interactions": 2, "contacted": 2},
        {"date": "2026-11-02", "interactions": 1, "contacted": 0},
    ]
    assert counted["surveys"] == {QUESTION: {"yes": 1, "later": 1, "call": 2, "no": 1}}


def _canvasser(settings: Settings, tenant: Tenant, sub: uuid.UUID | None = None) -> dict[str, str]:
    token = mint_token(
        settings,
        roles=["canvasser"],
        customer_id=tenant.customer_id,
        sub=sub or uuid.uuid4(),
        ttl_seconds=600,
    )
    return {"Authorization": f"Bearer {token}"}


async def test_exact_after_a_burst_of_concurrent_interactions(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], settings: Settings
) -> None:
    campaign = await new_campaign(client, admin)
    statuses = list((await status_ids(client, admin)).values())
    doors = [await door(client, admin, campaign_id=campaign) for _ in range(8)]
    canvassers = [_canvasser(settings, tenant) for _ in range(5)]
    before = await progress(client, admin, campaign)  # tallies read (and compacted) first

    async def post(n: int) -> None:
        body = knock(
            doors[n % len(doors)],
            1 + n % 3,
            unavailable=n % 4 == 0,
            successful=n % 3 == 0,
            statusId=statuses[n % len(statuses)] if n % 5 == 0 else None,
            survey=answers(f"o{n % 3}", [f"o{n % 2}"]),
        )
        response = await client.post("/v2/interactions", json=body, headers=canvassers[n % 5])
        assert response.status_code == 201, response.text

    await asyncio.gather(*(post(n) for n in range(40)))

    counted = await progress(client, admin, campaign)
    assert before["doors"] == 0
    assert counted == await expected(client, admin, campaign)
    assert sum(row["interactions"] for row in counted["byCanvasser"]) == 40
    assert counted["doors"] == 8


async def test_soft_deleted_interactions_and_doors_stop_counting(
    client: httpx.AsyncClient, admin: dict[str, str], app: FastAPI
) -> None:
    campaign = await new_campaign(client, admin)
    doors = [await door(client, admin, campaign_id=campaign) for _ in range(2)]
    first = await create(
        client,
        "/v2/interactions",
        knock(doors[0], 3, unavailable=False, successful=True, survey=answers("yes")),
        admin,
    )
    await create(client, "/v2/interactions", knock(doors[1], 4, unavailable=True), admin)
    assert (await progress(client, admin, campaign))["byDay"][0]["interactions"] == 1

    deleted = await client.delete(
        f"/v2/interactions/{first['id']}", headers={**admin, **if_match(first)}
    )
    assert deleted.status_code in (200, 204), deleted.text
    # No route deletes a door record; a rollback-like writer in SQL does.
    record = await door_record(client, admin, doors[1])
    assert record is not None
    await app.state.pool.execute(
        "UPDATE contact_household_campaigns SET is_deleted = true WHERE id = $1",
        uuid.UUID(record["id"]),
    )

    counted = await progress(client, admin, campaign)
    assert counted == await expected(client, admin, campaign)
    assert counted["byDay"] == [{"date": "2026-11-04", "interactions": 1, "contacted": 1}]
    assert counted["surveys"] == {}
    assert counted["doors"] == 1  # the second door's record is deleted


async def test_etag_answers_304_until_a_number_changes(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    at = await door(client, admin, campaign_id=campaign)
    first = await client.get(progress_url(campaign), headers=admin)
    etag = first.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")

    same = await client.get(progress_url(campaign), headers={**admin, "If-None-Match": etag})
    assert same.status_code == 304 and same.headers["ETag"] == etag and same.content == b""

    await create(client, "/v2/interactions", knock(at, 5, unavailable=True), admin)
    changed = await client.get(progress_url(campaign), headers={**admin, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert changed.json()["data"]["byDay"] == [
        {"date": "2026-11-05", "interactions": 1, "contacted": 1}
    ]


async def test_a_turf_or_walk_list_counts_only_its_doors(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    inside = [await placed_door(client, admin, campaign, 0.002 * (n + 1), 0.001) for n in range(3)]
    outside = await placed_door(client, admin, campaign, 0.5, 0.5)
    for at in [*inside, outside]:
        await create(
            client,
            "/v2/interactions",
            knock(at, 6, unavailable=False, successful=True, survey=answers("yes")),
            admin,
        )
    square = await create(client, TURFS, turf(campaign, SQUARE), admin)
    walk = await new_walklist(client, admin, campaign, doors=[inside[0].contact_household_id])

    in_turf = await progress(client, admin, campaign, turfId=square["id"])
    on_walk = await progress(client, admin, campaign, walklistId=walk["id"])
    both = await progress(client, admin, campaign, turfId=square["id"], walklistId=walk["id"])
    whole = await progress(client, admin, campaign)

    assert (in_turf["doors"], on_walk["doors"], both["doors"], whole["doors"]) == (3, 1, 1, 4)
    assert in_turf["byDay"] == [{"date": "2026-11-06", "interactions": 3, "contacted": 3}]
    assert on_walk["surveys"] == {QUESTION: {"yes": 1}}
    assert whole == await expected(client, admin, campaign)


async def test_the_tallies_agree_with_counting_the_documents(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """The whole campaign (tallies kept by triggers) equals a turf holding every door
    (counted from the documents at read time)."""
    campaign = await new_campaign(client, admin)
    doors = [await placed_door(client, admin, campaign, 0.001 * (n + 1), 0.001) for n in range(3)]
    for n, at in enumerate(doors * 2):
        await create(
            client,
            "/v2/interactions",
            knock(
                at,
                7 + n % 2,
                unavailable=n % 2 == 1,
                successful=True,
                survey=answers(options=[f"o{n}"]),
            ),
            admin,
        )
    square = await create(client, TURFS, turf(campaign, SQUARE), admin)

    assert await progress(client, admin, campaign) == await progress(
        client, admin, campaign, turfId=square["id"]
    )


async def test_compaction_keeps_the_numbers(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    campaign = await new_campaign(client, admin)
    at = await door(client, admin, campaign_id=campaign)
    for day in range(1, 6):
        await create(
            client,
            "/v2/interactions",
            knock(at, day, unavailable=False, successful=day % 2 == 0),
            admin,
        )
    rows = "SELECT count(*) FROM progress_tallies WHERE campaign_id = $1"
    before = await app.state.pool.fetchval(rows, campaign)
    counted = await progress(client, admin, campaign)

    monkeypatch.setattr(progress_sql, "COMPACT_SLACK", 1)
    assert await progress(client, admin, campaign) == counted
    after = await app.state.pool.fetchval(rows, campaign)

    assert after < before
    assert (
        await progress(client, admin, campaign)
        == counted
        == await expected(client, admin, campaign)
    )


async def test_bad_turf_or_walk_list_is_a_400_naming_it(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    other = await new_campaign(client, admin)
    elsewhere = await create(client, TURFS, turf(other, SQUARE), admin)
    url = progress_url(campaign)
    cases = [
        ({"turfId": "not-a-uuid"}, "turfId"),
        ({"turfId": str(uuid.uuid4())}, "turfId"),
        ({"turfId": elsewhere["id"]}, "turfId"),
        ({"walklistId": "42"}, "walklistId"),
        ({"walklistId": str(uuid.uuid4())}, "walklistId"),
    ]
    for params, name in cases:
        body = assert_problem(await client.get(url, params=params, headers=admin), 400)
        assert body["errors"][0]["path"] == name, body


async def test_another_tenants_campaign_is_404_and_reads_need_permission(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    url = progress_url(campaign)

    assert_problem(await client.get(url, headers=other_tenant.headers("admin")), 404, "NOT_FOUND")
    assert_problem(await client.get(progress_url(str(uuid.uuid4())), headers=admin), 404)
    assert_problem(await client.get(url), 401)
    only_campaigns = tenant.headers(permissions=["read@campaigns"])
    assert_problem(await client.get(url, headers=only_campaigns), 403, "FORBIDDEN")
    assert (await client.get(url, headers=tenant.headers("viewer"))).status_code == 200


async def test_a_restricted_canvasser_sees_progress_of_its_assigned_doors(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], settings: Settings
) -> None:
    campaign = await new_campaign(client, admin)
    doors = [await placed_door(client, admin, campaign, 0.001 * (n + 1), 0.001) for n in range(3)]
    for at in doors:
        await create(client, "/v2/interactions", knock(at, 9, unavailable=True), admin)
    sub = uuid.uuid4()
    await new_walklist(
        client, admin, campaign, assigneeId=str(sub), doors=[doors[0].contact_household_id]
    )
    canvasser = _canvasser(settings, tenant, sub)
    assert (await progress(client, canvasser, campaign))["doors"] == 3

    hidden = await client.patch(
        "/v1/settings", json={"data": {"viewUnassignedData": False}}, headers=admin
    )
    assert hidden.status_code == 200, hidden.text

    mine = await progress(client, canvasser, campaign)
    assert mine["doors"] == 1
    assert mine["byDay"] == [{"date": "2026-11-09", "interactions": 1, "contacted": 1}]
    assert (await progress(client, admin, campaign))["doors"] == 3


async def test_a_writer_outside_the_api_is_counted_too(
    client: httpx.AsyncClient, admin: dict[str, str], app: FastAPI
) -> None:
    """What a rollback does in SQL (soft-delete knocks, put doors back) moves the
    numbers as the API's own writes do: the tallies are kept by triggers."""
    campaign = await new_campaign(client, admin)
    at = await door(client, admin, campaign_id=campaign)
    await create(
        client,
        "/v2/interactions",
        knock(at, 10, unavailable=False, successful=True, survey=answers("yes")),
        admin,
    )
    before = await progress(client, admin, campaign)
    async with app.state.pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE interactions SET is_deleted = true WHERE data ->> 'campaignId' = $1",
            campaign,
        )
        await conn.execute(
            "UPDATE contact_household_campaigns SET data = data || "
            """'{"state": "not-contacted-normal", "contacted": false, "successful": false}'"""
            " WHERE data ->> 'campaignId' = $1",
            campaign,
        )

    after = await progress(client, admin, campaign)

    assert before["successful"] == 1 and before["byDay"] != []
    assert after == await expected(client, admin, campaign)
    assert after["byState"] == {"not-contacted-normal": 1}
    assert (after["byDay"], after["byCanvasser"], after["surveys"]) == ([], [], {})


async def test_the_outbox_bulk_route_counts_only_the_items_that_were_written(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    doors = [await door(client, admin, campaign_id=campaign) for _ in range(2)]
    items = [
        knock(doors[0], 11, unavailable=False, successful=True, survey=answers("yes")),
        {**knock(doors[1], 11, unavailable=True), "timestamp": "yesterday"},  # refused alone
        knock(doors[1], 12, unavailable=True, survey=answers(options=["later"])),
    ]

    response = await client.post("/v2/interactions/bulk", json={"data": items}, headers=admin)

    assert response.status_code == 207, response.text
    assert [item["status"] for item in response.json()["data"]] == [201, 400, 201]
    counted = await progress(client, admin, campaign)
    assert counted == await expected(client, admin, campaign)
    assert [day["interactions"] for day in counted["byDay"]] == [1, 1]
    assert counted["surveys"] == {QUESTION: {"later": 1, "yes": 1}}


async def test_compacting_while_knocks_arrive_loses_and_doubles_nothing(
    client: httpx.AsyncClient,
    tenant: Tenant,
    admin: dict[str, str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every read compacts (slack 0) while 30 knocks are written at once."""
    monkeypatch.setattr(progress_sql, "COMPACT_SLACK", 0)
    campaign = await new_campaign(client, admin)
    doors = [await door(client, admin, campaign_id=campaign) for _ in range(6)]
    canvasser = _canvasser(settings, tenant)

    async def post(n: int) -> None:
        body = knock(doors[n % 6], 1 + n % 4, unavailable=n % 2 == 0, survey=answers(f"o{n % 3}"))
        response = await client.post("/v2/interactions", json=body, headers=canvasser)
        assert response.status_code == 201, response.text

    async def read() -> None:
        response = await client.get(progress_url(campaign), headers=admin)
        assert response.status_code == 200, response.text

    await asyncio.gather(*(post(n) for n in range(30)), *(read() for _ in range(10)))

    counted = await progress(client, admin, campaign)
    assert counted == await expected(client, admin, campaign)
    assert sum(day["interactions"] for day in counted["byDay"]) == 30


async def test_a_part_of_the_campaign_is_bounded_by_a_setting(
    settings: Settings, tenant: Tenant
) -> None:
    async with client_with(settings, max_progress_doors=2) as client:
        admin = tenant.headers()
        campaign = await new_campaign(client, admin)
        doors = [
            await placed_door(client, admin, campaign, 0.001 * (n + 1), 0.001) for n in range(3)
        ]
        pair = [at.contact_household_id for at in doors[:2]]
        at_bound = await new_walklist(client, admin, campaign, doors=pair)
        square = await create(client, TURFS, turf(campaign, SQUARE), admin)

        assert (await progress(client, admin, campaign, walklistId=at_bound["id"]))["doors"] == 2
        past = await client.get(
            progress_url(campaign), params={"turfId": square["id"]}, headers=admin
        )
        body = assert_problem(past, 400, "VALIDATION_ERROR")
        assert "POLIS_MAX_PROGRESS_DOORS" in body["detail"] and "3 doors" in body["detail"]
        assert body["errors"][0]["path"] == "turfId"
        assert (await progress(client, admin, campaign))["doors"] == 3  # the whole: unbounded


async def test_editing_a_status_state_recounts_its_knocks_and_moves_the_etag(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    at = await door(client, admin, campaign_id=campaign)
    sign = await create(
        client,
        "/v1/statuses",
        {
            "data": {
                "name": "Wants a Yard Sign",
                "contactState": "contacted-available-successful",
                "icon": "map-marker",
                "iconColor": "#FFFFFF",
                "pinColor": "#27AE60",
            }
        },
        admin,
    )
    await create(
        client, "/v2/interactions", knock(at, 13, unavailable=False, statusId=sign["id"]), admin
    )
    first = await client.get(progress_url(campaign), headers=admin)
    assert first.json()["data"]["byCanvasser"][0]["successful"] == 1

    patched = await client.patch(
        f"/v1/statuses/{sign['id']}",
        json={
            "data": [{"op": "replace", "path": "/contactState", "value": "not-contacted-normal"}]
        },
        headers={**admin, **if_match(sign)},
    )
    assert patched.status_code == 200, patched.text

    again = await client.get(
        progress_url(campaign), headers={**admin, "If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 200 and again.headers["ETag"] != first.headers["ETag"]
    assert again.json()["data"]["byCanvasser"][0] == {
        "userId": again.json()["data"]["byCanvasser"][0]["userId"],
        "interactions": 1,
        "contacted": 0,
        "successful": 0,
    }
    assert again.json()["data"] == await expected(client, admin, campaign)
