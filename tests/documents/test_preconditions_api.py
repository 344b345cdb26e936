"""Preconditions on writes (SPEC §4): 428, 412, 304, and one winner among racers."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from polis_api.documents.etag import compute_etag
from tests.builders import SEED_CAMPAIGN, assert_problem, create, if_match
from tests.conftest import Tenant

RENAME = {"data": [{"op": "replace", "path": "/name", "value": "Renamed"}]}


async def _campaign(client: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, Any]:
    return await create(client, "/v1/campaigns", SEED_CAMPAIGN, admin)


async def test_patch_and_delete_without_an_etag_are_428(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    doc = await _campaign(client, admin)

    patch = await client.patch(f"/v1/campaigns/{doc['id']}", json=RENAME, headers=admin)
    delete = await client.delete(f"/v1/campaigns/{doc['id']}", headers=admin)

    assert_problem(patch, 428, "PRECONDITION_REQUIRED")
    assert_problem(delete, 428, "PRECONDITION_REQUIRED")
    assert (await client.get(f"/v1/campaigns/{doc['id']}", headers=admin)).json() == doc


@pytest.mark.parametrize(
    "header",
    [
        lambda tag: {"If-Match": f'"{tag}"'},
        lambda tag: {"If-Match": tag},
        lambda tag: {"If-Match": f'W/"{tag}"'},
        lambda tag: {"ETag": tag},
        lambda tag: {"etag": f'"{tag}"'},
        lambda tag: {"If-Match": f'"0-nope", "{tag}"'},
        lambda tag: {"If-Match": "*"},
    ],
    ids=["quoted", "unquoted", "weak", "ETag", "etag-quoted", "list", "star"],
)
async def test_every_etag_spelling_is_accepted(
    client: httpx.AsyncClient, admin: dict[str, str], header: Any
) -> None:
    doc = await _campaign(client, admin)

    response = await client.patch(
        f"/v1/campaigns/{doc['id']}", json=RENAME, headers={**admin, **header(doc["meta"]["etag"])}
    )

    assert response.status_code == 200, response.text
    assert response.json()["data"]["name"] == "Renamed"


async def test_stale_etag_is_412_with_the_current_etag(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    doc = await _campaign(client, admin)
    first = await client.patch(
        f"/v1/campaigns/{doc['id']}", json=RENAME, headers={**admin, **if_match(doc)}
    )
    current = first.json()["meta"]["etag"]

    stale_patch = await client.patch(
        f"/v1/campaigns/{doc['id']}", json=RENAME, headers={**admin, **if_match(doc)}
    )
    stale_delete = await client.delete(
        f"/v1/campaigns/{doc['id']}", headers={**admin, **if_match(doc)}
    )

    for response in (stale_patch, stale_delete):
        problem = assert_problem(response, 412, "PRECONDITION_FAILED")
        assert problem["currentEtag"] == current
    assert (await client.get(f"/v1/campaigns/{doc['id']}", headers=admin)).status_code == 200


async def test_if_none_match_gives_304_until_the_document_changes(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    doc = await _campaign(client, admin)
    url = f"/v1/campaigns/{doc['id']}"

    unchanged = await client.get(
        url, headers={**admin, "If-None-Match": f'"{doc["meta"]["etag"]}"'}
    )
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["ETag"] == f'"{doc["meta"]["etag"]}"'

    await client.patch(url, json=RENAME, headers={**admin, **if_match(doc)})
    changed = await client.get(url, headers={**admin, "If-None-Match": f'"{doc["meta"]["etag"]}"'})
    assert changed.status_code == 200
    assert changed.json()["data"]["name"] == "Renamed"


async def test_etag_is_the_hash_of_the_document_as_served(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    doc = await _campaign(client, admin)
    without_etag = {**doc, "meta": {k: v for k, v in doc["meta"].items() if k != "etag"}}

    assert compute_etag(without_etag) == doc["meta"]["etag"]


async def test_failed_patch_test_op_is_409_and_writes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    doc = await _campaign(client, admin)
    ops = {
        "data": [
            {"op": "replace", "path": "/name", "value": "Should not stick"},
            {"op": "test", "path": "/status", "value": "complete"},
        ]
    }

    response = await client.patch(
        f"/v1/campaigns/{doc['id']}", json=ops, headers={**admin, **if_match(doc)}
    )

    assert_problem(response, 409)
    assert (await client.get(f"/v1/campaigns/{doc['id']}", headers=admin)).json() == doc


@pytest.mark.parametrize(
    ("ops", "status"),
    [
        ([{"op": "replace", "path": "/nope", "value": 1}], 400),
        ([{"op": "remove", "path": "/lists/5"}], 400),
        ([{"op": "frobnicate", "path": "/name"}], 400),
        ([{"op": "replace", "path": "name", "value": "x"}], 400),
        ([{"op": "add", "path": "/name"}], 400),
        ("not a list", 400),
    ],
)
async def test_malformed_patches_are_400_and_write_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], ops: Any, status: int
) -> None:
    doc = await _campaign(client, admin)

    response = await client.patch(
        f"/v1/campaigns/{doc['id']}", json={"data": ops}, headers={**admin, **if_match(doc)}
    )

    assert_problem(response, status)
    assert (await client.get(f"/v1/campaigns/{doc['id']}", headers=admin)).json() == doc


async def test_of_twenty_concurrent_writers_exactly_one_wins(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    doc = await _campaign(client, admin)

    responses = await asyncio.gather(
        *(
            client.patch(
                f"/v1/campaigns/{doc['id']}",
                json={"data": [{"op": "replace", "path": "/name", "value": f"writer {n}"}]},
                headers={**admin, **if_match(doc)},
            )
            for n in range(20)
        )
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [412] * 19
    winner = next(r.json() for r in responses if r.status_code == 200)
    stored = (await client.get(f"/v1/campaigns/{doc['id']}", headers=admin)).json()
    assert stored == winner


async def test_of_twenty_writers_across_two_worker_processes_exactly_one_wins(
    live_server: str, tenant: Tenant
) -> None:
    admin = tenant.headers("admin")
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as http:
        doc = await create(http, "/v1/campaigns", SEED_CAMPAIGN, admin)
        responses = await asyncio.gather(
            *(
                http.patch(
                    f"/v1/campaigns/{doc['id']}",
                    json={"data": [{"op": "replace", "path": "/name", "value": f"writer {n}"}]},
                    headers={**admin, **if_match(doc)},
                )
                for n in range(24)
            )
        )
        deletes = await asyncio.gather(
            *(
                http.delete(f"/v1/campaigns/{doc['id']}", headers={**admin, **if_match(doc)})
                for _ in range(4)
            )
        )

    assert sorted(r.status_code for r in responses) == [200] + [412] * 23
    assert all(r.status_code == 412 for r in deletes), "the old etag is stale for deletes too"
