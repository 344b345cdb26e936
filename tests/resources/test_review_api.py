"""A campaign's review (GET /v1/campaigns/{id}/review) and its rollback through HTTP
(docs/quality.md): the ranking, its window and bounds, and what a rollback does to
each door, its tombstones in the change feed, and that a dry run changes nothing."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from polis_api.config import Settings
from tests.builders import assert_problem
from tests.canvassing import Door, door, door_record, new_campaign, status_ids
from tests.conftest import Tenant
from tests.resources.test_quality_api import at_door, at_time, canvasser, knock

MAX_ROLLBACK = 2
DELIVERY_SECONDS = 60


def sub_of(headers: dict[str, str]) -> str:
    """The ``sub`` of a bearer token: the userId the review names."""
    payload = headers["Authorization"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["sub"])


async def review(
    client: httpx.AsyncClient, headers: dict[str, str], campaign_id: str, **params: Any
) -> httpx.Response:
    return await client.get(f"/v1/campaigns/{campaign_id}/review", params=params, headers=headers)


async def rollback(
    client: httpx.AsyncClient, headers: dict[str, str], campaign_id: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/v1/campaigns/{campaign_id}/review/rollback", json=body, headers=headers
    )


# --- the ranking ------------------------------------------------------------------------


async def test_the_review_ranks_canvassers_by_flagged_share(
    client: httpx.AsyncClient, settings: Settings, tenant: Tenant, admin: dict[str, str]
) -> None:
    ann, bob, cy = (canvasser(settings, tenant) for _ in range(3))
    at = await door(client, admin)
    await knock(client, ann, at, timestamp=at_time(0))
    await knock(client, ann, at, timestamp=at_time(600), location=at_door(1.0))
    await knock(client, bob, at, timestamp=at_time(0), location=at_door(1.0, confidence=900))
    for n in range(3):
        await knock(client, cy, at, timestamp=at_time(600 * n))

    response = await review(client, admin, at.campaign_id)

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"data", "meta"} and set(body["meta"]) == {"asOf"}
    assert body["data"] == [
        {
            "userId": sub_of(bob),
            "interactions": 1,
            "flagged": 1,
            "flaggedShare": 1.0,
            "flags": {"far-from-door": 1, "low-gps-confidence": 1},
        },
        {
            "userId": sub_of(ann),
            "interactions": 2,
            "flagged": 1,
            "flaggedShare": 0.5,
            "flags": {"far-from-door": 1},
        },
        {"userId": sub_of(cy), "interactions": 3, "flagged": 0, "flaggedShare": 0.0, "flags": {}},
    ]


async def test_equal_shares_rank_by_flagged_then_user_id(
    client: httpx.AsyncClient, settings: Settings, tenant: Tenant, admin: dict[str, str]
) -> None:
    one, other, two = (canvasser(settings, tenant) for _ in range(3))
    at = await door(client, admin)
    for headers in (one, other):
        await knock(client, headers, at, timestamp=at_time(0), location=at_door(1.0))
        await knock(client, headers, at, timestamp=at_time(900))
    for n in range(2):
        await knock(client, two, at, timestamp=at_time(900 * n), location=at_door(1.0))
        await knock(client, two, at, timestamp=at_time(900 * n + 450))

    response = await review(client, admin, at.campaign_id)

    ranked = [row["userId"] for row in response.json()["data"]]
    assert ranked == [sub_of(two), *sorted([sub_of(one), sub_of(other)])]


async def test_the_window_takes_from_inclusive_and_to_exclusive(
    client: httpx.AsyncClient, settings: Settings, tenant: Tenant, admin: dict[str, str]
) -> None:
    me = canvasser(settings, tenant)
    at = await door(client, admin)
    for seconds in (0, 600, 1200):
        await knock(client, me, at, timestamp=at_time(seconds))

    response = await review(
        client, admin, at.campaign_id, **{"from": at_time(0), "to": at_time(1200)}
    )

    assert [row["interactions"] for row in response.json()["data"]] == [2]
    later = await review(client, admin, at.campaign_id, **{"from": at_time(1200)})
    assert [row["interactions"] for row in later.json()["data"]] == [1]
    empty = await review(client, admin, at.campaign_id, to=at_time(0))
    assert empty.json()["data"] == []


async def test_the_review_pages_with_limit_and_skip_up_to_the_setting(
    client: httpx.AsyncClient, settings: Settings, tenant: Tenant, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    for _ in range(3):
        await knock(client, canvasser(settings, tenant), at)

    first = await review(client, admin, at.campaign_id, limit=2)
    rest = await review(client, admin, at.campaign_id, limit=2, skip=2)
    most = await review(client, admin, at.campaign_id, limit=settings.max_review_canvassers)
    past = await review(client, admin, at.campaign_id, limit=settings.max_review_canvassers + 1)

    assert len(first.json()["data"]) == 2 and len(rest.json()["data"]) == 1
    ids = {row["userId"] for row in first.json()["data"] + rest.json()["data"]}
    assert ids == {row["userId"] for row in most.json()["data"]} and len(ids) == 3
    assert "POLIS_MAX_REVIEW_CANVASSERS" in assert_problem(past, 400, "VALIDATION_ERROR")["detail"]
    assert_problem(await review(client, admin, at.campaign_id, limit=0), 400)
    assert_problem(await review(client, admin, at.campaign_id, skip=-1), 400)
    assert_problem(await review(client, admin, at.campaign_id, skip=2**63), 400)


@pytest.mark.parametrize(
    "params",
    [
        {"from": "yesterday"},
        {"to": "2026-13-01T00:00:00Z"},
        {"from": at_time(60), "to": at_time(60)},
    ],
)
async def test_a_bad_window_is_a_400(
    client: httpx.AsyncClient, admin: dict[str, str], params: dict[str, str]
) -> None:
    campaign_id = await new_campaign(client, admin)

    assert_problem(await review(client, admin, campaign_id, **params), 400, "VALIDATION_ERROR")


async def test_the_review_of_an_unknown_or_foreign_campaign_is_404(
    client: httpx.AsyncClient, admin: dict[str, str], other_tenant: Tenant
) -> None:
    campaign_id = await new_campaign(client, admin)

    assert_problem(await review(client, admin, str(uuid.uuid4())), 404, "NOT_FOUND")
    assert_problem(await review(client, other_tenant.headers("admin"), campaign_id), 404)
    assert_problem(await review(client, admin, "not-a-uuid"), 400)


# --- rollback ---------------------------------------------------------------------------


class Canvass:
    """Four doors of one campaign: Ann's knocks in the window at three of them, and
    Bob's knocks before and after hers (see each door's comment)."""

    def __init__(self, doors: list[Door], ann: dict[str, str], bob: dict[str, str]) -> None:
        self.alone, self.after_bob, self.before_bob, self.outside = doors
        self.ann, self.bob = ann, bob
        self.campaign_id = doors[0].campaign_id


@pytest.fixture
async def canvass(
    client: httpx.AsyncClient, settings: Settings, tenant: Tenant, admin: dict[str, str]
) -> Canvass:
    campaign_id = await new_campaign(client, admin)
    doors = [await door(client, admin, campaign_id=campaign_id) for _ in range(4)]
    ann, bob = canvasser(settings, tenant), canvasser(settings, tenant)
    seen = Canvass(doors, ann, bob)
    home = {"unavailable": False, "successful": True}
    away = {"unavailable": True, "unavailableReason": "Not Home"}
    # Only Ann ever knocked here: the door goes back to never contacted.
    await knock(client, ann, seen.alone, timestamp=at_time(600), **away)
    # Bob found them home first; Ann's later "not home" is taken back: Bob's stands again.
    await knock(client, bob, seen.after_bob, timestamp=at_time(0), **home)
    await knock(client, ann, seen.after_bob, timestamp=at_time(660), **away)
    # Bob came after Ann: the door follows Bob's knock and stays as it is.
    await knock(client, ann, seen.before_bob, timestamp=at_time(720), **away)
    await knock(client, bob, seen.before_bob, timestamp=at_time(1800), **home)
    # Ann knocked here after the window: kept.
    await knock(client, ann, seen.outside, timestamp=at_time(3600), **away)
    return seen


def window(canvass: Canvass, **extra: Any) -> dict[str, Any]:
    return {"userId": sub_of(canvass.ann), "from": at_time(300), "to": at_time(3600), **extra}


async def snapshot(
    client: httpx.AsyncClient, admin: dict[str, str], canvass: Canvass
) -> list[dict[str, Any] | None]:
    doors = (canvass.alone, canvass.after_bob, canvass.before_bob, canvass.outside)
    return [await door_record(client, admin, at) for at in doors]


async def live_interactions(
    client: httpx.AsyncClient, admin: dict[str, str], campaign_id: str
) -> list[dict[str, Any]]:
    response = await client.get(
        "/v2/interactions", params={"filter[/data/campaignId]": campaign_id}, headers=admin
    )
    assert response.status_code == 200, response.text
    documents: list[dict[str, Any]] = response.json()["data"]
    return documents


async def test_a_dry_run_counts_and_changes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], canvass: Canvass
) -> None:
    before = await snapshot(client, admin, canvass)
    knocks = await live_interactions(client, admin, canvass.campaign_id)

    response = await rollback(client, admin, canvass.campaign_id, **window(canvass, dryRun=True))

    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"interactions": 3, "doors": 2, "dryRun": True}}
    assert await snapshot(client, admin, canvass) == before
    assert await live_interactions(client, admin, canvass.campaign_id) == knocks


async def test_a_rollback_deletes_the_knocks_and_puts_each_door_back(
    client: httpx.AsyncClient, admin: dict[str, str], canvass: Canvass
) -> None:
    before = await snapshot(client, admin, canvass)
    statuses = await status_ids(client, admin)

    response = await rollback(client, admin, canvass.campaign_id, **window(canvass))

    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"interactions": 3, "doors": 2, "dryRun": False}}
    alone, after_bob, before_bob, outside = await snapshot(client, admin, canvass)
    assert alone is not None and after_bob is not None
    assert {key: alone["data"][key] for key in ("state", "statusId", "contacted")} == {
        "state": "not-contacted-normal",
        "statusId": None,
        "contacted": False,
    }
    assert alone["data"]["lastInteraction"] is None
    assert after_bob["data"]["state"] == "contacted-available-successful"
    assert after_bob["data"]["statusId"] == statuses["Successful"]
    assert after_bob["data"]["lastInteraction"]["timestamp"] == at_time(0)
    assert before_bob == before[2], "a door following another knock is left alone"
    assert outside == before[3]
    remaining = await live_interactions(client, admin, canvass.campaign_id)
    assert sorted(doc["data"]["timestamp"] for doc in remaining) == [
        at_time(0),
        at_time(1800),
        at_time(3600),
    ]


async def test_a_second_rollback_of_the_same_window_finds_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], canvass: Canvass
) -> None:
    await rollback(client, admin, canvass.campaign_id, **window(canvass))

    again = await rollback(client, admin, canvass.campaign_id, **window(canvass))

    assert again.json() == {"data": {"interactions": 0, "doors": 0, "dryRun": False}}


async def follow(
    client: httpx.AsyncClient, admin: dict[str, str], params: dict[str, Any], ids: set[str]
) -> tuple[dict[str, dict[str, Any]], str]:
    """Follow the change feed from ``params["since"]`` until every id in ``ids`` came
    (a commit shows once no older transaction, of any database on the server, still
    runs; as in the change feed's own tests, that wait is bounded)."""
    seen: dict[str, dict[str, Any]] = {}
    token = params["since"]
    deadline = time.monotonic() + DELIVERY_SECONDS
    while time.monotonic() < deadline:
        page = await client.get(
            "/v2/interactions", params={**params, "since": token}, headers=admin
        )
        assert page.status_code == 200, page.text
        token = page.json()["meta"]["next"]
        seen |= {doc["id"]: doc for doc in page.json()["data"]}
        if ids <= seen.keys():
            break
        await asyncio.sleep(0.1)
    return seen, token


async def test_rolled_back_knocks_come_as_tombstones_in_the_change_feed(
    client: httpx.AsyncClient, admin: dict[str, str], canvass: Canvass
) -> None:
    knocks = await live_interactions(client, admin, canvass.campaign_id)
    in_window = (at_time(600), at_time(660), at_time(720))
    gone = {doc["id"] for doc in knocks if doc["data"]["timestamp"] in in_window}
    feed = {"filter[/data/campaignId]": canvass.campaign_id, "since": "", "limit": 1000}
    _, token = await follow(client, admin, feed, {doc["id"] for doc in knocks})

    await rollback(client, admin, canvass.campaign_id, **window(canvass))

    changes, _ = await follow(client, admin, {**feed, "since": token}, gone)
    assert set(changes) == gone and len(gone) == 3
    assert all(doc["meta"]["isDeleted"] for doc in changes.values())


async def test_only_an_organiser_may_roll_back(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], canvass: Canvass
) -> None:
    before = await snapshot(client, admin, canvass)

    response = await rollback(client, canvass.ann, canvass.campaign_id, **window(canvass))
    viewer = await rollback(
        client, tenant.headers("viewer"), canvass.campaign_id, **window(canvass, dryRun=True)
    )

    assert "destroy@interactions" in assert_problem(response, 403, "FORBIDDEN")["detail"]
    assert_problem(viewer, 403, "FORBIDDEN")
    assert await snapshot(client, admin, canvass) == before
    assert (await review(client, canvass.ann, canvass.campaign_id)).status_code == 200


