"""What one PATCH may cost (issue 9): copies, result size, operation count, no-op patches."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from polis_api import jsoncodec
from polis_api.config import Settings
from polis_api.documents.patch import PatchLimits, apply_patch, json_size
from polis_api.errors import PayloadTooLarge
from tests.builders import SEED_CAMPAIGN, assert_problem, campaign, create, if_match
from tests.canvassing import door, record_interaction
from tests.conftest import Tenant

# A test app whose documents (and bodies) may be BODY_LIMIT bytes.
BODY_LIMIT = 2048
MAX_OPERATIONS = 3


def _seventeen_copies_of_the_document() -> list[dict[str, Any]]:
    # The reported attack, byte for byte: each copy doubles the document.
    return [{"op": "copy", "from": "", "path": f"/k{n}"} for n in range(17)]


@pytest.fixture(scope="module")
async def small(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An app whose bodies and documents may be BODY_LIMIT bytes, with short patches."""
    from polis_api.app import create_app

    limits = {"max_body_bytes": BODY_LIMIT, "max_patch_operations": MAX_OPERATIONS}
    app = create_app(settings.model_copy(update=limits))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://polis.test") as http:
            yield http


async def _patch(
    client: httpx.AsyncClient,
    document: dict[str, Any],
    operations: list[dict[str, Any]],
    headers: dict[str, str],
    path: str = "/v1/campaigns",
) -> httpx.Response:
    return await client.patch(
        f"{path}/{document['id']}",
        json={"data": operations},
        headers={**headers, **if_match(document)},
    )


async def _unchanged(
    client: httpx.AsyncClient, document: dict[str, Any], headers: dict[str, str], path: str
) -> None:
    current = await client.get(f"{path}/{document['id']}", headers=headers)
    assert current.json() == document, "nothing was written"


# --- the reported attacks ------------------------------------------------------------


