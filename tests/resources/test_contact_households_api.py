"""Contact-households through HTTP: who lives behind which door (SPEC §2)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.builders import ETAG, TIMESTAMP, assert_problem, create, if_match
from tests.conftest import Tenant

HOUSEHOLDS = "/v2/households"
LINKS = "/v1/contact-households"
BULK = "/v2/contacts/households/bulk"
STALE = {"If-Match": '"0-AAAAAAAAAAAAAAAAAAAAAAAAAAA"'}


def pair(contact_id: object, household_id: object) -> str:
    return f"/v2/contacts/{contact_id}/households/{household_id}"


def item(contact_id: object, household_id: object) -> dict[str, Any]:
    return {"data": {"contactId": str(contact_id), "householdId": str(household_id)}}


async def new_household(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    body = {"data": {"address": {"streetName": "Main Street", "number": 1}}}
    doc = await create(client, HOUSEHOLDS, body, headers)
    household_id: str = doc["id"]
    return household_id


async def listed(
    client: httpx.AsyncClient, headers: dict[str, str], params: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    response = await client.get(LINKS, params=params or {}, headers=headers)
    assert response.status_code == 200, response.text
    documents: list[dict[str, Any]] = response.json()["data"]
    return documents


async def stored_rows(app: FastAPI, tenant: Tenant) -> int:
    """Rows in the table, deleted ones included."""
    async with app.state.pool.acquire() as conn:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM contact_households WHERE customer_id = $1", tenant.customer_id
        )
    return count


# --- PUT and GET -----------------------------------------------------------------------------


async def test_put_creates_then_returns_the_same_document(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], app: FastAPI
) -> None:
    household_id = await new_household(client, admin)
    contact_id = uuid.uuid4()

    first = await client.put(pair(contact_id, household_id), headers=admin)

    assert first.status_code == 201, first.text
    doc = first.json()
    assert doc["data"] == {"contactId": str(contact_id), "householdId": household_id}
    assert doc["customerId"] == str(tenant.customer_id)
    assert doc["meta"]["resource"] == "contact-households"
    assert doc["meta"]["createdBy"] == str(tenant.user_id)
    assert TIMESTAMP.match(doc["meta"]["created"]) and ETAG.match(doc["meta"]["etag"])
    assert first.headers["ETag"] == f'"{doc["meta"]["etag"]}"'

    again = await client.put(pair(contact_id, household_id), headers=admin)

    assert again.status_code == 200, again.text
    assert again.json() == doc
    got = await client.get(f"{LINKS}/{doc['id']}", headers=admin)
    assert got.status_code == 200 and got.json() == doc
    assert got.headers["ETag"] == first.headers["ETag"]
    cached = await client.get(f"{LINKS}/{doc['id']}", headers={**admin, **if_match(doc)})
    assert cached.status_code == 200
    unchanged = await client.get(
        f"{LINKS}/{doc['id']}", headers={**admin, "If-None-Match": got.headers["ETag"]}
    )
    assert unchanged.status_code == 304
    assert await listed(client, admin) == [doc]
    assert await stored_rows(app, tenant) == 1


async def test_upper_case_ids_name_the_same_pair(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    household_id = await new_household(client, admin)
    contact_id = uuid.uuid4()
    doc = (await client.put(pair(contact_id, household_id), headers=admin)).json()

    shouted = await client.put(pair(str(contact_id).upper(), household_id.upper()), headers=admin)

    assert shouted.status_code == 200, shouted.text
    assert shouted.json() == doc


async def test_one_contact_many_households_and_one_household_many_contacts(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    home, office = await new_household(client, admin), await new_household(client, admin)
    alice, bob = uuid.uuid4(), uuid.uuid4()

    statuses = [
        (await client.put(pair(contact, household), headers=admin)).status_code
        for contact, household in [(alice, home), (alice, office), (bob, home)]
    ]

    assert statuses == [201, 201, 201]
    assert len(await listed(client, admin)) == 3


async def test_put_for_a_household_the_tenant_lacks_is_404(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, app: FastAPI
) -> None:
    admin = tenant.headers("admin")
    theirs = await new_household(client, other_tenant.headers("admin"))
    deleted = await create(client, HOUSEHOLDS, {"data": {}}, admin)
    gone = await client.delete(
        f"{HOUSEHOLDS}/{deleted['id']}", headers={**admin, **if_match(deleted)}
    )
    assert gone.status_code == 204

    for household_id in (uuid.uuid4(), theirs, deleted["id"]):
        response = await client.put(pair(uuid.uuid4(), household_id), headers=admin)
        problem = assert_problem(response, 404, "NOT_FOUND")
        assert str(household_id) in problem["detail"]
    assert await stored_rows(app, tenant) == 0


# Fixed ids: a parallel run's workers must all name the test cases alike.
@pytest.mark.parametrize(
    "path",
    [pair("not-a-uuid", uuid.UUID(int=1)), pair(uuid.UUID(int=2), "42")],
)
async def test_malformed_ids_are_400(
    client: httpx.AsyncClient, admin: dict[str, str], path: str
) -> None:
    assert_problem(await client.put(path, headers=admin), 400)
    assert_problem(await client.delete(path, headers={**admin, **STALE}), 400)


async def test_get_of_an_unknown_or_malformed_id(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    assert_problem(await client.get(f"{LINKS}/{uuid.uuid4()}", headers=admin), 404, "NOT_FOUND")
    assert_problem(await client.get(f"{LINKS}/nope", headers=admin), 400)


# --- DELETE ----------------------------------------------------------------------------------


async def test_delete_needs_the_etag_and_frees_the_pair(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], app: FastAPI
) -> None:
    household_id = await new_household(client, admin)
    contact_id = uuid.uuid4()
    url = pair(contact_id, household_id)
    doc = (await client.put(url, headers=admin)).json()

    assert_problem(await client.delete(url, headers=admin), 428, "PRECONDITION_REQUIRED")
    stale = assert_problem(await client.delete(url, headers={**admin, **STALE}), 412)
    assert stale["currentEtag"] == doc["meta"]["etag"]
    assert (await client.get(f"{LINKS}/{doc['id']}", headers=admin)).json() == doc

    deleted = await client.delete(url, headers={**admin, "ETag": doc["meta"]["etag"]})

    assert deleted.status_code == 204, deleted.text
    assert_problem(await client.get(f"{LINKS}/{doc['id']}", headers=admin), 404)
    assert await listed(client, admin) == []
    assert_problem(await client.delete(url, headers={**admin, **if_match(doc)}), 404)

    again = await client.put(url, headers=admin)
    assert again.status_code == 201, again.text
    assert again.json()["id"] != doc["id"]
    assert [d["id"] for d in await listed(client, admin)] == [again.json()["id"]]
    assert await stored_rows(app, tenant) == 2, "the deleted association's row stays"


async def test_delete_of_an_unknown_pair_is_404(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    household_id = await new_household(client, admin)
    linked = uuid.uuid4()
    doc = (await client.put(pair(linked, household_id), headers=admin)).json()

    for url in (pair(uuid.uuid4(), household_id), pair(linked, uuid.uuid4())):
        problem = assert_problem(
            await client.delete(url, headers={**admin, **if_match(doc)}), 404, "NOT_FOUND"
        )
        assert "not associated" in problem["detail"]
    assert await listed(client, admin) == [doc]


async def test_concurrent_deletes_with_one_etag_have_one_winner(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    url = pair(uuid.uuid4(), await new_household(client, admin))
    doc = (await client.put(url, headers=admin)).json()

    responses = await asyncio.gather(
        *(client.delete(url, headers={**admin, **if_match(doc)}) for _ in range(8))
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(204) == 1, [r.text for r in responses]
    assert set(statuses) <= {204, 404, 412}, [r.text for r in responses]


# --- bulk ------------------------------------------------------------------------------------


async def test_bulk_creates_in_input_order_and_repeats_return_the_existing(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], app: FastAPI
) -> None:
    home, office = await new_household(client, admin), await new_household(client, admin)
    alice, bob = uuid.uuid4(), uuid.uuid4()
    existing = (await client.put(pair(alice, home), headers=admin)).json()
    items = [item(bob, home), item(alice, home), item(bob, office), item(bob, home)]

    response = await client.post(BULK, json={"data": items}, headers=admin)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["meta"] == {}
    documents = body["data"]
    assert [d["data"] for d in documents] == [i["data"] for i in items]
    assert documents[1] == existing
    assert documents[0] == documents[3], "a repeat inside the call gets the earlier document"
    assert len({d["id"] for d in documents}) == 3
    for doc in documents:
        assert doc["meta"]["resource"] == "contact-households"
        assert (await client.get(f"{LINKS}/{doc['id']}", headers=admin)).json() == doc
    assert await stored_rows(app, tenant) == 3


@pytest.mark.parametrize("whose", ["unknown", "other-tenant", "deleted"])
async def test_a_bulk_item_naming_an_unknown_household_fails_the_call(
    client: httpx.AsyncClient,
    tenant: Tenant,
    other_tenant: Tenant,
    app: FastAPI,
    whose: str,
) -> None:
    admin = tenant.headers("admin")
    home = await new_household(client, admin)
    if whose == "unknown":
        missing = str(uuid.uuid4())
    elif whose == "other-tenant":
        missing = await new_household(client, other_tenant.headers("admin"))
    else:
        doc = await create(client, HOUSEHOLDS, {"data": {}}, admin)
        await client.delete(f"{HOUSEHOLDS}/{doc['id']}", headers={**admin, **if_match(doc)})
        missing = doc["id"]
    items = [item(uuid.uuid4(), home), item(uuid.uuid4(), home), item(uuid.uuid4(), missing)]

    response = await client.post(BULK, json={"data": items}, headers=admin)

    problem = assert_problem(response, 400, "VALIDATION_ERROR")
    assert [e["path"] for e in problem["errors"]] == ["/data/2/data/householdId"], problem
    assert "2" in problem["detail"]
    assert await listed(client, admin) == []
    assert await stored_rows(app, tenant) == 0, "all or nothing"


@pytest.mark.parametrize(
    ("bad", "path"),
    [
        (
            {"data": {"contactId": "nope", "householdId": str(uuid.uuid4())}},
            "/data/1/data/contactId",
        ),
        ({"data": {"contactId": str(uuid.uuid4())}}, "/data/1/data/householdId"),
        ({"data": {**item(1, 2)["data"], "role": "owner"}}, "/data/1/data/role"),
        ({"contactId": str(uuid.uuid4()), "householdId": str(uuid.uuid4())}, "/data/1/data"),
    ],
    ids=["bad-uuid", "missing-household", "unknown-field", "no-envelope"],
)
async def test_a_malformed_bulk_item_is_400_naming_its_index(
    client: httpx.AsyncClient, tenant: Tenant, app: FastAPI, bad: dict[str, Any], path: str
) -> None:
    admin = tenant.headers("admin")
    home = await new_household(client, admin)

    response = await client.post(
        BULK, json={"data": [item(uuid.uuid4(), home), bad]}, headers=admin
    )

    problem = assert_problem(response, 400, "VALIDATION_ERROR")
    assert path in [e["path"] for e in problem["errors"]], problem
    assert await stored_rows(app, tenant) == 0


async def test_a_bulk_item_with_params_is_400(
    client: httpx.AsyncClient, tenant: Tenant, app: FastAPI
) -> None:
    admin = tenant.headers("admin")
    home = await new_household(client, admin)
    items = [item(uuid.uuid4(), home), {**item(uuid.uuid4(), home), "params": {"x": 1}}]

    problem = assert_problem(await client.post(BULK, json={"data": items}, headers=admin), 400)

    assert [e["path"] for e in problem["errors"]] == ["/data/1"], problem
    assert await stored_rows(app, tenant) == 0


# --- lists -----------------------------------------------------------------------------------


async def test_list_filters_by_household_and_contact(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    home, office = await new_household(client, admin), await new_household(client, admin)
    alice, bob = uuid.uuid4(), uuid.uuid4()
    ids = {}
    for contact, household in [(alice, home), (alice, office), (bob, home)]:
        ids[contact, household] = (
            await client.put(pair(contact, household), headers=admin)
        ).json()["id"]

    async def found(params: dict[str, Any]) -> set[str]:
        return {d["id"] for d in await listed(client, admin, params)}

    at_home = {ids[alice, home], ids[bob, home]}
    assert await found({"filter[/data/householdId]": home}) == at_home
    assert await found({"filter": f'/data/householdId eq "{office}"'}) == {ids[alice, office]}
    alices = {ids[alice, home], ids[alice, office]}
    assert await found({"filter": f'/data/contactId eq "{alice}"'}) == alices
    assert await found({"filter[/data/contactId]": str(bob)}) == {ids[bob, home]}
    both = {"filter[/data/contactId]": str(alice), "filter[/data/householdId]": home}
    assert await found(both) == {ids[alice, home]}
    assert await found({"filter": f'/data/contactId eq "{uuid.uuid4()}"'}) == set()
    counted = await client.get(
        LINKS, params={"filter[/data/householdId]": home, "count": "true"}, headers=admin
    )
    assert counted.json()["meta"] == {"total": 2}


async def test_list_refuses_other_attributes(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.get(LINKS, params={"filter": '/data/role eq "owner"'}, headers=admin)

    problem = assert_problem(response, 400, "BAD_FILTER")
    assert "/data/contactId" in problem["detail"] and "/data/householdId" in problem["detail"]


# --- concurrency -----------------------------------------------------------------------------


async def test_concurrent_puts_of_one_pair_make_one_association(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], app: FastAPI
) -> None:
    url = pair(uuid.uuid4(), await new_household(client, admin))

    responses = await asyncio.gather(*(client.put(url, headers=admin) for _ in range(20)))

    assert sorted(r.status_code for r in responses) == [200] * 19 + [201], [
        r.text for r in responses if r.status_code not in (200, 201)
    ]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await stored_rows(app, tenant) == 1


async def test_concurrent_puts_across_processes_make_one_association(
    live_server: str, tenant: Tenant, app: FastAPI
) -> None:
    admin = tenant.headers("admin")
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as http:
        url = pair(uuid.uuid4(), await new_household(http, admin))
        responses = await asyncio.gather(*(http.put(url, headers=admin) for _ in range(20)))

    assert sorted(r.status_code for r in responses) == [200] * 19 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await stored_rows(app, tenant) == 1


# --- tenancy and permissions -----------------------------------------------------------------


async def test_another_tenants_associations_are_invisible(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine, theirs = tenant.headers("admin"), other_tenant.headers("admin")
    household_id = await new_household(client, theirs)
    contact_id = uuid.uuid4()
    doc = (await client.put(pair(contact_id, household_id), headers=theirs)).json()

    assert_problem(await client.get(f"{LINKS}/{doc['id']}", headers=mine), 404)
    assert await listed(client, mine) == []
    assert await listed(client, mine, {"filter[/data/householdId]": household_id}) == []
    url = pair(contact_id, household_id)
    assert_problem(await client.delete(url, headers={**mine, **if_match(doc)}), 404)
    assert_problem(await client.put(url, headers=mine), 404)
    bulk = await client.post(BULK, json={"data": [item(contact_id, household_id)]}, headers=mine)
    assert_problem(bulk, 400)
    assert (await client.get(f"{LINKS}/{doc['id']}", headers=theirs)).json() == doc


async def test_a_viewer_reads_but_cannot_write(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    household_id = await new_household(client, admin)
    contact_id = uuid.uuid4()
    doc = (await client.put(pair(contact_id, household_id), headers=admin)).json()
    viewer = tenant.headers("viewer")
    url = pair(contact_id, household_id)

    assert (await client.get(f"{LINKS}/{doc['id']}", headers=viewer)).json() == doc
    assert await listed(client, viewer) == [doc]

    for response, permission in [
        (await client.put(url, headers=viewer), "insert@contact-households"),
        (
            await client.put(pair(uuid.uuid4(), household_id), headers=viewer),
            "insert@contact-households",
        ),
        (
            await client.delete(url, headers={**viewer, **if_match(doc)}),
            "destroy@contact-households",
        ),
        (
            await client.post(
                BULK, json={"data": [item(uuid.uuid4(), household_id)]}, headers=viewer
            ),
            "insert@contact-households",
        ),
    ]:
        problem = assert_problem(response, 403, "FORBIDDEN")
        assert permission in problem["detail"], problem
    assert await listed(client, admin) == [doc]


async def test_a_canvasser_cannot_associate(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    household_id = await new_household(client, admin)
    canvasser = tenant.headers("canvasser")

    problem = assert_problem(
        await client.put(pair(uuid.uuid4(), household_id), headers=canvasser), 403
    )

    assert "insert@contact-households" in problem["detail"]
    assert await listed(client, canvasser) == []


async def test_the_permissions_are_exactly_the_named_ones(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    household_id = await new_household(client, admin)
    url = pair(uuid.uuid4(), household_id)
    linker = tenant.headers(permissions=["insert@contact-households"])
    unlinker = tenant.headers(permissions=["destroy@contact-households"])

    created = await client.put(url, headers=linker)
    assert created.status_code == 201, created.text
    assert (
        "read@contact-households"
        in assert_problem(await client.get(LINKS, headers=linker), 403)["detail"]
    )
    assert (
        "destroy@contact-households"
        in assert_problem(
            await client.delete(url, headers={**linker, **if_match(created.json())}), 403
        )["detail"]
    )
    removed = await client.delete(url, headers={**unlinker, **if_match(created.json())})
    assert removed.status_code == 204, removed.text
