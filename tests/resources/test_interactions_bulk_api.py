"""POST /v2/interactions/bulk: the phone's outbox in one call, each knock on its own (207)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from polis_api.config import Settings
from tests.builders import assert_problem
from tests.canvassing import door, door_record, interaction, interactions_of
from tests.conftest import Tenant

BULK = "/v2/interactions/bulk"
T1 = "2024-05-01T10:00:00.000Z"
T2 = "2024-05-01T11:00:00.000Z"
T3 = "2024-05-01T12:00:00.000Z"


def _with_id(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "id": str(uuid.uuid4())}


async def _bulk(
    client: httpx.AsyncClient, items: list[Any], headers: dict[str, str]
) -> dict[str, Any]:
    response = await client.post(BULK, json={"data": items}, headers=headers)
    assert response.status_code == 207, response.text
    assert response.headers["content-type"].startswith("application/json")
    answer: dict[str, Any] = response.json()
    assert [item["index"] for item in answer["data"]] == list(range(len(items)))
    return answer


def _statuses(answer: dict[str, Any]) -> list[int]:
    return [item["status"] for item in answer["data"]]


async def test_each_item_answers_for_itself_and_a_bad_one_fails_alone(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    first, second = await door(client, admin), await door(client, admin)
    missing_campaign = interaction(first, campaignId=None)
    bad_timestamp = interaction(second, timestamp="yesterday")
    items = [interaction(first), missing_campaign, interaction(second), bad_timestamp]

    answer = await _bulk(client, items, admin)

    assert _statuses(answer) == [201, 400, 201, 400]
    assert answer["meta"] == {"created": 2, "replayed": 0, "failed": 2}
    for index in (0, 2):
        stored = await client.get(
            f"/v2/interactions/{answer['data'][index]['document']['id']}", headers=admin
        )
        assert answer["data"][index]["document"] == stored.json()
        assert "error" not in answer["data"][index]
    for index, item in ((1, missing_campaign), (3, bad_timestamp)):
        single = await client.post("/v2/interactions", json=item, headers=admin)
        # The same problem, but for "instance": that names the single request.
        problem = assert_problem(single, 400, "VALIDATION_ERROR")
        assert answer["data"][index]["error"] == {
            k: v for k, v in problem.items() if k != "instance"
        }
        assert "document" not in answer["data"][index]
    assert len(await interactions_of(client, admin, first.campaign_id)) == 1
    assert len(await interactions_of(client, admin, second.campaign_id)) == 1
    for at in (first, second):
        record = await door_record(client, admin, at)
        assert record is not None and record["data"]["contacted"] is True


async def test_items_that_are_not_interactions_fail_alone(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)

    answer = await _bulk(client, [42, "knock", [], {"data": 1}, interaction(at)], admin)

    assert _statuses(answer) == [400, 400, 400, 400, 201]
    for item in answer["data"][:4]:
        assert item["error"]["code"] == "VALIDATION_ERROR"


async def test_an_item_id_repeated_with_the_same_body_is_a_replay(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    items = [
        _with_id(interaction(at, timestamp=T1)),
        {"data": interaction(at, timestamp=T2), "id": str(uuid.uuid4())},
    ]
    first = await _bulk(client, items, admin)
    record = await door_record(client, admin, at)

    again = await _bulk(client, items, admin)

    assert _statuses(first) == [201, 201]
    assert [item["document"]["id"] for item in first["data"]] == [items[0]["id"], items[1]["id"]]
    assert _statuses(again) == [200, 200]
    assert again["meta"] == {"created": 0, "replayed": 2, "failed": 0}
    assert [item["document"] for item in again["data"]] == [
        item["document"] for item in first["data"]
    ]
    after = await door_record(client, admin, at)
    assert after is not None and record is not None
    assert after["meta"]["etag"] == record["meta"]["etag"], "a replay writes nothing"
    assert len(await interactions_of(client, admin, at.campaign_id)) == 2


async def test_an_item_id_with_another_body_is_a_409_for_that_item(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    taken = _with_id(interaction(at, timestamp=T1))
    await _bulk(client, [taken], admin)

    answer = await _bulk(
        client, [{**taken, "successful": True}, _with_id(interaction(at, timestamp=T2))], admin
    )

    assert _statuses(answer) == [409, 201]
    assert answer["data"][0]["error"]["code"] == "CONFLICT"
    assert taken["id"] in answer["data"][0]["error"]["detail"]
    stored = await client.get(f"/v2/interactions/{taken['id']}", headers=admin)
    assert stored.json()["data"]["successful"] is False, "the first body stays"


async def test_the_door_follows_the_latest_timestamp_whatever_the_order(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    items = [
        _with_id(interaction(at, timestamp=T2, unavailable=True, unavailableReason="Come Back")),
        _with_id(interaction(at, timestamp=T3, unavailable=False, successful=True)),
        _with_id(interaction(at, timestamp=T1, unavailable=True, unavailableReason="Not Home")),
    ]

    answer = await _bulk(client, items, admin)

    assert _statuses(answer) == [201, 201, 201]
    record = await door_record(client, admin, at)
    assert record is not None
    assert record["data"]["state"] == "contacted-available-successful"
    assert record["data"]["lastInteraction"] == {"interactionId": items[1]["id"], "timestamp": T3}


async def test_another_tenants_campaign_or_household_is_refused_per_item(
    client: httpx.AsyncClient, admin: dict[str, str], other_tenant: Tenant
) -> None:
    mine = await door(client, admin)
    theirs_headers = other_tenant.headers("admin")
    theirs = await door(client, theirs_headers)
    items = [
        interaction(mine, campaignId=theirs.campaign_id),
        interaction(mine, householdId=theirs.household_id),
        interaction(theirs),
        interaction(mine),
    ]

    answer = await _bulk(client, items, admin)

    assert _statuses(answer) == [400, 400, 400, 201]
    paths = [answer["data"][i]["error"]["errors"][0]["path"] for i in range(3)]
    assert paths == ["/data/campaignId", "/data/householdId", "/data/campaignId"]
    for item in answer["data"][:3]:
        assert (
            "your tenant" in item["error"]["detail"]
            or "does not match" in (item["error"]["detail"])
        )
    assert await interactions_of(client, theirs_headers, theirs.campaign_id) == []
    assert await door_record(client, theirs_headers, theirs) is None
    stored = await interactions_of(client, admin, mine.campaign_id)
    assert [doc["id"] for doc in stored] == [answer["data"][3]["document"]["id"]]


async def test_at_most_max_bulk_items(settings: Settings, tenant: Tenant) -> None:
    from polis_api.app import create_app

    small = create_app(settings.model_copy(update={"max_bulk_items": 3}))
    admin = tenant.headers("admin")
    async with LifespanManager(small):
        transport = httpx.ASGITransport(app=small, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://polis.test") as client:
            at = await door(client, admin)
            four = [interaction(at, timestamp=f"2024-05-01T1{n}:00:00.000Z") for n in range(4)]

            too_many = await client.post(BULK, json={"data": four}, headers=admin)
            problem = assert_problem(too_many, 413, "PAYLOAD_TOO_LARGE")
            assert "3" in problem["detail"]
            assert await interactions_of(client, admin, at.campaign_id) == []

            three = await _bulk(client, four[:3], admin)
            assert three["meta"] == {"created": 3, "replayed": 0, "failed": 0}
            assert len(await interactions_of(client, admin, at.campaign_id)) == 3


async def test_a_whole_body_that_is_not_a_list_of_items_is_400(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for body in [{}, {"data": {}}, {"data": "x"}, []]:
        assert_problem(await client.post(BULK, json=body, headers=admin), 400, "VALIDATION_ERROR")
    empty = await _bulk(client, [], admin)
    assert empty == {"data": [], "meta": {"created": 0, "replayed": 0, "failed": 0}}


async def test_canvassers_may_send_their_outbox_and_viewers_may_not(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    item = interaction(at)

    viewer = await client.post(BULK, json={"data": [item]}, headers=tenant.headers("viewer"))
    anonymous = await client.post(BULK, json={"data": [item]})
    canvasser = await _bulk(client, [item], tenant.headers("canvasser"))

    assert "insert@interactions" in assert_problem(viewer, 403, "FORBIDDEN")["detail"]
    assert_problem(anonymous, 401, "UNAUTHORIZED")
    assert _statuses(canvasser) == [201]
    assert len(await interactions_of(client, admin, at.campaign_id)) == 1


async def test_two_identical_outboxes_at_once_store_each_interaction_once(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    doors = [await door(client, admin) for _ in range(3)]
    campaign = doors[0].campaign_id
    items = [
        _with_id(interaction(at, campaignId=campaign, timestamp=t))
        for at in doors
        for t in (T1, T2)
    ]

    answers = await asyncio.gather(*(_bulk(client, items, admin) for _ in range(2)))

    for index in range(len(items)):
        assert sorted(answer["data"][index]["status"] for answer in answers) == [200, 201]
        documents = [answer["data"][index]["document"] for answer in answers]
        assert documents[0] == documents[1]
    stored = await interactions_of(client, admin, campaign)
    assert sorted(doc["id"] for doc in stored) == sorted(item["id"] for item in items)


async def test_two_phones_knocking_the_same_doors_in_other_orders_both_sync(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    # Each knock locks its door: written in input order, these two calls deadlocked.
    first = await door(client, admin)
    doors = [first, *[await door(client, admin, campaign_id=first.campaign_id) for _ in range(4)]]
    for _ in range(3):
        forward = [_with_id(interaction(at, timestamp=T1)) for at in doors]
        backward = [_with_id(interaction(at, timestamp=T2)) for at in reversed(doors)]

        answers = await asyncio.gather(
            *(_bulk(client, items, admin) for items in (forward, backward))
        )

        assert [_statuses(answer) for answer in answers] == [[201] * len(doors)] * 2
    for at in doors:
        record = await door_record(client, admin, at)
        assert record is not None and record["data"]["state"] == "come-back"


async def test_an_idempotency_key_replays_the_whole_call(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    items = [interaction(at, timestamp=T1), interaction(at, campaignId=None)]
    keyed = {**admin, "Idempotency-Key": str(uuid.uuid4())}

    first = await client.post(BULK, json={"data": items}, headers=keyed)
    retry = await client.post(BULK, json={"data": items}, headers=keyed)

    assert first.status_code == retry.status_code == 207
    assert retry.json() == first.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert len(await interactions_of(client, admin, at.campaign_id)) == 1


async def test_other_methods_on_the_bulk_path_are_405(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.get(BULK, headers=admin)

    assert_problem(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["Allow"] == "POST"


async def test_openapi_shows_the_outbox_route_with_an_example(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()

    operation = schema["paths"][BULK]["post"]
    assert "207" in operation["responses"]
    assert {"403", "413"} <= operation["responses"].keys()
    content = operation["requestBody"]["content"]["application/json"]
    example = next(iter(content["examples"].values()))["value"]
    assert example["data"][0]["campaignId"]
    result = operation["responses"]["207"]["content"]["application/json"]["schema"]
    assert result["$ref"].startswith("#/components/schemas/ItemResultsOut")


async def test_a_flat_interaction_may_name_its_id(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    chosen = str(uuid.uuid4())

    response = await client.post(
        "/v2/interactions", json={**interaction(at), "id": chosen}, headers=admin
    )

    assert response.status_code == 201, response.text
    assert response.json()["id"] == chosen
    assert "id" not in response.json()["data"]
