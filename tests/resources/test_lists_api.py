"""Lists through HTTP (SPEC §9): CRUD, the server's contactsCount, roles, tenancy, since."""

from __future__ import annotations

import uuid

import httpx

from tests.builders import ETAG, assert_problem, create, if_match
from tests.conftest import Tenant
from tests.documents.test_change_feed_api import Feed
from tests.list_builders import LISTS, ORGANIZATION, a_list, get_list, new_list


async def test_create_then_read_a_list_with_a_count_of_zero(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await create(client, LISTS, a_list(description="Every door"), admin)

    read = await get_list(client, admin, created["id"])

    assert read == created
    assert read["data"] == {
        "organizationId": ORGANIZATION,
        "name": "Main Street",
        "description": "Every door",
        "contactsCount": 0,
    }
    assert read["meta"]["resource"] == "lists"
    assert ETAG.match(read["meta"]["etag"])


async def test_contacts_count_is_the_servers_not_the_clients(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await create(client, LISTS, a_list(contactsCount=42), admin)
    assert created["data"]["contactsCount"] == 0

    patch = [{"op": "replace", "path": "/contactsCount", "value": 7}]
    response = await client.patch(
        f"{LISTS}/{created['id']}", json={"data": patch}, headers={**admin, **if_match(created)}
    )

    assert response.status_code == 200, response.text
    assert response.json()["data"]["contactsCount"] == 0


async def test_patch_and_delete_need_the_etag(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await create(client, LISTS, a_list(), admin)
    path = f"{LISTS}/{created['id']}"
    rename = {"data": [{"op": "replace", "path": "/name", "value": "North end"}]}

    assert_problem(await client.patch(path, json=rename, headers=admin), 428)
    patched = await client.patch(path, json=rename, headers={**admin, **if_match(created)})
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"]["name"] == "North end"
    assert_problem(await client.delete(path, headers={**admin, **if_match(created)}), 412)
    assert_problem(await client.delete(path, headers=admin), 428)
    deleted = await client.delete(path, headers={**admin, **if_match(patched.json())})
    assert deleted.status_code == 204
    assert_problem(await client.get(path, headers=admin), 404)


async def test_a_client_chosen_id_is_kept(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    list_id = str(uuid.uuid4())

    assert await new_list(client, admin, list_id) == list_id


async def test_bad_lists_are_refused_naming_the_field(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    cases = {
        "/data/name": {"organizationId": ORGANIZATION},
        "/data/organizationId": {"name": "x", "organizationId": "not-a-uuid"},
        "/data/colour": {"name": "x", "organizationId": ORGANIZATION, "colour": "red"},
    }
    for path, data in cases.items():
        body = assert_problem(await client.post(LISTS, json={"data": data}, headers=admin), 400)
        assert path in [error["path"] for error in body["errors"]], body
    blank = await client.post(LISTS, json=a_list(name="   "), headers=admin)
    assert_problem(blank, 400)
    long_name = await client.post(LISTS, json=a_list(name="x" * 1001), headers=admin)
    assert_problem(long_name, 400)
    assert (
        await client.post(LISTS, json=a_list(name="x" * 1000), headers=admin)
    ).status_code == 201


async def test_viewers_read_and_only_admins_write(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    list_id = await new_list(client, admin)
    viewer = tenant.headers("viewer")
    canvasser = tenant.headers("canvasser")

    assert (await client.get(f"{LISTS}/{list_id}", headers=viewer)).status_code == 200
    assert (await client.get(LISTS, headers=viewer)).status_code == 200
    for headers in (viewer, canvasser):
        refused = assert_problem(await client.post(LISTS, json=a_list(), headers=headers), 403)
        assert "insert@lists" in refused["detail"]


async def test_another_tenants_list_is_not_found(
    client: httpx.AsyncClient, admin: dict[str, str], other_tenant: Tenant
) -> None:
    list_id = await new_list(client, admin)
    theirs = other_tenant.headers("admin")

    assert_problem(await client.get(f"{LISTS}/{list_id}", headers=theirs), 404)
    assert (await client.get(LISTS, headers=theirs)).json()["data"] == []


async def test_lists_filter_and_follow_the_change_feed(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    kept = await new_list(client, admin, name="Kept")
    gone = await create(client, LISTS, a_list(name="Gone"), admin)
    named = await client.get(LISTS, params={"filter[/data/name]": "Kept"}, headers=admin)
    assert [document["id"] for document in named.json()["data"]] == [kept]
    feed = Feed(client, LISTS, admin)
    await feed.until({kept, gone["id"]})

    await client.delete(f"{LISTS}/{gone['id']}", headers={**admin, **if_match(gone)})
    changes = await feed.until({gone["id"]})

    assert [change["meta"]["isDeleted"] for change in changes] == [True]