@pytest.mark.parametrize(
    "change",
    [
        {"from": at_time(3600), "to": at_time(3600)},
        {"from": at_time(3600), "to": at_time(300)},
        {"userId": "ann"},
        {"userId": None},
        {"to": "tomorrow"},
        {"dryRun": "yes"},
        {"extra": 1},
    ],
)
async def test_a_bad_rollback_is_a_400_and_changes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], canvass: Canvass, change: dict[str, Any]
) -> None:
    before = await snapshot(client, admin, canvass)
    body = {key: value for key, value in {**window(canvass), **change}.items() if value is not None}

    response = await rollback(client, admin, canvass.campaign_id, **body)

    assert_problem(response, 400, "VALIDATION_ERROR")
    assert await snapshot(client, admin, canvass) == before


async def test_a_rollback_of_an_unknown_campaign_is_404(
    client: httpx.AsyncClient, admin: dict[str, str], canvass: Canvass
) -> None:
    response = await rollback(client, admin, str(uuid.uuid4()), **window(canvass))

    assert_problem(response, 404, "NOT_FOUND")


async def test_the_enveloped_body_works_too(
    client: httpx.AsyncClient, admin: dict[str, str], canvass: Canvass
) -> None:
    response = await client.post(
        f"/v1/campaigns/{canvass.campaign_id}/review/rollback",
        json={"data": window(canvass, dryRun=True)},
        headers=admin,
    )

    assert response.json() == {"data": {"interactions": 3, "doors": 2, "dryRun": True}}


