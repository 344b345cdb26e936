"""Small builders and assertions shared by the HTTP tests."""

from __future__ import annotations

import re
from typing import Any

import httpx

from polis_api.errors import PROBLEM_JSON

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
ETAG = re.compile(r"^[0-9a-f]+-[A-Za-z0-9+/]{27}$")
JSON = {"Content-Type": "application/json"}

# Seed 000's create example, verbatim.
SEED_CAMPAIGN = {
    "data": {
        "status": "started",
        "organizationId": "eb4dfe83-f1fd-46dd-a69d-b7cf7b566319",
        "name": "My Campaign",
        "description": "My Campaign Description",
    }
}


def campaign(**data: Any) -> dict[str, Any]:
    return {"data": {**SEED_CAMPAIGN["data"], **data}}


def assert_problem(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "code"} <= body.keys(), body
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code, body
    assert "Traceback" not in response.text and "SELECT" not in response.text
    return body


async def create(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    response = await client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    document: dict[str, Any] = response.json()
    return document


def if_match(document: dict[str, Any]) -> dict[str, str]:
    return {"If-Match": f'"{document["meta"]["etag"]}"'}


async def replace_field(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    path: str,
    document: dict[str, Any],
    field: str,
    value: Any,
) -> dict[str, Any]:
    """``document`` (at ``path``/its id) with ``/field`` replaced, by a PATCH under its etag."""
    response = await client.patch(
        f"{path}/{document['id']}",
        json={"data": [{"op": "replace", "path": f"/{field}", "value": value}]},
        headers={**headers, **if_match(document)},
    )
    assert response.status_code == 200, response.text
    patched: dict[str, Any] = response.json()
    return patched
