"""POST and PATCH /v2/contacts/bulk: one answer per item (207), dedupe inside and across calls."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from polis_api.config import Settings
from tests.builders import assert_problem, create
from tests.resources.test_contacts_api import CONTACTS, contact, household, listed

BULK = "/v2/contacts/bulk"


def add(path: str, value: Any) -> list[dict[str, Any]]:
    return [{"op": "add", "path": path, "value": value}]


async def test_bulk_create_answers_each_item_and_dedupes_within_the_batch(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    home = await household(client, admin)
    existing = await create(client, CONTACTS, contact(externalId="old"), admin)
    items = [
        contact(externalId="new-1"),
        contact("Bad", externalId="x" * 201),
        contact(externalId="old"),
        contact(externalId="new-1"),
        contact(primaryHouseholdId=home),
        contact(" ada", "LOVELACE ", primaryHouseholdId=home),
        contact(primaryHouseholdId=str(uuid.uuid4())),
        42,
    ]

    response = await client.post(BULK, json={"data": items}, headers=admin)

    assert response.status_code == 207, response.text
    answer = response.json()
    assert [item["status"] for item in answer["data"]] == [201, 400, 200, 200, 201, 200, 400, 400]
    assert [item["index"] for item in answer["data"]] == list(range(8))
    documents = [item.get("document") for item in answer["data"]]
    assert documents[2] == existing
    assert documents[3]["id"] == documents[0]["id"]
    assert documents[5]["id"] == documents[4]["id"]
    assert answer["data"][6]["error"]["errors"][0]["path"] == "/data/primaryHouseholdId"
    assert answer["meta"] == {"created": 2, "replayed": 3, "failed": 3}
    assert len(await listed(client, admin, {})) == 3


async def test_bulk_items_answer_as_their_single_create_would(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    chosen = str(uuid.uuid4())
    items = [
        {"id": chosen, **contact("Chosen", externalId="c-1")},
        {"id": chosen, **contact("Chosen", externalId="c-1")},
        {"id": chosen, **contact("Other", externalId="c-2")},
        contact(notes="nul \x00 inside"),
        contact("Slash", notes="a literal \\u0000 is text"),
        {**contact(externalId="c-3"), "meta": {}},
        {**contact(externalId="c-4"), "customerId": str(uuid.uuid4())},
        {**contact(externalId="c-5"), "params": {"x": 1}},
        contact("Aged", externalId="c-6", profile={"birthdate": "2000-01-01"}),
    ]

    response = await client.post(BULK, json={"data": items}, headers=admin)

    answer = response.json()["data"]
    assert [item["status"] for item in answer] == [201, 200, 409, 400, 201, 400, 403, 400, 201]
    assert answer[0]["document"]["id"] == chosen == answer[1]["document"]["id"]
    assert answer[3]["error"]["errors"][0]["path"] == "/data/notes"
    assert answer[4]["document"]["data"]["notes"] == "a literal \\u0000 is text"
    assert answer[5]["error"]["errors"][0]["path"] == "/meta"
    assert answer[8]["document"]["data"]["profile"]["age"] >= 26
    for item in (answer[0], answer[4], answer[8]):
        stored = await client.get(f"{CONTACTS}/{item['document']['id']}", headers=admin)
        assert stored.json() == item["document"]
        assert stored.headers["etag"] == f'"{item["document"]["meta"]["etag"]}"'


async def test_concurrent_bulk_creates_in_opposite_orders_make_each_contact_once(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    items = [contact(externalId=f"v-{n}") for n in range(30)]

    answers = await asyncio.gather(
        *(
            client.post(BULK, json={"data": items if n % 2 else items[::-1]}, headers=admin)
            for n in range(6)
        )
    )

    assert [a.status_code for a in answers] == [207] * 6
    assert len(await listed(client, admin, {"limit": 100})) == 30


@pytest.fixture
async def small_bulk(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    from polis_api.app import create_app

    application = create_app(settings.model_copy(update={"max_contact_bulk_items": 3}))
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://polis.test") as http:
            yield http


async def test_a_bulk_call_takes_one_item_to_the_setting(
    small_bulk: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at_bound = [contact(externalId=f"b-{n}") for n in range(3)]
    assert (await small_bulk.post(BULK, json={"data": at_bound}, headers=admin)).status_code == 207

    past = await small_bulk.post(BULK, json={"data": [*at_bound, contact()]}, headers=admin)
    assert_problem(past, 413)
    assert_problem(await small_bulk.post(BULK, json={"data": []}, headers=admin), 400)
    patch_past = await small_bulk.patch(BULK, json={"data": [{}] * 4}, headers=admin)
    assert_problem(patch_past, 413)


def test_the_default_bulk_bound_is_a_thousand() -> None:
    assert Settings(jwt_secret="x" * 32).max_contact_bulk_items == 1000


async def test_bulk_patch_answers_each_item(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    one = await create(client, CONTACTS, contact(externalId="p-1"), admin)
    two = await create(client, CONTACTS, contact(externalId="p-2"), admin)
    three = await create(client, CONTACTS, contact(externalId="p-3"), admin)
    items = [
        {"id": one["id"], "etag": one["meta"]["etag"], "data": add("/notes", "called")},
        {"id": str(uuid.uuid4()), "etag": "x", "data": add("/notes", "n")},
        {"id": two["id"], "etag": "stale", "data": add("/notes", "n")},
        {"id": three["id"], "etag": three["meta"]["etag"], "data": add("/notes", 7)},
        {"id": three["id"], "etag": three["meta"]["etag"], "data": [{"op": "jump"}]},
        {"id": three["id"], "data": add("/notes", "n")},
        {
            "id": three["id"],
            "etag": f'"{three["meta"]["etag"]}"',
            "data": [{"op": "test", "path": "/externalId", "value": "nope"}],
        },
    ]

    response = await client.patch(BULK, json={"data": items}, headers=admin)

    assert response.status_code == 207, response.text
    answer = response.json()
    assert [item["status"] for item in answer["data"]] == [200, 404, 412, 400, 400, 400, 409]
    assert answer["data"][0]["document"]["data"]["notes"] == "called"
    assert answer["data"][2]["error"]["code"] == "PRECONDITION_FAILED"
    assert answer["meta"] == {"updated": 1, "failed": 6}
    unchanged = await client.get(f"{CONTACTS}/{three['id']}", headers=admin)
    assert unchanged.json() == three


async def test_bulk_patch_of_the_same_contact_twice_needs_the_new_etag(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    one = await create(client, CONTACTS, contact(externalId="p-9"), admin)
    item = {"id": one["id"], "etag": one["meta"]["etag"], "data": add("/notes", "a")}

    answer = (await client.patch(BULK, json={"data": [item, item]}, headers=admin)).json()

    assert [item["status"] for item in answer["data"]] == [200, 412]


async def test_bulk_needs_its_permissions_and_refuses_other_methods(
    client: httpx.AsyncClient, tenant: Any
) -> None:
    viewer = tenant.headers("viewer")
    post = await client.post(BULK, json={"data": [contact()]}, headers=viewer)
    assert "insert@contacts" in assert_problem(post, 403)["detail"]
    patch = await client.patch(BULK, json={"data": [{}]}, headers=viewer)
    assert "modify@contacts" in assert_problem(patch, 403)["detail"]

    other = await client.get(BULK, headers=tenant.headers())
    assert_problem(other, 405)
    assert other.headers["allow"] == "POST, PATCH"
