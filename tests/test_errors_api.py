"""Every failure is RFC 9457 problem+json with a stable code (SPEC §6, §4 body limits)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from polis_api.app import create_app
from polis_api.config import Settings
from tests.builders import JSON, SEED_CAMPAIGN, assert_problem, create, if_match

MIB = 1024 * 1024


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nothing-here")

    problem = assert_problem(response, 404, "NOT_FOUND")
    assert "/v1/nothing-here" in problem["detail"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/campaigns", "GET, POST"),
        ("DELETE", "/v1/statuses", "GET, POST"),
        # A fixed id: a parallel run's workers must all name the test cases alike.
        ("POST", f"/v1/campaigns/{uuid.UUID(int=1)}", "GET, PATCH, DELETE"),
        ("POST", "/healthz", "GET"),
    ],
)
async def test_wrong_method_is_405_naming_the_allowed_ones(
    client: httpx.AsyncClient, admin: dict[str, str], method: str, path: str, allowed: str
) -> None:
    response = await client.request(method, path, headers=admin)

    problem = assert_problem(response, 405, "METHOD_NOT_ALLOWED")
    assert method in problem["detail"]
    assert response.headers["Allow"] == allowed


async def test_malformed_json_is_400_saying_so(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post(
        "/v1/campaigns", content=b'{"data": {"name": ', headers={**admin, **JSON}
    )

    problem = assert_problem(response, 400, "VALIDATION_ERROR")
    assert "not valid JSON" in problem["detail"]
    assert (await client.get("/v1/campaigns", headers=admin)).json()["data"] == []


@pytest.mark.parametrize("body", [[], [SEED_CAMPAIGN], "campaign", 42, None])
async def test_a_body_that_is_not_an_object_is_400(
    client: httpx.AsyncClient, admin: dict[str, str], body: object
) -> None:
    response = await client.post(
        "/v1/campaigns", content=json.dumps(body).encode(), headers={**admin, **JSON}
    )

    assert_problem(response, 400, "VALIDATION_ERROR")


async def test_a_body_without_content_type_is_read_as_json(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post(
        "/v1/campaigns", content=json.dumps(SEED_CAMPAIGN).encode(), headers=admin
    )

    assert response.status_code == 201, response.text
    assert response.json()["data"]["name"] == SEED_CAMPAIGN["data"]["name"]


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
async def test_a_wrong_content_type_is_415(
    client: httpx.AsyncClient, admin: dict[str, str], content_type: str
) -> None:
    response = await client.post(
        "/v1/campaigns",
        content=json.dumps(SEED_CAMPAIGN).encode(),
        headers={**admin, "Content-Type": content_type},
    )

    problem = assert_problem(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert "application/json" in problem["detail"]


async def test_json_with_a_charset_is_fine(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post(
        "/v1/campaigns",
        content=json.dumps(SEED_CAMPAIGN).encode(),
        headers={**admin, "Content-Type": "application/json; charset=utf-8"},
    )

    assert response.status_code == 201, response.text


def _oversized_campaign() -> bytes:
    body = json.dumps({"data": {**SEED_CAMPAIGN["data"], "description": "x" * MIB}}).encode()
    assert len(body) > MIB
    return body


async def test_a_body_over_one_mib_is_413(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.post(
        "/v1/campaigns", content=_oversized_campaign(), headers={**admin, **JSON}
    )

    problem = assert_problem(response, 413, "PAYLOAD_TOO_LARGE")
    assert str(MIB) in problem["detail"]
    assert (await client.get("/v1/campaigns", headers=admin)).json()["data"] == []


async def test_a_streamed_body_over_one_mib_is_413(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = _oversized_campaign()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    response = await client.post("/v1/campaigns", content=chunks(), headers={**admin, **JSON})

    assert "content-length" not in response.request.headers, "sent chunked, undeclared"
    assert_problem(response, 413, "PAYLOAD_TOO_LARGE")
    assert (await client.get("/v1/campaigns", headers=admin)).json()["data"] == []


async def test_a_patch_over_one_mib_is_413(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    doc = await create(client, "/v1/campaigns", SEED_CAMPAIGN, admin)
    ops = {"data": [{"op": "replace", "path": "/description", "value": "x" * MIB}]}

    response = await client.patch(
        f"/v1/campaigns/{doc['id']}", json=ops, headers={**admin, **if_match(doc)}
    )

    assert_problem(response, 413, "PAYLOAD_TOO_LARGE")


async def test_a_body_just_under_the_limit_gets_through_to_validation(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = {"data": {**SEED_CAMPAIGN["data"], "description": ""}}
    padding = MIB - len(json.dumps(body).encode())
    body["data"]["description"] = "x" * padding
    raw = json.dumps(body).encode()
    assert len(raw) == MIB

    response = await client.post("/v1/campaigns", content=raw, headers={**admin, **JSON})

    problem = assert_problem(response, 400, "VALIDATION_ERROR")
    assert problem["errors"][0]["path"] == "/data/description"


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "6f9619ff-8b86-d011-b42d-00cf4fc964f"])
async def test_a_malformed_uuid_in_the_path_is_400(
    client: httpx.AsyncClient, admin: dict[str, str], method: str, bad_id: str
) -> None:
    response = await client.request(
        method,
        f"/v1/campaigns/{bad_id}",
        headers={**admin, "If-Match": '"x"'},
        json={"data": []} if method == "PATCH" else None,
    )

    problem = assert_problem(response, 400, "VALIDATION_ERROR")
    assert "UUID" in problem["detail"]
    assert any("id" in error["path"] for error in problem["errors"])


async def test_validation_failures_are_400_never_422(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    doc = await create(client, "/v1/campaigns", SEED_CAMPAIGN, admin)
    attempts = [
        client.post("/v1/campaigns", json={"data": {"name": "x"}}, headers=admin),
        client.post("/v1/campaigns", json={"data": SEED_CAMPAIGN["data"], "x": 1}, headers=admin),
        client.post("/v1/campaigns", json={"data": SEED_CAMPAIGN["data"], "id": 7}, headers=admin),
        client.patch(
            f"/v1/campaigns/{doc['id']}", json={"data": {}}, headers={**admin, **if_match(doc)}
        ),
        client.patch(
            f"/v1/campaigns/{doc['id']}",
            json={"data": [{"op": "jump", "path": "/name"}]},
            headers={**admin, **if_match(doc)},
        ),
        client.get("/v1/campaigns?limit=lots", headers=admin),
        client.get("/v1/statuses?skip=-1", headers=admin),
        client.get("/v1/campaigns?count=maybe", headers=admin),
    ]

    for attempt in attempts:
        response = await attempt
        assert response.status_code == 400, (response.request.url, response.text)
        assert_problem(response, 400)


async def test_an_empty_body_is_400(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.post("/v1/campaigns", content=b"", headers={**admin, **JSON})

    problem = assert_problem(response, 400, "VALIDATION_ERROR")
    assert "body" in problem["detail"]


# --- the unexpected ------------------------------------------------------------------


@pytest.fixture
async def failing_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An app of its own whose extra routes fail the ways real code can."""
    app: FastAPI = create_app(settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret SQL SELECT password FROM users WHERE id = 1")

    @app.get("/sql-error")
    async def sql_error() -> None:
        raise asyncpg.UndefinedTableError('relation "secret_table" does not exist')

    @app.get("/db-timeout")
    async def db_timeout() -> None:
        raise asyncpg.QueryCanceledError("canceling statement due to statement timeout")

    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://polis.test") as http:
            yield http


@pytest.mark.parametrize("path", ["/boom", "/sql-error"])
async def test_an_unexpected_error_is_a_500_problem_without_details(
    failing_client: httpx.AsyncClient, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    response = await failing_client.get(path)

    problem = assert_problem(response, 500, "INTERNAL_ERROR")
    for leak in ("secret", "Traceback", "SELECT", "relation", "File ", ".py"):
        assert leak not in response.text, leak
    assert problem["detail"]
    assert any(record.exc_info for record in caplog.records), "the cause is logged instead"


async def test_a_database_timeout_is_a_503_with_retry_after(
    failing_client: httpx.AsyncClient,
) -> None:
    response = await failing_client.get("/db-timeout")

    assert_problem(response, 503, "SERVICE_UNAVAILABLE")
    assert response.headers["Retry-After"] == "1"
    assert "canceling statement" not in response.text


async def test_problem_type_and_title_are_stable_per_code(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    first = (await client.get(f"/v1/campaigns/{uuid.uuid4()}", headers=admin)).json()
    second = (await client.get(f"/v1/statuses/{uuid.uuid4()}", headers=admin)).json()

    assert first["type"] == second["type"] and first["type"].startswith("https://")
    assert first["title"] == second["title"]
    assert first["detail"] != second["detail"], "detail says what was not found"
