"""Idempotent retries (issue 5): Idempotency-Key on POST, and client-chosen ids."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI, Response

from polis_api.config import Settings
from polis_api.idempotency import IdempotencyMiddleware
from tests.builders import SEED_CAMPAIGN, assert_problem, campaign, create
from tests.canvassing import door, interaction
from tests.conftest import Tenant


async def _count(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> int:
    response = await client.get(path, params={"count": "true", "limit": 0}, headers=headers)
    total: int = response.json()["meta"]["total"]
    return total


def _keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


async def test_a_retry_replays_the_first_response_without_writing_again(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    key = str(uuid.uuid4())

    first = await client.post("/v1/campaigns", json=SEED_CAMPAIGN, headers=_keyed(admin, key))
    retry = await client.post("/v1/campaigns", json=SEED_CAMPAIGN, headers=_keyed(admin, key))

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["ETag"] == first.headers["ETag"]
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await _count(client, "/v1/campaigns", admin) == 1


async def test_the_same_key_with_another_body_is_422(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    key = "phone-7:visit-42"
    await client.post("/v1/campaigns", json=SEED_CAMPAIGN, headers=_keyed(admin, key))

    other = await client.post(
        "/v1/campaigns", json=campaign(name="Something else"), headers=_keyed(admin, key)
    )

    assert_problem(other, 422, "IDEMPOTENCY_KEY_REUSED")
    assert await _count(client, "/v1/campaigns", admin) == 1


async def test_twenty_concurrent_retries_with_one_key_write_once(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    key = str(uuid.uuid4())

    responses = await asyncio.gather(
        *(
            client.post("/v1/campaigns", json=SEED_CAMPAIGN, headers=_keyed(admin, key))
            for _ in range(20)
        )
    )

    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}, statuses
    created = [r.json() for r in responses if r.status_code == 201]
    assert created and all(doc["id"] == created[0]["id"] for doc in created)
    for response in responses:
        if response.status_code == 409:
            assert "still running" in assert_problem(response, 409)["detail"]
    assert await _count(client, "/v1/campaigns", admin) == 1


async def test_keys_belong_to_a_tenant(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    key = "shared-looking-key"

    mine = await client.post(
        "/v1/campaigns", json=SEED_CAMPAIGN, headers=_keyed(tenant.headers(), key)
    )
    theirs = await client.post(
        "/v1/campaigns", json=SEED_CAMPAIGN, headers=_keyed(other_tenant.headers(), key)
    )

    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert theirs.json()["customerId"] == str(other_tenant.customer_id)


async def test_keys_survive_a_restart(
    client: httpx.AsyncClient, admin: dict[str, str], settings: Settings
) -> None:
    from polis_api.app import create_app

    key = str(uuid.uuid4())
    first = await client.post("/v1/campaigns", json=SEED_CAMPAIGN, headers=_keyed(admin, key))

    restarted = create_app(settings)
    async with LifespanManager(restarted):
        transport = httpx.ASGITransport(app=restarted)
        async with httpx.AsyncClient(transport=transport, base_url="http://polis.test") as fresh:
            retry = await fresh.post(
                "/v1/campaigns", json=SEED_CAMPAIGN, headers=_keyed(admin, key)
            )

    assert retry.status_code == 201
    assert retry.json() == first.json()


async def test_keys_hold_across_worker_processes(live_server: str, tenant: Tenant) -> None:
    admin = tenant.headers("admin")
    keys = [str(uuid.uuid4()) for _ in range(6)]
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as http:
        firsts = [
            await http.post("/v1/campaigns", json=SEED_CAMPAIGN, headers=_keyed(admin, key))
            for key in keys
        ]
        # New connections, so the kernel spreads retries over both workers.
        retries = []
        for key in keys:
            async with httpx.AsyncClient(base_url=live_server, timeout=30) as again:
                retries.append(
                    await again.post(
                        "/v1/campaigns", json=SEED_CAMPAIGN, headers=_keyed(admin, key)
                    )
                )
        total = await _count(http, "/v1/campaigns", admin)

    assert [r.json()["id"] for r in retries] == [r.json()["id"] for r in firsts]
    assert total == len(keys)


async def test_a_failed_request_is_replayed_as_it_failed(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    key = str(uuid.uuid4())
    body = campaign(status="archived")

    first = await client.post("/v1/campaigns", json=body, headers=_keyed(admin, key))
    retry = await client.post("/v1/campaigns", json=body, headers=_keyed(admin, key))

    assert_problem(first, 400, "VALIDATION_ERROR")
    assert retry.json() == first.json()
    assert retry.headers["content-type"].startswith("application/problem+json")


async def test_malformed_keys_are_400(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for key in ["x" * 256, " ", "caf\u00e9"]:
        headers = {**admin, "Idempotency-Key": key}
        if not key.isascii():
            headers = {**admin}
            raw = [(b"idempotency-key", key.encode())]
            response = await client.post(
                "/v1/campaigns",
                json=SEED_CAMPAIGN,
                headers=httpx.Headers([*headers.items(), *raw]),
            )
        else:
            response = await client.post("/v1/campaigns", json=SEED_CAMPAIGN, headers=headers)
        assert_problem(response, 400, "VALIDATION_ERROR")
    assert await _count(client, "/v1/campaigns", admin) == 0


async def test_an_interaction_retry_moves_the_door_once(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    place = await door(client, admin)
    key = str(uuid.uuid4())
    body = interaction(place, unavailable=True, unavailableReason="Not Home")

    first = await client.post("/v2/interactions", json=body, headers=_keyed(admin, key))
    record = (await client.get(place.path, headers=admin)).json()
    retry = await client.post("/v2/interactions", json=body, headers=_keyed(admin, key))
    after = (await client.get(place.path, headers=admin)).json()

    assert first.status_code == retry.status_code == 201
    assert retry.json()["id"] == first.json()["id"]
    assert after["meta"]["etag"] == record["meta"]["etag"], "the door was not written again"
    listed = await client.get(
        "/v2/interactions", params={"filter[/data/campaignId]": place.campaign_id}, headers=admin
    )
    assert len(listed.json()["data"]) == 1


async def test_a_client_chosen_id_makes_a_create_idempotent(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    chosen = str(uuid.uuid4())
    body: dict[str, Any] = {**campaign(status="complete"), "id": chosen}

    first = await client.post("/v1/campaigns", json=body, headers=admin)
    retry = await client.post("/v1/campaigns", json=body, headers=admin)
    different = await client.post(
        "/v1/campaigns", json={**campaign(name="Other"), "id": chosen}, headers=admin
    )

    assert first.status_code == 201 and first.json()["id"] == chosen
    assert retry.status_code == 200
    assert retry.json() == first.json(), "the derived `ended` does not make it a new document"
    assert_problem(different, 409, "CONFLICT")
    assert await _count(client, "/v1/campaigns", admin) == 1


async def test_bulk_retries_replay_too(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    key = str(uuid.uuid4())
    body = {"data": [{"data": {"unitNum": str(n)}} for n in range(5)]}

    first = await client.post("/v2/households/bulk", json=body, headers=_keyed(admin, key))
    retry = await client.post("/v2/households/bulk", json=body, headers=_keyed(admin, key))

    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json()
    assert await _count(client, "/v2/households", admin) == 5


async def test_creates_without_a_key_are_unaffected(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await create(client, "/v1/campaigns", SEED_CAMPAIGN, admin)
    await create(client, "/v1/campaigns", SEED_CAMPAIGN, admin)

    assert await _count(client, "/v1/campaigns", admin) == 2


# --- only final answers are kept (issue 9) -----------------------------------------------


def _flaky_app(app: FastAPI, statuses: list[int]) -> IdempotencyMiddleware:
    """A route answering ``statuses`` in turn, behind the real idempotency middleware."""
    flaky = FastAPI()
    flaky.state.pool = app.state.pool
    flaky.state.verifier = app.state.verifier
    calls = iter(statuses)

    @flaky.post("/flaky")
    async def answer() -> Response:
        status = next(calls)
        return Response(f'{{"attempt":{status}}}', status, media_type="application/json")

    flaky.add_middleware(IdempotencyMiddleware, ttl_hours=48)
    return flaky  # type: ignore[return-value]


@pytest.mark.parametrize("retry_status", [409, 429, 500, 503])
async def test_an_answer_asking_for_a_retry_is_not_kept(
    app: FastAPI, admin: dict[str, str], retry_status: int
) -> None:
    transport = httpx.ASGITransport(app=_flaky_app(app, [retry_status, 201]))
    async with httpx.AsyncClient(transport=transport, base_url="http://polis.test") as flaky:
        key = str(uuid.uuid4())
        first = await flaky.post("/flaky", json={}, headers=_keyed(admin, key))
        retry = await flaky.post("/flaky", json={}, headers=_keyed(admin, key))

    assert first.status_code == retry_status
    assert retry.status_code == 201, "the retry ran again"
    assert "Idempotent-Replayed" not in retry.headers


@pytest.mark.parametrize("final_status", [201, 400, 404, 422])
async def test_a_final_answer_is_kept(
    app: FastAPI, admin: dict[str, str], final_status: int
) -> None:
    transport = httpx.ASGITransport(app=_flaky_app(app, [final_status, 200]))
    async with httpx.AsyncClient(transport=transport, base_url="http://polis.test") as flaky:
        key = str(uuid.uuid4())
        first = await flaky.post("/flaky", json={}, headers=_keyed(admin, key))
        retry = await flaky.post("/flaky", json={}, headers=_keyed(admin, key))

    assert first.status_code == retry.status_code == final_status
    assert retry.headers["Idempotent-Replayed"] == "true"


async def test_a_conflict_is_not_kept_so_the_retry_succeeds_once_it_is_resolved(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    chosen = str(uuid.uuid4())
    taken = await create(client, "/v1/campaigns", {**campaign(name="Old"), "id": chosen}, admin)
    key = str(uuid.uuid4())
    body = {**campaign(name="New"), "id": chosen}

    conflict = await client.post("/v1/campaigns", json=body, headers=_keyed(admin, key))
    resolved = await client.patch(
        f"/v1/campaigns/{chosen}",
        json={"data": [{"op": "replace", "path": "/name", "value": "New"}]},
        headers={**admin, "If-Match": taken["meta"]["etag"]},
    )
    retry = await client.post("/v1/campaigns", json=body, headers=_keyed(admin, key))

    assert_problem(conflict, 409, "CONFLICT")
    assert resolved.status_code == 200, resolved.text
    assert retry.status_code == 200, retry.text
    assert retry.json()["data"]["name"] == "New"


# --- a replay checks the caller like a first call (issue 9) ------------------------------


async def test_a_replay_checks_the_callers_permission(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    key = str(uuid.uuid4())
    first = await client.post("/v1/campaigns", json=SEED_CAMPAIGN, headers=_keyed(admin, key))

    viewer = await client.post(
        "/v1/campaigns", json=SEED_CAMPAIGN, headers=_keyed(tenant.headers("viewer"), key)
    )
    canvasser = await client.post(
        "/v1/campaigns", json=SEED_CAMPAIGN, headers=_keyed(tenant.headers("canvasser"), key)
    )
    allowed = await client.post(
        "/v1/campaigns",
        json=SEED_CAMPAIGN,
        headers=_keyed(tenant.headers(permissions=["insert@campaigns"]), key),
    )

    assert first.status_code == 201
    for refused in (viewer, canvasser):
        problem = assert_problem(refused, 403, "FORBIDDEN")
        assert "insert@campaigns" in problem["detail"]
        assert first.json()["id"] not in refused.text
    assert allowed.status_code == 201 and allowed.json() == first.json()
    assert allowed.headers["Idempotent-Replayed"] == "true"
    assert await _count(client, "/v1/campaigns", admin) == 1


async def test_a_replay_needs_a_valid_token(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    key = str(uuid.uuid4())
    await client.post("/v1/campaigns", json=SEED_CAMPAIGN, headers=_keyed(admin, key))
    expired = {"Authorization": f"Bearer {tenant.token('admin', ttl=-10)}"}

    replay = await client.post("/v1/campaigns", json=SEED_CAMPAIGN, headers=_keyed(expired, key))

    assert_problem(replay, 401, "UNAUTHORIZED")