async def test_seventeen_copies_of_the_whole_document_are_413_and_write_nothing(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    document = await create(client, "/v1/campaigns", SEED_CAMPAIGN, admin)
    body = json.dumps({"data": _seventeen_copies_of_the_document()})
    assert len(body) < 800  # a small request; the document would grow 2**17 times

    response = await client.patch(
        f"/v1/campaigns/{document['id']}",
        content=body,
        headers={**admin, **if_match(document), "Content-Type": "application/json"},
    )

    problem = assert_problem(response, 413, "PAYLOAD_TOO_LARGE")
    assert "copy the document" in problem["detail"]
    assert problem["errors"][0]["path"].endswith("/from")
    await _unchanged(client, document, admin, "/v1/campaigns")


async def test_copying_survey_responses_into_themselves_is_413_and_writes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await record_interaction(client, admin, await door(client, admin))
    copies = [
        {"op": "copy", "from": "/survey/responses", "path": f"/survey/responses/x{n}"}
        for n in range(14)
    ]

    response = await _patch(client, created, copies, admin, "/v2/interactions")

    assert_problem(response, 413, "PAYLOAD_TOO_LARGE")
    await _unchanged(client, created, admin, "/v2/interactions")


# --- the copy budget, at its bound and past it ------------------------------------


def test_json_size_is_the_compact_json_length() -> None:
    values: list[Any] = [
        {"a": [1, 2.5, None, True, False, "é"], "b": {}, "c": []},
        "plain",
        12345678901234567890,
        -(2**70),  # beyond 64 bits: measured by walking
        {"big": [2**70, "é"]},
        [[], [{}], {"k": [None]}],
    ]
    for value in values:
        exact = len(jsoncodec.canonical_bytes(value))
        assert json_size(value, exact) == exact
        assert json_size(value, exact - 1) is None


def test_copies_may_add_up_to_the_limit_and_no_further() -> None:
    document = {"a": "x" * 10}  # 12 bytes as JSON
    twice = [{"op": "copy", "from": "/a", "path": "/b"}, {"op": "copy", "from": "/a", "path": "/c"}]

    result = apply_patch(document, twice, PatchLimits(max_bytes=24))

    assert result == {"a": "x" * 10, "b": "x" * 10, "c": "x" * 10}
    with pytest.raises(PayloadTooLarge) as refused:
        apply_patch(document, twice, PatchLimits(max_bytes=23))
    assert refused.value.errors[0].path == "/data/1/from"
    assert document == {"a": "x" * 10}


def test_copying_the_whole_document_counts_all_of_it() -> None:
    document = {"a": "x" * 10}  # {"a":"xxxxxxxxxx"}: 18 bytes
    whole = [{"op": "copy", "from": "", "path": "/k0"}]

    assert apply_patch(document, whole, PatchLimits(max_bytes=18)) == {
        "a": "x" * 10,
        "k0": {"a": "x" * 10},
    }
    with pytest.raises(PayloadTooLarge):
        apply_patch(document, whole, PatchLimits(max_bytes=17))


def test_moving_a_value_back_and_forth_costs_no_copy_budget() -> None:
    document = {"a": "x" * 100}
    back_and_forth = [
        {"op": "move", "from": "/a", "path": "/b"},
        {"op": "move", "from": "/b", "path": "/a"},
    ] * 50

    assert apply_patch(document, back_and_forth, PatchLimits(max_bytes=10)) == document


# --- the size of the patched document --------------------------------------------


async def _half_full_campaign(
    small: httpx.AsyncClient, admin: dict[str, str]
) -> tuple[dict[str, Any], int]:
    """A campaign whose data is about half of BODY_LIMIT, and the size of its data
    without its name and description (the fields the server adds count too)."""
    probe = await create(small, "/v1/campaigns", campaign(name="n", description=""), admin)
    base = len(jsoncodec.canonical_bytes(probe["data"])) - len("n")
    half = (BODY_LIMIT - base) // 2
    document = await create(
        small, "/v1/campaigns", campaign(name="n", description="x" * half), admin
    )
    return document, base


def _grown_to(size: int, document: dict[str, Any], base: int) -> list[dict[str, Any]]:
    """Copy the description into the name, then write a description that makes the
    data ``size`` bytes."""
    copied = len(document["data"]["description"])
    return [
        {"op": "copy", "from": "/description", "path": "/name"},
        {"op": "replace", "path": "/description", "value": "y" * (size - base - copied)},
    ]


async def test_a_patched_document_of_exactly_the_body_limit_is_stored(
    small: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    document, base = await _half_full_campaign(small, admin)

    response = await _patch(small, document, _grown_to(BODY_LIMIT, document, base), admin)

    assert response.status_code == 200, response.text
    assert len(jsoncodec.canonical_bytes(response.json()["data"])) == BODY_LIMIT


async def test_a_patched_document_one_byte_over_the_body_limit_is_413(
    small: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    document, base = await _half_full_campaign(small, admin)

    response = await _patch(small, document, _grown_to(BODY_LIMIT + 1, document, base), admin)

    problem = assert_problem(response, 413, "PAYLOAD_TOO_LARGE")
    assert f"{BODY_LIMIT + 1} bytes" in problem["detail"]
    await _unchanged(small, document, admin, "/v1/campaigns")


# --- the number of operations ----------------------------------------------------------


RENAME = {"op": "replace", "path": "/name", "value": "Renamed"}


def _tests_of(document: dict[str, Any], count: int) -> list[dict[str, Any]]:
    return [{"op": "test", "path": "/name", "value": document["data"]["name"]}] * count


async def test_a_patch_of_max_operations_is_applied(
    small: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    document = await create(small, "/v1/campaigns", SEED_CAMPAIGN, admin)
    operations = [*_tests_of(document, MAX_OPERATIONS - 1), RENAME]

    response = await _patch(small, document, operations, admin)

    assert response.status_code == 200, response.text
    assert response.json()["data"]["name"] == "Renamed"


async def test_one_operation_more_is_400_and_writes_nothing(
    small: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    document = await create(small, "/v1/campaigns", SEED_CAMPAIGN, admin)
    operations = [*_tests_of(document, MAX_OPERATIONS), RENAME]

    response = await _patch(small, document, operations, admin)

    problem = assert_problem(response, 400, "INVALID_PATCH")
    assert f"at most {MAX_OPERATIONS}" in problem["detail"]
    await _unchanged(small, document, admin, "/v1/campaigns")


# --- patches that change nothing ---------------------------------------------------------


async def test_an_empty_patch_writes_nothing_and_answers_the_current_document(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    document = await create(client, "/v1/campaigns", SEED_CAMPAIGN, admin)

    response = await _patch(client, document, [], admin)

    assert response.status_code == 200, response.text
    assert response.json() == document
    assert response.headers["etag"].strip('"') == document["meta"]["etag"]
    await _unchanged(client, document, admin, "/v1/campaigns")


async def test_an_empty_patch_still_needs_the_current_etag(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    document = await create(client, "/v1/campaigns", SEED_CAMPAIGN, admin)
    url = f"/v1/campaigns/{document['id']}"

    missing = await client.patch(url, json={"data": []}, headers=admin)
    stale = await client.patch(url, json={"data": []}, headers={**admin, "If-Match": '"0-old"'})

    assert_problem(missing, 428, "PRECONDITION_REQUIRED")
    assert_problem(stale, 412, "PRECONDITION_FAILED")


@pytest.mark.parametrize(
    "operations",
    [
        [{"op": "replace", "path": "/name", "value": "My Campaign"}],
        [
            {"op": "replace", "path": "/name", "value": "Other"},
            {"op": "replace", "path": "/name", "value": "My Campaign"},
        ],
        [{"op": "test", "path": "/status", "value": "started"}],
        [{"op": "move", "from": "/name", "path": "/name"}],
    ],
    ids=["same-value", "there-and-back", "test-only", "move-onto-itself"],
)
async def test_a_patch_that_changes_nothing_writes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], operations: list[dict[str, Any]]
) -> None:
    document = await create(client, "/v1/campaigns", SEED_CAMPAIGN, admin)

    response = await _patch(client, document, operations, admin)

    assert response.status_code == 200, response.text
    assert response.json() == document
    await _unchanged(client, document, admin, "/v1/campaigns")


async def test_a_patch_that_changes_something_still_writes_a_revision(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    document = await create(client, "/v1/campaigns", SEED_CAMPAIGN, admin)

    response = await _patch(
        client, document, [{"op": "replace", "path": "/name", "value": "My Campaign 2"}], admin
    )

    assert response.status_code == 200, response.text
    assert response.json()["meta"]["etag"] != document["meta"]["etag"]
    assert response.json()["meta"]["modifiedBy"] == str(tenant.user_id)
