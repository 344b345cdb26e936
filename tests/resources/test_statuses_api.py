"""Statuses through HTTP: a new tenant's default set, CRUD and validation (SPEC §2)."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.builders import ETAG, SEED_CAMPAIGN, TIMESTAMP, assert_problem, create, if_match
from tests.conftest import Tenant

# SPEC §2, in its order: Polis' default set.
DEFAULTS = [
    ("Appointment", "appointment"),
    ("Bad Contact Info", "contacted-unavailable-other"),
    ("Come Back", "come-back"),
    ("Default", "not-contacted-normal"),
    ("Do Not Knock", "not-contacted-do-not-knock"),
    ("High Priority", "not-contacted-high-priority"),
    ("Not Home", "contacted-unavailable-not-home"),
    ("Not Successful", "contacted-available-not-successful"),
    ("Refused", "contacted-unavailable-other"),
    ("Successful", "contacted-available-successful"),
]
HEX = r"^#[0-9A-Fa-f]{6}$"


def status(**data: Any) -> dict[str, Any]:
    return {
        "data": {
            "name": "Wants a Yard Sign",
            "contactState": "contacted-available-successful",
            "icon": "map-marker",
            "iconColor": "#FFFFFF",
            "pinColor": "#27AE60",
            **data,
        }
    }


async def _all_statuses(client: httpx.AsyncClient, headers: dict[str, str]) -> list[Any]:
    response = await client.get("/v1/statuses?limit=1000", headers=headers)
    assert response.status_code == 200, response.text
    documents: list[Any] = response.json()["data"]
    return documents


async def test_a_new_tenant_starts_with_polis_default_set(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    documents = await _all_statuses(client, tenant.headers("viewer"))

    assert sorted((d["data"]["name"], d["data"]["contactState"]) for d in documents) == DEFAULTS
    for doc in documents:
        assert doc["data"]["defaultStatus"] is True
        assert doc["customerId"] == str(tenant.customer_id)
        assert doc["meta"]["resource"] == "statuses"
        assert doc["meta"]["isDeleted"] is False
        assert TIMESTAMP.match(doc["meta"]["created"]) and ETAG.match(doc["meta"]["etag"])
        for colour in ("pinColor", "iconColor"):
            if colour in doc["data"]:
                assert re.match(HEX, doc["data"][colour]), doc


async def test_default_statuses_are_real_documents(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    admin = tenant.headers("admin")
    come_back = next(
        d for d in await _all_statuses(client, admin) if d["data"]["name"] == "Come Back"
    )

    got = await client.get(f"/v1/statuses/{come_back['id']}", headers=admin)
    patched = await client.patch(
        f"/v1/statuses/{come_back['id']}",
        json={"data": [{"op": "replace", "path": "/pinColor", "value": "#000000"}]},
        headers={**admin, **if_match(come_back)},
    )

    assert got.status_code == 200 and got.json() == come_back
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"]["pinColor"] == "#000000"


async def test_concurrent_first_requests_seed_the_defaults_once(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = tenant.headers("viewer")

    responses = await asyncio.gather(
        *(client.get("/v1/statuses?limit=1000", headers=headers) for _ in range(10))
    )

    for response in responses:
        assert response.status_code == 200, response.text
        names = sorted(d["data"]["name"] for d in response.json()["data"])
        assert names == [name for name, _ in DEFAULTS]
    counted = await client.get("/v1/statuses?count=true&limit=0", headers=headers)
    assert counted.json()["meta"]["total"] == 10


async def test_the_defaults_are_seeded_whatever_the_first_request_is(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    # The tenant's very first call is a write to another resource.
    await create(client, "/v1/campaigns", SEED_CAMPAIGN, tenant.headers("admin"))

    documents = await _all_statuses(client, tenant.headers("viewer"))
    assert len(documents) == 10


async def test_each_tenant_has_its_own_defaults(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine = await _all_statuses(client, tenant.headers())
    theirs = await _all_statuses(client, other_tenant.headers())

    assert len(mine) == len(theirs) == 10
    assert not {d["id"] for d in mine} & {d["id"] for d in theirs}
    stranger = await client.get(f"/v1/statuses/{theirs[0]['id']}", headers=tenant.headers())
    assert_problem(stranger, 404, "NOT_FOUND")


async def test_status_crud(client: httpx.AsyncClient, tenant: Tenant) -> None:
    admin = tenant.headers("admin")

    created = await create(client, "/v1/statuses", status(), admin)
    assert created["data"] == status()["data"]
    assert created["meta"]["createdBy"] == str(tenant.user_id)

    got = await client.get(f"/v1/statuses/{created['id']}", headers=admin)
    assert got.status_code == 200 and got.json() == created
    assert got.headers["ETag"] == f'"{created["meta"]["etag"]}"'

    patched = await client.patch(
        f"/v1/statuses/{created['id']}",
        json={
            "data": [
                {"op": "replace", "path": "/pinColor", "value": "#1E8449"},
                {"op": "replace", "path": "/contactState", "value": "come-back"},
            ]
        },
        headers={**admin, **if_match(created)},
    )
    assert patched.status_code == 200, patched.text
    revised = patched.json()
    assert revised["data"]["pinColor"] == "#1E8449"
    assert revised["data"]["contactState"] == "come-back"
    assert revised["meta"]["etag"] != created["meta"]["etag"]

    stale = await client.delete(
        f"/v1/statuses/{created['id']}", headers={**admin, **if_match(created)}
    )
    assert (
        assert_problem(stale, 412, "PRECONDITION_FAILED")["currentEtag"]
        == (revised["meta"]["etag"])
    )

    deleted = await client.delete(
        f"/v1/statuses/{created['id']}", headers={**admin, **if_match(revised)}
    )
    assert deleted.status_code == 204
    gone = await client.get(f"/v1/statuses/{created['id']}", headers=admin)
    assert_problem(gone, 404, "NOT_FOUND")
    assert created["id"] not in [d["id"] for d in await _all_statuses(client, admin)]


async def test_list_filters_by_contact_state(client: httpx.AsyncClient, tenant: Tenant) -> None:
    admin = tenant.headers("admin")
    mine = await create(
        client, "/v1/statuses", status(name="Call Later", contactState="come-back"), admin
    )
    await create(client, "/v1/statuses", status(name="Other"), admin)
    query = urlencode(
        {"filter": '/data/contactState eq "come-back"', "sort": '["data/name","ASC"]'}
    )

    response = await client.get(f"/v1/statuses?{query}", headers=admin)

    assert response.status_code == 200, response.text
    documents = response.json()["data"]
    assert [d["data"]["name"] for d in documents] == ["Call Later", "Come Back"]
    assert documents[0]["id"] == mine["id"]
    assert documents[0]["data"].get("defaultStatus", False) is False
    assert documents[1]["data"]["defaultStatus"] is True


async def test_list_by_bracket_filter(client: httpx.AsyncClient, tenant: Tenant) -> None:
    query = urlencode({"filter[/data/contactState]": "contacted-unavailable-other"})

    response = await client.get(f"/v1/statuses?{query}", headers=tenant.headers())

    names = sorted(d["data"]["name"] for d in response.json()["data"])
    assert names == ["Bad Contact Info", "Refused"]


@pytest.mark.parametrize("field", ["pinColor", "iconColor"])
@pytest.mark.parametrize("colour", ["red", "#12345", "#GGGGGG", "#1234567", "12345678", ""])
async def test_colours_must_be_hex_rrggbb(
    client: httpx.AsyncClient, tenant: Tenant, field: str, colour: str
) -> None:
    response = await client.post(
        "/v1/statuses", json=status(**{field: colour}), headers=tenant.headers()
    )

    problem = assert_problem(response, 400, "VALIDATION_ERROR")
    assert f"/data/{field}" in [e["path"] for e in problem["errors"]], problem
    assert field in problem["detail"]


async def test_lower_case_hex_colours_are_fine(client: httpx.AsyncClient, tenant: Tenant) -> None:
    doc = await create(client, "/v1/statuses", status(pinColor="#a1b2c3"), tenant.headers())

    assert doc["data"]["pinColor"] == "#a1b2c3"


async def test_patch_to_a_bad_colour_is_400_and_writes_nothing(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    admin = tenant.headers()
    doc = await create(client, "/v1/statuses", status(), admin)

    response = await client.patch(
        f"/v1/statuses/{doc['id']}",
        json={"data": [{"op": "replace", "path": "/pinColor", "value": "red"}]},
        headers={**admin, **if_match(doc)},
    )

    problem = assert_problem(response, 400, "VALIDATION_ERROR")
    assert problem["errors"][0]["path"] == "/data/pinColor"
    assert (await client.get(f"/v1/statuses/{doc['id']}", headers=admin)).json() == doc


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (status(contactState="maybe-later"), "/data/contactState"),
        (status(contactState=None), "/data/contactState"),
        ({"data": {"contactState": "come-back"}}, "/data/name"),
        (status(name=""), "/data/name"),
        (status(name="   "), "/data/name"),
        (status(name=42), "/data/name"),
        (status(defaultStatus="yes"), "/data/defaultStatus"),
        (status(statusGroupId="group-1"), "/data/statusGroupId"),
        (status(colour="#FFFFFF"), "/data/colour"),
        ({"data": {"name": "No state"}}, "/data/contactState"),
    ],
)
async def test_invalid_statuses_are_400_naming_the_field(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any], path: str
) -> None:
    response = await client.post("/v1/statuses", json=body, headers=tenant.headers())

    problem = assert_problem(response, 400, "VALIDATION_ERROR")
    assert path in [e["path"] for e in problem["errors"]], problem
