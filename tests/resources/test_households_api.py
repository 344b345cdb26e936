"""Households through HTTP: externalId idempotence, coords, bulk, races, tenancy (SPEC §2)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from polis_api.config import Settings
from tests.builders import ETAG, TIMESTAMP, assert_problem, create, if_match
from tests.conftest import Tenant

HOUSEHOLDS = "/v2/households"
BULK = "/v2/households/bulk"

# SPEC §2's shape, the way Polis sends it.
ADDRESS = {
    "number": "221",
    "streetName": "Baker Street",
    "city": "Decatur",
    "state": "GA",
    "postalCode": "30030",
    "country": "US",
    "coords": {"lat": 33.7748, "lng": -84.2963},
}


def household(external_id: str | None = None, **data: Any) -> dict[str, Any]:
    """A create body, with ``external_id`` sent as Polis does: in ``params``."""
    body: dict[str, Any] = {"data": {"unitNum": "2B", "address": ADDRESS, **data}}
    if external_id is not None:
        body["params"] = {"externalId": external_id}
    return body


def at(lat: Any, lng: Any) -> dict[str, Any]:
    return household(address={**ADDRESS, "coords": {"lat": lat, "lng": lng}})


async def listed(
    client: httpx.AsyncClient, headers: dict[str, str], params: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    response = await client.get(HOUSEHOLDS, params=params or {}, headers=headers)
    assert response.status_code == 200, response.text
    documents: list[dict[str, Any]] = response.json()["data"]
    return documents


async def total(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    response = await client.get(HOUSEHOLDS, params={"count": "true"}, headers=headers)
    assert response.status_code == 200, response.text
    count: int = response.json()["meta"]["total"]
    return count


async def stored_rows(app: FastAPI, tenant: Tenant) -> int:
    """Rows in the table, deleted ones included: what a duplicate would show up as."""
    async with app.state.pool.acquire() as conn:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM households WHERE customer_id = $1", tenant.customer_id
        )
    return count


def paths(problem: dict[str, Any]) -> list[str]:
    return [error["path"] for error in problem.get("errors", [])]


# --- create and the externalId ---------------------------------------------------------------


async def test_create_with_params_external_id_then_again_returns_the_existing(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], app: FastAPI
) -> None:
    first = await client.post(HOUSEHOLDS, json=household("voter-000123"), headers=admin)

    assert first.status_code == 201, first.text
    doc = first.json()
    assert doc["data"] == {"unitNum": "2B", "address": ADDRESS, "externalId": "voter-000123"}
    assert doc["customerId"] == str(tenant.customer_id)
    assert doc["meta"]["resource"] == "households"
    assert TIMESTAMP.match(doc["meta"]["created"]) and ETAG.match(doc["meta"]["etag"])
    assert first.headers["ETag"] == f'"{doc["meta"]["etag"]}"'

    again = await client.post(
        HOUSEHOLDS, json=household("voter-000123", unitNum="9Z"), headers=admin
    )

    assert again.status_code == 200, again.text
    assert again.json() == doc, "the existing document, untouched by the repeated create"
    assert again.headers["ETag"] == first.headers["ETag"]
    assert await total(client, admin) == 1
    assert await stored_rows(app, tenant) == 1


async def test_external_id_inside_data_is_the_same_key(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    doc = await create(client, HOUSEHOLDS, household(externalId="in-data"), admin)
    assert doc["data"]["externalId"] == "in-data"

    for body in (
        household("in-data"),
        household(externalId="in-data"),
        {**household(externalId="in-data"), "params": {"externalId": "in-data"}},
    ):
        response = await client.post(HOUSEHOLDS, json=body, headers=admin)
        assert response.status_code == 200, (body, response.text)
        assert response.json()["id"] == doc["id"]
    assert await total(client, admin) == 1


async def test_households_without_an_external_id_are_never_merged(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    first = await create(client, HOUSEHOLDS, household(), admin)
    second = await create(client, HOUSEHOLDS, household(), admin)

    assert first["id"] != second["id"]
    assert "externalId" not in first["data"]
    assert await total(client, admin) == 2


@pytest.mark.parametrize(
    "body",
    [
        {**household(externalId="in-data"), "params": {"externalId": "in-params"}},
        {**household(), "params": {"externalId": "x", "zip": "30030"}},
        {**household(), "params": {"externalID": "wrong-case"}},
        household(""),
        {**household(), "params": {"externalId": 123}},
        {**household(), "params": {"externalId": "x" * 201}},
        household(externalId=""),
        household(externalId=123),
    ],
    ids=[
        "params-and-data-disagree",
        "unknown-params-key",
        "params-key-wrong-case",
        "empty-params-external-id",
        "numeric-params-external-id",
        "overlong-params-external-id",
        "empty-data-external-id",
        "numeric-data-external-id",
    ],
)
async def test_bad_params_are_400_and_write_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], body: dict[str, Any]
) -> None:
    response = await client.post(HOUSEHOLDS, json=body, headers=admin)

    assert_problem(response, 400, "VALIDATION_ERROR")
    assert await total(client, admin) == 0


async def test_params_and_data_disagreeing_says_so(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = {**household(externalId="in-data"), "params": {"externalId": "in-params"}}

    problem = assert_problem(await client.post(HOUSEHOLDS, json=body, headers=admin), 400)

    assert "disagree" in problem["detail"]


async def test_unknown_params_key_is_named(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = {**household(), "params": {"externalId": "x", "campaignId": "y"}}

    problem = assert_problem(await client.post(HOUSEHOLDS, json=body, headers=admin), 400)

    assert "campaignId" in problem["detail"]


@pytest.mark.parametrize(
    ("lat", "lng", "path"),
    [
        (91, 0, "/data/address/coords/lat"),
        (-90.0001, 0, "/data/address/coords/lat"),
        (0, -181, "/data/address/coords/lng"),
        (0, 180.5, "/data/address/coords/lng"),
        ("x", 0, "/data/address/coords/lat"),
        (0, "east", "/data/address/coords/lng"),
        (None, 0, "/data/address/coords/lat"),
        (True, 0, "/data/address/coords/lat"),
        ("33.5", 0, "/data/address/coords/lat"),
    ],
)
async def test_coords_out_of_range_are_400_naming_the_field(
    client: httpx.AsyncClient, admin: dict[str, str], lat: Any, lng: Any, path: str
) -> None:
    response = await client.post(HOUSEHOLDS, json=at(lat, lng), headers=admin)

    problem = assert_problem(response, 400, "VALIDATION_ERROR")
    assert path in paths(problem), problem
    assert await total(client, admin) == 0


async def test_coords_need_both_halves_and_the_edges_are_fine(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    missing = household(address={**ADDRESS, "coords": {"lat": 1}})
    problem = assert_problem(await client.post(HOUSEHOLDS, json=missing, headers=admin), 400)
    assert "/data/address/coords/lng" in paths(problem)

    for lat, lng in [(90, 180), (-90, -180), (0, 33.25)]:
        doc = await create(client, HOUSEHOLDS, at(lat, lng), admin)
        assert doc["data"]["address"]["coords"] == {"lat": float(lat), "lng": float(lng)}


async def test_unknown_fields_are_400_naming_them(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    cases = [
        (household(colour="red"), "/data/colour"),
        (household(address={**ADDRESS, "county": "DeKalb"}), "/data/address/county"),
        (household(address={**ADDRESS, "coords": {"lat": 1, "lng": 2, "alt": 3}}), None),
        ({"data": []}, "/data"),
    ]
    for body, path in cases:
        problem = assert_problem(await client.post(HOUSEHOLDS, json=body, headers=admin), 400)
        expected = path or "/data/address/coords/alt"
        assert expected in paths(problem), (body, problem)


@pytest.mark.parametrize("value", ["2B", 7, None])
async def test_unit_and_house_numbers_take_text_or_whole_numbers(
    client: httpx.AsyncClient, admin: dict[str, str], value: Any
) -> None:
    body = household(unitNum=value, address={**ADDRESS, "number": value})

    doc = await create(client, HOUSEHOLDS, body, admin)

    assert doc["data"]["unitNum"] == value and doc["data"]["address"]["number"] == value


@pytest.mark.parametrize("value", [True, 2.5, [1], {"n": 1}])
async def test_unit_and_house_numbers_refuse_anything_else(
    client: httpx.AsyncClient, admin: dict[str, str], value: Any
) -> None:
    body = household(unitNum=value, address={**ADDRESS, "number": value})

    problem = assert_problem(await client.post(HOUSEHOLDS, json=body, headers=admin), 400)

    assert {"/data/unitNum", "/data/address/number"} <= set(paths(problem)), problem
    assert await total(client, admin) == 0


async def test_union_field_errors_point_at_the_field_itself(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = household(unitNum=True)

    problem = assert_problem(await client.post(HOUSEHOLDS, json=body, headers=admin), 400)

    assert set(paths(problem)) == {"/data/unitNum"}, problem


# --- read, patch, delete ---------------------------------------------------------------------


async def test_get_patch_delete(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], app: FastAPI
) -> None:
    doc = await create(client, HOUSEHOLDS, household("door-1"), admin)
    url = f"{HOUSEHOLDS}/{doc['id']}"

    got = await client.get(url, headers=admin)
    assert got.status_code == 200 and got.json() == doc
    unchanged = await client.get(url, headers={**admin, "If-None-Match": got.headers["ETag"]})
    assert unchanged.status_code == 304

    ops = {"data": [{"op": "replace", "path": "/unitNum", "value": "3C"}]}
    assert_problem(await client.patch(url, json=ops, headers=admin), 428)
    patched = await client.patch(url, json=ops, headers={**admin, **if_match(doc)})
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"] == {**doc["data"], "unitNum": "3C"}
    assert patched.json()["meta"]["etag"] != doc["meta"]["etag"]
    stale = await client.patch(url, json=ops, headers={**admin, **if_match(doc)})
    assert assert_problem(stale, 412)["currentEtag"] == patched.json()["meta"]["etag"]

    bad = {"data": [{"op": "replace", "path": "/address/coords/lat", "value": 91}]}
    problem = assert_problem(
        await client.patch(url, json=bad, headers={**admin, **if_match(patched.json())}), 400
    )
    assert "/data/address/coords/lat" in paths(problem)
    assert (await client.get(url, headers=admin)).json() == patched.json()

    assert_problem(await client.delete(url, headers=admin), 428)
    assert_problem(await client.delete(url, headers={**admin, **if_match(doc)}), 412)
    deleted = await client.delete(url, headers={**admin, "ETag": patched.json()["meta"]["etag"]})
    assert deleted.status_code == 204
    assert_problem(await client.get(url, headers=admin), 404, "NOT_FOUND")
    assert await listed(client, admin) == []
    assert await stored_rows(app, tenant) == 1, "deletes are soft"


async def test_a_malformed_id_is_400(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    assert_problem(await client.get(f"{HOUSEHOLDS}/not-a-uuid", headers=admin), 400)


async def test_a_deleted_households_external_id_is_free_again(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], app: FastAPI
) -> None:
    old = await create(client, HOUSEHOLDS, household("moved-away"), admin)
    gone = await client.delete(f"{HOUSEHOLDS}/{old['id']}", headers={**admin, **if_match(old)})
    assert gone.status_code == 204

    new = await client.post(HOUSEHOLDS, json=household("moved-away"), headers=admin)

    assert new.status_code == 201, new.text
    assert new.json()["id"] != old["id"]
    assert [d["id"] for d in await listed(client, admin)] == [new.json()["id"]]
    assert await stored_rows(app, tenant) == 2


async def test_patching_external_id_to_another_households_is_409(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    taken = await create(client, HOUSEHOLDS, household("taken"), admin)
    other = await create(client, HOUSEHOLDS, household("other"), admin)
    bare = await create(client, HOUSEHOLDS, household(), admin)

    for doc, op in [(other, "replace"), (bare, "add")]:
        ops = {"data": [{"op": op, "path": "/externalId", "value": "taken"}]}
        response = await client.patch(
            f"{HOUSEHOLDS}/{doc['id']}", json=ops, headers={**admin, **if_match(doc)}
        )
        problem = assert_problem(response, 409, "CONFLICT")
        assert "externalId" in problem["detail"]
        assert (await client.get(f"{HOUSEHOLDS}/{doc['id']}", headers=admin)).json() == doc

    # The key follows the document: a create now finds the renamed household.
    ops = {"data": [{"op": "replace", "path": "/externalId", "value": "renamed"}]}
    renamed = await client.patch(
        f"{HOUSEHOLDS}/{taken['id']}", json=ops, headers={**admin, **if_match(taken)}
    )
    assert renamed.status_code == 200, renamed.text
    again = await client.post(HOUSEHOLDS, json=household("renamed"), headers=admin)
    assert again.status_code == 200 and again.json()["id"] == taken["id"]
    freed = await client.post(HOUSEHOLDS, json=household("taken"), headers=admin)
    assert freed.status_code == 201 and freed.json()["id"] != taken["id"]


# --- lists -----------------------------------------------------------------------------------


async def test_list_filters_on_each_allowed_attribute(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    a = await create(client, HOUSEHOLDS, household("ext-a", unitNum="1A"), admin)
    await asyncio.sleep(0.005)  # distinct milliseconds, so /meta/modified orders them
    b = await create(client, HOUSEHOLDS, household("ext-b"), admin)
    c = await create(client, HOUSEHOLDS, household(unitNum="2B"), admin)
    numbered = await create(client, HOUSEHOLDS, household(unitNum=7), admin)

    async def ids(params: dict[str, Any]) -> set[str]:
        return {d["id"] for d in await listed(client, admin, params)}

    assert await ids({"filter[/data/unitNum]": "2B"}) == {b["id"], c["id"]}
    assert await ids({"filter": '/data/unitNum eq "1A"'}) == {a["id"]}
    assert await ids({"filter": "/data/unitNum eq 7"}) == {numbered["id"]}
    assert await ids({"filter[/data/externalId]": "ext-b"}) == {b["id"]}
    assert await ids({"filter": '/data/externalId eq "ext-a"'}) == {a["id"]}
    assert await ids({"filter": "/data/externalId eq nil"}) == {c["id"], numbered["id"]}
    everyone = {a["id"], b["id"], c["id"], numbered["id"]}
    assert await ids({"filter[/customerId]": str(tenant.customer_id)}) == everyone
    assert await ids({"filter": f'/customerId eq "{uuid.uuid4()}"'}) == set()
    assert await ids({"filter": f'/id eq "{c["id"]}"'}) == {c["id"]}
    later = {b["id"], c["id"], numbered["id"]}
    assert await ids({"filter": f'/meta/modified gt "{a["meta"]["modified"]}"'}) == later
    assert await ids({"filter": f'/meta/created lte "{a["meta"]["created"]}"'}) == {a["id"]}
    sorted_by_unit = await listed(client, admin, {"sort": '["data/externalId","DESC"]'})
    assert [d["id"] for d in sorted_by_unit][-2:] == [b["id"], a["id"]]


@pytest.mark.parametrize(
    "params",
    [
        {"filter": f'/meta/createdBy eq "{uuid.uuid4()}"'},
        {"filter[/meta/createdBy]": str(uuid.uuid4())},
        {"sort": "/meta/createdBy"},
    ],
)
async def test_list_refuses_other_envelope_fields_naming_the_allowed_ones(
    client: httpx.AsyncClient, admin: dict[str, str], params: dict[str, str]
) -> None:
    response = await client.get(HOUSEHOLDS, params=params, headers=admin)

    problem = assert_problem(response, 400, "BAD_FILTER")
    assert "/meta/createdBy" in problem["detail"]
    for allowed in ("/data/...", "/customerId", "/meta/modified"):
        assert allowed in problem["detail"], problem


# --- bulk ------------------------------------------------------------------------------------


async def test_bulk_creates_every_item_in_input_order(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    items = [
        household("bulk-1", unitNum="1"),
        household(unitNum="2"),
        household(externalId="bulk-3", unitNum="3"),
    ]

    response = await client.post(BULK, json={"data": items}, headers=admin)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["meta"] == {}
    assert [d["data"]["unitNum"] for d in body["data"]] == ["1", "2", "3"]
    assert [d["data"].get("externalId") for d in body["data"]] == ["bulk-1", None, "bulk-3"]
    for doc in body["data"]:
        assert doc["meta"]["resource"] == "households" and ETAG.match(doc["meta"]["etag"])
        assert (await client.get(f"{HOUSEHOLDS}/{doc['id']}", headers=admin)).json() == doc
    assert await total(client, admin) == 3


async def test_bulk_item_repeating_an_external_id_gets_the_existing_document(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    existing = await create(client, HOUSEHOLDS, household("known"), admin)
    items = [household("new-1"), household("known", unitNum="ignored"), household("new-2")]

    response = await client.post(BULK, json={"data": items}, headers=admin)

    assert response.status_code == 200, response.text
    documents = response.json()["data"]
    assert documents[1] == existing
    assert [d["data"]["externalId"] for d in documents] == ["new-1", "known", "new-2"]
    assert await total(client, admin) == 3


async def test_two_bulk_items_with_one_new_external_id_share_a_document(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], app: FastAPI
) -> None:
    items = [household("twin", unitNum="1"), household(unitNum="x"), household("twin")]

    response = await client.post(BULK, json={"data": items}, headers=admin)

    assert response.status_code == 200, response.text
    first, _, second = response.json()["data"]
    assert first == second, "the later item gets the earlier item's document"
    assert first["data"]["unitNum"] == "1"
    assert await stored_rows(app, tenant) == 2


@pytest.mark.parametrize(
    ("bad", "path"),
    [
        (at(200, 0), "/data/2/data/address/coords/lat"),
        (at(0, "x"), "/data/2/data/address/coords/lng"),
        (household(colour="red"), "/data/2/data/colour"),
        ({**household(externalId="a"), "params": {"externalId": "b"}}, "/data/2"),
        ({**household(), "params": {"walklistId": "w"}}, "/data/2"),
        ({**household(), "meta": {"isDeleted": True}}, "/data/2/meta"),
        ({**household(), "meta": None}, "/data/2/meta"),
    ],
    ids=["lat", "lng", "unknown-field", "params-disagree", "unknown-params", "meta", "meta-null"],
)
async def test_a_bad_bulk_item_fails_the_call_naming_its_index(
    client: httpx.AsyncClient,
    tenant: Tenant,
    admin: dict[str, str],
    app: FastAPI,
    bad: dict[str, Any],
    path: str,
) -> None:
    existing = await create(client, HOUSEHOLDS, household("before"), admin)
    items = [household("fresh-1"), household("before"), bad, household("fresh-2")]

    response = await client.post(BULK, json={"data": items}, headers=admin)

    problem = assert_problem(response, 400, "VALIDATION_ERROR")
    assert problem["errors"], problem
    assert all(p == "/data/2" or p.startswith("/data/2/") for p in paths(problem)), problem
    assert path in paths(problem), problem
    assert [d["id"] for d in await listed(client, admin)] == [existing["id"]]
    assert await stored_rows(app, tenant) == 1, "all or nothing"


async def test_bulk_body_shape_is_checked(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for body, path in [
        ({"data": household()}, "/data"),
        ({"data": [household()], "params": {}}, "/params"),
        ({"data": [{"unitNum": "flat, no envelope"}]}, "/data/0/data"),
    ]:
        problem = assert_problem(await client.post(BULK, json=body, headers=admin), 400)
        assert path in paths(problem), (body, problem)
    empty = await client.post(BULK, json={"data": []}, headers=admin)
    assert empty.status_code == 200 and empty.json() == {"data": [], "meta": {}}
    assert await total(client, admin) == 0


async def test_bulk_beyond_max_items_is_413(settings: Settings, tenant: Tenant) -> None:
    from polis_api.app import create_app

    small = create_app(settings.model_copy(update={"max_bulk_items": 3}))
    admin = tenant.headers("admin")
    async with LifespanManager(small):
        transport = httpx.ASGITransport(app=small, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://polis.test") as client:
            four = [household(f"h-{n}") for n in range(4)]
            too_many = await client.post(BULK, json={"data": four}, headers=admin)
            problem = assert_problem(too_many, 413, "PAYLOAD_TOO_LARGE")
            assert "3" in problem["detail"]
            assert await total(client, admin) == 0

            three = await client.post(BULK, json={"data": four[:3]}, headers=admin)
            assert three.status_code == 200, three.text
            assert await total(client, admin) == 3


async def test_a_bulk_item_reusing_a_taken_id_is_409_naming_its_index(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], app: FastAPI
) -> None:
    existing = await create(client, HOUSEHOLDS, household("first"), admin)
    items = [household("second"), {**household("third"), "id": existing["id"]}]

    response = await client.post(BULK, json={"data": items}, headers=admin)

    problem = assert_problem(response, 409, "CONFLICT")
    assert paths(problem) == ["/data/1"], problem
    assert await stored_rows(app, tenant) == 1


# --- concurrency -----------------------------------------------------------------------------


async def _race(http: httpx.AsyncClient, headers: dict[str, str], n: int) -> list[httpx.Response]:
    body = household(f"race-{uuid.uuid4()}")
    return list(
        await asyncio.gather(*(http.post(HOUSEHOLDS, json=body, headers=headers) for _ in range(n)))
    )


def _one_winner(responses: list[httpx.Response]) -> None:
    assert sorted(r.status_code for r in responses) == [200] * (len(responses) - 1) + [201], [
        r.text for r in responses if r.status_code not in (200, 201)
    ]
    assert len({r.json()["id"] for r in responses}) == 1


async def test_concurrent_creates_with_one_external_id_make_one_household(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], app: FastAPI
) -> None:
    _one_winner(await _race(client, admin, 20))
    assert await stored_rows(app, tenant) == 1


async def test_concurrent_creates_across_processes_make_one_household(
    live_server: str, tenant: Tenant, app: FastAPI
) -> None:
    admin = tenant.headers("admin")
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as http:
        _one_winner(await _race(http, admin, 20))
        assert await total(http, admin) == 1
    assert await stored_rows(app, tenant) == 1


async def test_concurrent_bulk_calls_sharing_external_ids_make_one_of_each(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], app: FastAPI
) -> None:
    items = [household(f"shared-{n}") for n in range(5)]

    responses = await asyncio.gather(
        *(client.post(BULK, json={"data": items}, headers=admin) for _ in range(6))
    )

    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    first = [d["id"] for d in responses[0].json()["data"]]
    assert all([d["id"] for d in r.json()["data"]] == first for r in responses)
    assert await stored_rows(app, tenant) == 5


# --- tenancy and permissions -----------------------------------------------------------------


async def test_another_tenants_household_is_404_and_never_listed(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine = tenant.headers("admin")
    theirs = other_tenant.headers("admin")
    doc = await create(client, HOUSEHOLDS, household("shared-key"), theirs)
    url = f"{HOUSEHOLDS}/{doc['id']}"
    ops = {"data": [{"op": "replace", "path": "/unitNum", "value": "x"}]}

    assert_problem(await client.get(url, headers=mine), 404, "NOT_FOUND")
    assert_problem(await client.patch(url, json=ops, headers={**mine, **if_match(doc)}), 404)
    assert_problem(await client.delete(url, headers={**mine, **if_match(doc)}), 404)
    assert await listed(client, mine, {"filter": f'/id eq "{doc["id"]}"'}) == []
    assert await listed(client, mine, {"filter[/data/externalId]": "shared-key"}) == []

    # An externalId is unique per tenant: the same one here is a household of my own.
    own = await client.post(HOUSEHOLDS, json=household("shared-key"), headers=mine)
    assert own.status_code == 201 and own.json()["id"] != doc["id"]
    assert own.json()["customerId"] == str(tenant.customer_id)
    assert (await client.get(url, headers=theirs)).json() == doc

    other_customer = {**household(), "customerId": str(other_tenant.customer_id)}
    assert_problem(await client.post(HOUSEHOLDS, json=other_customer, headers=mine), 403)


async def test_another_tenants_id_cannot_be_reused_to_reach_it(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = await create(client, HOUSEHOLDS, household(), other_tenant.headers("admin"))
    mine = tenant.headers("admin")

    same_id = await client.post(HOUSEHOLDS, json={**household(), "id": theirs["id"]}, headers=mine)

    assert same_id.status_code == 201, same_id.text
    assert same_id.json()["customerId"] == str(tenant.customer_id)
    assert same_id.json()["data"] == household()["data"]


async def test_a_viewer_reads_but_cannot_write(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    doc = await create(client, HOUSEHOLDS, household("v-1"), admin)
    viewer = tenant.headers("viewer")
    url = f"{HOUSEHOLDS}/{doc['id']}"
    ops = {"data": [{"op": "replace", "path": "/unitNum", "value": "x"}]}

    assert (await client.get(url, headers=viewer)).json() == doc
    assert [d["id"] for d in await listed(client, viewer)] == [doc["id"]]

    for response, permission in [
        (await client.post(HOUSEHOLDS, json=household("v-2"), headers=viewer), "insert@households"),
        (
            await client.post(BULK, json={"data": [household()]}, headers=viewer),
            "insert@households",
        ),
        (
            await client.patch(url, json=ops, headers={**viewer, **if_match(doc)}),
            "modify@households",
        ),
        (await client.delete(url, headers={**viewer, **if_match(doc)}), "destroy@households"),
    ]:
        problem = assert_problem(response, 403, "FORBIDDEN")
        assert permission in problem["detail"], problem
    assert await listed(client, admin) == [doc]


async def test_a_canvasser_cannot_create_households(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    canvasser = tenant.headers("canvasser")

    for response in [
        await client.post(HOUSEHOLDS, json=household("c-1"), headers=canvasser),
        await client.post(BULK, json={"data": [household("c-2")]}, headers=canvasser),
    ]:
        problem = assert_problem(response, 403, "FORBIDDEN")
        assert "insert@households" in problem["detail"]
    assert await total(client, admin) == 0
    assert await listed(client, canvasser) == []


async def test_a_token_with_only_insert_can_create(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    inserter = tenant.headers(permissions=["insert@households"])

    created = await client.post(HOUSEHOLDS, json=household("only-insert"), headers=inserter)

    assert created.status_code == 201, created.text
    problem = assert_problem(await client.get(HOUSEHOLDS, headers=inserter), 403)
    assert "read@households" in problem["detail"]


async def test_bulk_calls_naming_the_same_keys_in_other_orders_both_succeed(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], app: FastAPI
) -> None:
    forward = [household(f"sync-{n}") for n in range(30)]
    backward = forward[::-1]

    responses = await asyncio.gather(
        *(client.post(BULK, json={"data": items}, headers=admin) for items in [forward, backward])
    )

    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    assert await stored_rows(app, tenant) == 30
