"""Status groups through HTTP: one read-only catalogue that every tenant shares (SPEC §10)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from polis_api.documents.etag import compute_etag
from tests.builders import ETAG, TIMESTAMP, assert_problem
from tests.conftest import Tenant

NIL = str(uuid.UUID(int=0))
STATUS_TYPES = {"successful", "unsuccessful", "appointment", "unavailable", "list"}
# One group per default status, so each default pin has a group to sit in.
EXPECTED = {
    "Successful": ("successful", "contacted-available-successful"),
    "Not Successful": ("unsuccessful", "contacted-available-not-successful"),
    "Refused": ("unsuccessful", "contacted-unavailable-other"),
    "Appointment": ("appointment", "appointment"),
    "Come Back": ("unavailable", "come-back"),
    "Not Home": ("unavailable", "contacted-unavailable-not-home"),
    "Bad Contact Info": ("unavailable", "contacted-unavailable-other"),
    "Default": ("list", "not-contacted-normal"),
    "High Priority": ("list", "not-contacted-high-priority"),
    "Do Not Knock": ("list", "not-contacted-do-not-knock"),
}


async def _groups(
    client: httpx.AsyncClient, headers: dict[str, str], **params: str
) -> list[dict[str, Any]]:
    response = await client.get("/v1/status-groups", params=params, headers=headers)
    assert response.status_code == 200, response.text
    documents: list[dict[str, Any]] = response.json()["data"]
    return documents


async def test_every_tenant_reads_the_same_ten_groups(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine = await _groups(client, tenant.headers("viewer"))
    theirs = await _groups(client, other_tenant.headers("viewer"))

    assert mine == theirs
    assert {
        d["data"]["name"]: (d["data"]["statusType"], d["data"]["contactState"]) for d in mine
    } == (EXPECTED)
    for document in mine:
        data = document["data"]
        assert set(data) == {"name", "icon", "pinColor", "iconColor", "statusType", "contactState"}
        assert data["statusType"] in STATUS_TYPES
        assert data["pinColor"].startswith("#") and len(data["pinColor"]) == 7
        assert document["customerId"] == NIL  # belongs to no tenant
        assert document["meta"]["resource"] == "status-groups"
        assert TIMESTAMP.match(document["meta"]["created"])
        assert ETAG.match(document["meta"]["etag"])


async def test_one_group_with_its_etag_and_not_modified(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = tenant.headers("viewer")
    listed = (await _groups(client, headers, filter='/data/name eq "Not Home"'))[0]

    response = await client.get(f"/v1/status-groups/{listed['id']}", headers=headers)

    assert response.status_code == 200, response.text
    document = response.json()
    assert document == listed
    assert response.headers["ETag"] == f'"{document["meta"]["etag"]}"'
    # The migration's etag is the one the server would compute for this document.
    envelope = {key: value for key, value in document.items()}
    envelope["meta"] = {k: v for k, v in document["meta"].items() if k != "etag"}
    assert document["meta"]["etag"] == compute_etag(envelope)
    again = await client.get(
        f"/v1/status-groups/{listed['id']}",
        headers={**headers, "If-None-Match": response.headers["ETag"]},
    )
    assert again.status_code == 304


async def test_the_ids_are_fixed_across_tenants(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    group = (await _groups(client, tenant.headers("viewer")))[0]

    response = await client.get(
        f"/v1/status-groups/{group['id']}", headers=other_tenant.headers("viewer")
    )

    assert response.status_code == 200
    assert response.json()["id"] == group["id"]


async def test_lists_filter_sort_page_and_count(client: httpx.AsyncClient, tenant: Tenant) -> None:
    headers = tenant.headers("viewer")

    unavailable = await _groups(
        client, headers, filter='/data/statusType eq "unavailable"', sort='["data/name","DESC"]'
    )
    assert [d["data"]["name"] for d in unavailable] == ["Not Home", "Come Back", "Bad Contact Info"]

    response = await client.get(
        "/v1/status-groups",
        params={"filter[/data/statusType]": "list", "limit": "2", "skip": "1", "count": "true"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]) == 2
    assert response.json()["meta"]["total"] == 3

    liked = await _groups(client, headers, filter='/data/name like "*Success*"')
    assert sorted(d["data"]["name"] for d in liked) == ["Not Successful", "Successful"]


async def test_the_change_feed_gives_all_ten_once_then_nothing(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = tenant.headers("viewer")
    first = await client.get("/v1/status-groups", params={"since": ""}, headers=headers)
    assert first.status_code == 200, first.text
    assert len(first.json()["data"]) == 10
    assert first.json()["meta"]["more"] is False

    later = await client.get(
        "/v1/status-groups", params={"since": first.json()["meta"]["next"]}, headers=headers
    )

    assert later.status_code == 200, later.text
    assert later.json()["data"] == []
    assert later.json()["meta"]["more"] is False


async def test_the_change_feed_pages_by_limit(client: httpx.AsyncClient, tenant: Tenant) -> None:
    headers = tenant.headers("viewer")
    seen: list[str] = []
    token = ""
    for _ in range(10):
        response = await client.get(
            "/v1/status-groups", params={"since": token, "limit": "4"}, headers=headers
        )
        assert response.status_code == 200, response.text
        seen += [d["id"] for d in response.json()["data"]]
        token = response.json()["meta"]["next"]
        if not response.json()["meta"]["more"]:
            break
    assert len(seen) == len(set(seen)) == 10


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/status-groups"),
        ("PUT", "/v1/status-groups/6fec493a-5a6d-4e82-86dd-322847042fd7"),
        ("PATCH", "/v1/status-groups/6fec493a-5a6d-4e82-86dd-322847042fd7"),
        ("DELETE", "/v1/status-groups/6fec493a-5a6d-4e82-86dd-322847042fd7"),
    ],
)
async def test_writes_are_not_allowed(
    client: httpx.AsyncClient, tenant: Tenant, method: str, path: str
) -> None:
    response = await client.request(
        method,
        path,
        json={"data": {"name": "Mine"}},
        headers={**tenant.headers("admin"), "If-Match": "*"},
    )

    assert_problem(response, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in response.headers["Allow"]
    groups = await _groups(client, tenant.headers("viewer"))
    assert "Mine" not in {d["data"]["name"] for d in groups}


async def test_unknown_and_malformed_ids(client: httpx.AsyncClient, tenant: Tenant) -> None:
    headers = tenant.headers("viewer")

    assert_problem(
        await client.get(f"/v1/status-groups/{uuid.uuid4()}", headers=headers), 404, "NOT_FOUND"
    )
    assert_problem(await client.get("/v1/status-groups/not-a-uuid", headers=headers), 400)


async def test_bad_list_parameters_are_clear_400s(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = tenant.headers("viewer")

    assert_problem(
        await client.get(
            "/v1/status-groups", params={"filter": "/data/name equals 1"}, headers=headers
        ),
        400,
        "BAD_FILTER",
    )
    assert_problem(
        await client.get("/v1/status-groups", params={"since": "nonsense"}, headers=headers),
        400,
        "BAD_SYNC_TOKEN",
    )
    assert_problem(
        await client.get("/v1/status-groups", params={"since": "", "sort": "/id"}, headers=headers),
        400,
    )


async def test_reading_needs_the_permission(client: httpx.AsyncClient, tenant: Tenant) -> None:
    only_campaigns = tenant.headers(permissions=["read@campaigns"])

    listed = await client.get("/v1/status-groups", headers=only_campaigns)
    one = await client.get(
        "/v1/status-groups/6fec493a-5a6d-4e82-86dd-322847042fd7", headers=only_campaigns
    )

    for response in (listed, one):
        body = assert_problem(response, 403, "FORBIDDEN")
        assert "read@status-groups" in body["detail"]
    assert_problem(await client.get("/v1/status-groups"), 401, "UNAUTHORIZED")
    for role in ("viewer", "canvasser", "admin"):
        assert len(await _groups(client, tenant.headers(role))) == 10


async def test_default_statuses_sit_in_the_group_of_their_name(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = tenant.headers("viewer")
    groups = {d["id"]: d["data"]["name"] for d in await _groups(client, headers)}

    response = await client.get("/v1/statuses", params={"limit": "1000"}, headers=headers)

    statuses = response.json()["data"]
    assert len(statuses) == 10
    for status in statuses:
        assert groups[status["data"]["statusGroupId"]] == status["data"]["name"]


async def test_a_status_must_name_an_existing_group(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    admin = tenant.headers("admin")
    group_id = (await _groups(client, admin, filter='/data/name eq "Successful"'))[0]["id"]

    def status(group: str) -> dict[str, Any]:
        return {
            "data": {
                "name": "Yard Sign",
                "contactState": "contacted-available-successful",
                "statusGroupId": group,
            }
        }

    refused = await client.post("/v1/statuses", json=status(str(uuid.uuid4())), headers=admin)
    body = assert_problem(refused, 400, "VALIDATION_ERROR")
    assert [e["path"] for e in body["errors"]] == ["/data/statusGroupId"]

    created = await client.post("/v1/statuses", json=status(group_id), headers=admin)
    assert created.status_code == 201, created.text
    patched = await client.patch(
        f"/v1/statuses/{created.json()['id']}",
        json={"data": [{"op": "replace", "path": "/statusGroupId", "value": str(uuid.uuid4())}]},
        headers={**admin, "If-Match": created.headers["ETag"]},
    )
    assert_problem(patched, 400, "VALIDATION_ERROR")
