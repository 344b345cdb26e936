"""Health, readiness, OpenAPI, docs and the command line (SPEC §7)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from jose import jwt

from polis_api import db
from polis_api.errors import PROBLEM_JSON
from tests.builders import SEED_CAMPAIGN, assert_problem
from tests.conftest import TEST_SECRET

HTTP_METHODS = {"get", "put", "post", "patch", "delete", "head", "options"}
POLIS_API = Path(sys.executable).parent / "polis-api"


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_the_head_revision(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "schema": db.head_revision()}


async def test_health_routes_need_no_token(client: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/readyz", "/openapi.json", "/docs"):
        response = await client.get(path, headers={"Authorization": "Bearer garbage"})
        assert response.status_code == 200, path


# --- OpenAPI --------------------------------------------------------------------------


@pytest.fixture
async def openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    schema: dict[str, Any] = response.json()
    return schema


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def _api_operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [op for op in _operations(schema) if op[1].startswith(("/v1/", "/v2/"))]


async def test_openapi_never_mentions_422(openapi: dict[str, Any]) -> None:
    for method, path, operation in _operations(openapi):
        assert "422" not in operation.get("responses", {}), (method, path)
    assert '"422"' not in json.dumps(openapi)
    assert "HTTPValidationError" not in json.dumps(openapi)


async def test_every_api_operation_documents_its_problem_responses(
    openapi: dict[str, Any],
) -> None:
    operations = _api_operations(openapi)
    assert {path for _, path, _ in operations} >= {"/v1/campaigns", "/v1/campaigns/{id}"}

    for method, path, operation in operations:
        for status in ("400", "401"):
            response = operation["responses"].get(status)
            assert response is not None, (method, path, status)
            schema = response["content"][PROBLEM_JSON]["schema"]
            assert set(schema["required"]) == {"type", "title", "status", "detail", "code"}


async def test_every_api_operation_requires_the_bearer_scheme(openapi: dict[str, Any]) -> None:
    assert openapi["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    for method, path, operation in _api_operations(openapi):
        assert operation.get("security") == [{"bearer": []}], (method, path)


async def test_campaign_create_carries_the_seed_example(openapi: dict[str, Any]) -> None:
    body = openapi["paths"]["/v1/campaigns"]["post"]["requestBody"]
    examples = body["content"]["application/json"]["examples"]

    assert SEED_CAMPAIGN in [example["value"] for example in examples.values()]


async def test_patch_examples_are_bodies_the_server_accepts(
    client: httpx.AsyncClient, openapi: dict[str, Any], admin: dict[str, str]
) -> None:
    created = await client.post("/v1/campaigns", json=SEED_CAMPAIGN, headers=admin)
    doc = created.json()
    body = openapi["paths"]["/v1/campaigns/{id}"]["patch"]["requestBody"]
    example = next(iter(body["content"]["application/json"]["examples"].values()))["value"]

    response = await client.patch(
        f"/v1/campaigns/{doc['id']}",
        json=example,
        headers={**admin, "If-Match": doc["meta"]["etag"]},
    )

    assert response.status_code == 200, response.text


async def test_interactive_docs_are_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text


# --- the command line -----------------------------------------------------------------


def _cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        key: value
        for key, value in os.environ.items()
        if key != "DATABASE_URL" and not key.startswith("POLIS_")
    }
    clean.update({"POLIS_DATA_DIR": str(tmp_path / "data"), **env})
    return subprocess.run(
        [str(POLIS_API), *args],
        env=clean,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _decode(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, TEST_SECRET, algorithms=["HS256"])
    return claims


def test_cli_token_prints_a_signed_token(tmp_path: Path) -> None:
    customer = uuid.uuid4()

    result = _cli(
        tmp_path,
        "token",
        "--role",
        "viewer",
        "--customer-id",
        str(customer),
        "--ttl",
        "60",
        POLIS_JWT_SECRET=TEST_SECRET,
    )

    assert result.returncode == 0, result.stderr
    claims = _decode(result.stdout.strip())
    assert claims["customerId"] == claims["securityGroupId"] == str(customer)
    assert claims["roles"] == ["viewer"]
    assert abs(claims["exp"] - (time.time() + 60)) < 10
    uuid.UUID(claims["sub"])


async def test_a_cli_token_is_accepted_by_the_server(
    tmp_path: Path, client: httpx.AsyncClient
) -> None:
    result = _cli(tmp_path, "token", "--role", "viewer", POLIS_JWT_SECRET=TEST_SECRET)
    assert result.returncode == 0, result.stderr
    headers = {"Authorization": f"Bearer {result.stdout.strip()}"}

    listed = await client.get("/v1/statuses", headers=headers)
    created = await client.post("/v1/campaigns", json=SEED_CAMPAIGN, headers=headers)

    assert listed.status_code == 200 and len(listed.json()["data"]) == 10
    assert_problem(created, 403, "FORBIDDEN")


def test_cli_tokens_default_to_one_stable_dev_tenant(tmp_path: Path) -> None:
    first = _cli(tmp_path, "token", "--role", "admin", POLIS_JWT_SECRET=TEST_SECRET)
    second = _cli(tmp_path, "token", "--permission", "read@campaigns", POLIS_JWT_SECRET=TEST_SECRET)

    one, two = _decode(first.stdout.strip()), _decode(second.stdout.strip())
    assert (one["customerId"], one["sub"]) == (two["customerId"], two["sub"])
    assert one["roles"] == ["admin"]
    assert two["roles"] == [] and two["permissions"] == ["read@campaigns"]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"POLIS_JWT_SECRET": "too-short"}, "POLIS_JWT_SECRET"),
        ({"POLIS_MAX_BODY_BYTES": "-1"}, "POLIS_MAX_BODY_BYTES"),
        ({"DATABASE_URL": "mysql://db/polis"}, "DATABASE_URL"),
        (
            {"POLIS_JWT_SECRET": TEST_SECRET, "POLIS_JWT_ALGORITHMS": '["RS256"]'},
            "POLIS_JWT_ALGORITHMS",
        ),
    ],
)
def test_cli_config_errors_exit_2_naming_the_variable(
    tmp_path: Path, env: dict[str, str], named: str
) -> None:
    result = _cli(tmp_path, "token", "--role", "viewer", **env)

    assert result.returncode == 2, (result.stdout, result.stderr)
    assert named in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == "", "no token is printed"


def test_cli_refuses_a_ttl_that_is_already_over(tmp_path: Path) -> None:
    for ttl in ("0", "-60", "soon"):
        result = _cli(
            tmp_path, "token", "--role", "admin", "--ttl", ttl, POLIS_JWT_SECRET=TEST_SECRET
        )
        assert result.returncode == 2, ttl
        assert "--ttl" in result.stderr and result.stdout == ""


def test_cli_serve_stops_on_a_bad_secret_before_starting_anything(tmp_path: Path) -> None:
    result = _cli(tmp_path, "serve", "--quiet", POLIS_JWT_SECRET="too-short")

    assert result.returncode == 2
    assert "POLIS_JWT_SECRET" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "pgdata").exists(), "no database was started"