@pytest.fixture
async def bounded(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    from polis_api.app import create_app

    app = create_app(settings.model_copy(update={"max_rollback_interactions": MAX_ROLLBACK}))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://polis.test") as http:
            yield http


async def test_a_rollback_takes_at_most_the_setting(
    bounded: httpx.AsyncClient, admin: dict[str, str], canvass: Canvass
) -> None:
    before = await snapshot(bounded, admin, canvass)

    # Ann has three knocks in the window: more than the bound, so nothing happens.
    past_it = await rollback(bounded, admin, canvass.campaign_id, **window(canvass))

    body = assert_problem(past_it, 400, "VALIDATION_ERROR")
    assert "POLIS_MAX_ROLLBACK_INTERACTIONS" in body["detail"]
    assert await snapshot(bounded, admin, canvass) == before
    assert len(await live_interactions(bounded, admin, canvass.campaign_id)) == 6
    # Two of them fit.
    at_the_bound = await rollback(
        bounded, admin, canvass.campaign_id, **window(canvass, to=at_time(700))
    )
    assert at_the_bound.json()["data"] == {"interactions": 2, "doors": 2, "dryRun": False}


async def test_a_canvasser_kept_to_its_doors_reviews_only_what_it_may_read(
    client: httpx.AsyncClient, settings: Settings, tenant: Tenant, admin: dict[str, str]
) -> None:
    me = canvasser(settings, tenant)
    at = await door(client, admin)
    await knock(client, me, at)
    hidden = await client.patch(
        "/v1/settings", json={"data": {"viewUnassignedData": False}}, headers=admin
    )
    assert hidden.status_code == 200, hidden.text

    mine = await review(client, me, at.campaign_id)
    everyone = await review(client, admin, at.campaign_id)

    assert mine.status_code == 200, mine.text
    assert mine.json()["data"] == [], "no walk list names this door for it"
    assert [row["userId"] for row in everyone.json()["data"]] == [sub_of(me)]
