"""A list's members through HTTP (SPEC §9): put on, take off, bulk add, the joined read."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from polis_api.app import create_app
from polis_api.config import Settings
from tests.builders import assert_problem, if_match
from tests.conftest import Tenant
from tests.documents.test_change_feed_api import Feed
from tests.list_builders import (
    LISTS,
    Pair,
    get_list,
    members,
    new_contact,
    new_list,
    new_pair,
    put_on,
)

STALE = {"If-Match": '"0-AAAAAAAAAAAAAAAAAAAAAAAAAAA"'}


def bulk_path(list_id: str) -> str:
    return f"{LISTS}/{list_id}/contact-households"


async def test_put_puts_the_pair_on_the_list_once(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    list_id = await new_list(client, admin)
    pair = await new_pair(client, admin)

    first = await client.put(pair.on(list_id), headers=admin)
    again = await client.put(pair.on(list_id), headers=admin)

    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert first.json()["data"] == {
        "listId": list_id,
        "contactId": pair.contact_id,
        "householdId": pair.household_id,
        "contactHouseholdId": pair.contact_household_id,
    }
    assert first.json()["meta"]["resource"] == "list-contact-households"
    assert (await get_list(client, admin, list_id))["data"]["contactsCount"] == 1


async def test_a_pair_that_is_not_associated_is_not_found(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    list_id = await new_list(client, admin)
    one = await new_pair(client, admin)
    other = await new_pair(client, admin)
    crossed = Pair(one.contact_id, other.household_id, "")

    body = assert_problem(await client.put(crossed.on(list_id), headers=admin), 404)

    assert one.contact_id in body["detail"] and other.household_id in body["detail"]
    assert await members(client, admin, list_id) == []


async def test_an_unknown_list_is_not_found(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    pair = await new_pair(client, admin)
    unknown = str(uuid.uuid4())

    assert_problem(await client.put(pair.on(unknown), headers=admin), 404)
    assert_problem(await client.get(bulk_path(unknown), headers=admin), 404)
    bulk = await client.post(bulk_path(unknown), json={"data": [pair.item]}, headers=admin)
    assert_problem(bulk, 404)
    assert_problem(await client.delete(pair.on(unknown), headers=admin), 404)


async def test_another_tenants_list_or_pair_never_links(
    client: httpx.AsyncClient, admin: dict[str, str], other_tenant: Tenant
) -> None:
    theirs = other_tenant.headers("admin")
    my_list = await new_list(client, admin)
    my_pair = await new_pair(client, admin)
    their_list = await new_list(client, theirs)
    their_pair = await new_pair(client, theirs)

    assert_problem(await client.put(my_pair.on(their_list), headers=admin), 404)
    assert_problem(await client.put(their_pair.on(my_list), headers=admin), 404)
    assert_problem(await client.get(bulk_path(their_list), headers=admin), 404)
    assert await members(client, admin, my_list) == []
    assert await members(client, theirs, their_list) == []


async def test_a_pair_naming_a_contact_that_does_not_exist_is_not_found(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    list_id = await new_list(client, admin)
    pair = await new_pair(client, admin)
    ghost = str(uuid.uuid4())
    linked = await client.put(f"/v2/contacts/{ghost}/households/{pair.household_id}", headers=admin)
    assert linked.status_code == 201, linked.text

    body = assert_problem(
        await client.put(
            f"{LISTS}/{list_id}/contacts/{ghost}/households/{pair.household_id}", headers=admin
        ),
        404,
    )

    assert ghost in body["detail"]


async def test_delete_needs_the_members_etag_and_lowers_the_count(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    list_id = await new_list(client, admin)
    pair = await new_pair(client, admin)
    member = await put_on(client, admin, list_id, pair)

    assert_problem(await client.delete(pair.on(list_id), headers=admin), 428)
    assert_problem(await client.delete(pair.on(list_id), headers={**admin, **STALE}), 412)
    deleted = await client.delete(pair.on(list_id), headers={**admin, **if_match(member)})

    assert deleted.status_code == 204
    assert await members(client, admin, list_id) == []
    assert (await get_list(client, admin, list_id))["data"]["contactsCount"] == 0
    gone = await client.delete(pair.on(list_id), headers={**admin, **if_match(member)})
    assert_problem(gone, 404)
    again = await client.put(pair.on(list_id), headers=admin)
    assert again.status_code == 201, "taken off, it can be put on again"


async def test_bulk_answers_each_item_on_its_own(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    list_id = await new_list(client, admin)
    one, two = await new_pair(client, admin), await new_pair(client, admin)
    await put_on(client, admin, list_id, two)
    crossed = Pair(one.contact_id, two.household_id, "")
    items: list[Any] = [one.item, two.item, crossed.item, {"data": {"contactId": "x"}}, 42]

    response = await client.post(bulk_path(list_id), json={"data": items}, headers=admin)

    assert response.status_code == 207, response.text
    answer = response.json()
    assert [item["status"] for item in answer["data"]] == [201, 200, 404, 400, 400]
    assert answer["meta"] == {"created": 1, "replayed": 1, "failed": 3}
    assert answer["data"][0]["document"]["data"]["contactHouseholdId"] == one.contact_household_id
    assert answer["data"][2]["error"]["code"] == "NOT_FOUND"
    assert (await get_list(client, admin, list_id))["data"]["contactsCount"] == 2


async def test_bulk_takes_at_most_max_bulk_items(settings: Settings, tenant: Tenant) -> None:
    from asgi_lifespan import LifespanManager

    small = create_app(settings.model_copy(update={"max_bulk_items": 2}))
    headers = tenant.headers("admin")
    async with LifespanManager(small):
        transport = httpx.ASGITransport(app=small)
        async with httpx.AsyncClient(transport=transport, base_url="http://polis.test") as client:
            list_id = await new_list(client, headers)
            pairs = [await new_pair(client, headers) for _ in range(3)]
            at_bound = {"data": [pair.item for pair in pairs[:2]]}
            past = {"data": [pair.item for pair in pairs]}

            assert_problem(await client.post(bulk_path(list_id), json=past, headers=headers), 413)
            ok = await client.post(bulk_path(list_id), json=at_bound, headers=headers)
            assert ok.status_code == 207, ok.text


async def test_viewers_read_members_and_only_admins_change_them(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    list_id = await new_list(client, admin)
    pair = await new_pair(client, admin)
    member = await put_on(client, admin, list_id, pair)
    viewer = tenant.headers("viewer")

    assert len(await members(client, viewer, list_id)) == 1
    assert_problem(await client.put(pair.on(list_id), headers=viewer), 403)
    bulk = await client.post(bulk_path(list_id), json={"data": [pair.item]}, headers=viewer)
    assert_problem(bulk, 403)
    delete = await client.delete(pair.on(list_id), headers={**viewer, **if_match(member)})
    assert "modify@lists" in assert_problem(delete, 403)["detail"]


async def test_members_embed_their_contact_and_household(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    list_id = await new_list(client, admin)
    pair = await new_pair(client, admin, surname="Lovelace", city="London")
    await put_on(client, admin, list_id, pair)
    contact = (await client.get(f"/v2/contacts/{pair.contact_id}", headers=admin)).json()
    household = (await client.get(f"/v2/households/{pair.household_id}", headers=admin)).json()

    [member] = await members(client, admin, list_id)

    assert member["data"]["contact"] == contact
    assert member["data"]["household"] == household
    assert member["data"]["contactHouseholdId"] == pair.contact_household_id


async def test_filter_and_sort_reach_into_the_embedded_documents(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    list_id = await new_list(client, admin)
    people = [("Carter", "Paris"), ("Adams", "London"), ("Baker", "London")]
    for surname, city in people:
        await put_on(
            client, admin, list_id, await new_pair(client, admin, surname=surname, city=city)
        )
    surname = "/data/contact/data/profile/name/anglican/surname"

    in_london = await members(
        client,
        admin,
        list_id,
        [("filter", '/data/household/data/address/city eq "London"'), ("sort", surname)],
    )
    descending = await members(client, admin, list_id, {"sort": f'["{surname[1:]}","DESC"]'})
    counted = await client.get(
        bulk_path(list_id),
        params={"filter": f'{surname} like "?a*"', "count": "true"},
        headers=admin,
    )

    assert [
        m["data"]["contact"]["data"]["profile"]["name"]["anglican"]["surname"] for m in in_london
    ] == ["Adams", "Baker"]
    assert [m["data"]["household"]["data"]["address"]["city"] for m in descending] == [
        "Paris",
        "London",
        "London",
    ]
    assert counted.json()["meta"]["total"] == 2, "Carter and Baker"
    bad = await client.get(
        bulk_path(list_id), params={"filter": '/data/contact eq "x"'}, headers=admin
    )
    assert_problem(bad, 400)


async def test_the_feed_brings_a_member_again_when_its_contact_changes(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    list_id = await new_list(client, admin)
    pair = await new_pair(client, admin, surname="Before")
    member = await put_on(client, admin, list_id, pair)
    feed = Feed(client, bulk_path(list_id), admin)
    await feed.until({member["id"]})
    contact = (await client.get(f"/v2/contacts/{pair.contact_id}", headers=admin)).json()

    rename = [{"op": "replace", "path": "/profile/name/anglican/surname", "value": "After"}]
    renamed = await client.patch(
        f"/v2/contacts/{pair.contact_id}",
        json={"data": rename},
        headers={**admin, **if_match(contact)},
    )
    assert renamed.status_code == 200, renamed.text
    changes = await feed.until({member["id"]})

    assert [
        c["data"]["contact"]["data"]["profile"]["name"]["anglican"]["surname"] for c in changes
    ] == ["After"]

    household = (await client.get(f"/v2/households/{pair.household_id}", headers=admin)).json()
    moved = [{"op": "replace", "path": "/address/city", "value": "Elsewhere"}]
    await client.patch(
        f"/v2/households/{pair.household_id}",
        json={"data": moved},
        headers={**admin, **if_match(household)},
    )
    changes = await feed.until({member["id"]})
    assert changes[-1]["data"]["household"]["data"]["address"]["city"] == "Elsewhere"

    await client.delete(pair.on(list_id), headers={**admin, **if_match(member)})
    changes = await feed.until({member["id"]})
    assert changes[-1]["meta"]["isDeleted"] is True


async def test_twenty_concurrent_adds_count_exactly(
    client: httpx.AsyncClient, admin: dict[str, str], app: FastAPI
) -> None:
    list_id = await new_list(client, admin)
    pairs = [await new_pair(client, admin) for _ in range(20)]

    answers = await asyncio.gather(*(client.put(p.on(list_id), headers=admin) for p in pairs))
    same = await asyncio.gather(
        *(client.put(pairs[0].on(list_id), headers=admin) for _ in range(20))
    )

    assert [a.status_code for a in answers] == [201] * 20
    assert [a.status_code for a in same] == [200] * 20
    assert (await get_list(client, admin, list_id))["data"]["contactsCount"] == 20
    assert len(await members(client, admin, list_id)) == 20


async def test_twenty_concurrent_adds_of_one_pair_make_one_member(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    list_id = await new_list(client, admin)
    pair = await new_pair(client, admin)

    answers = await asyncio.gather(
        *(client.put(pair.on(list_id), headers=admin) for _ in range(20))
    )

    assert sorted(a.status_code for a in answers) == [200] * 19 + [201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert (await get_list(client, admin, list_id))["data"]["contactsCount"] == 1


async def test_contacts_of_the_builder_are_distinct(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    assert await new_contact(client, admin) != await new_contact(client, admin)
