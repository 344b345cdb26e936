"""List requests at their bounds (issue 9): sort keys, and timestamps out of range."""

from __future__ import annotations

import json

import httpx
import pytest

from polis_api.config import Settings
from tests.builders import SEED_CAMPAIGN, assert_problem, create

CAMPAIGNS = "/v1/campaigns"


def _sort(count: int) -> str:
    """``count`` sort keys, each a path with its direction."""
    return json.dumps([[f"data/field{n}", "ASC"] for n in range(count)])


async def test_the_maximum_number_of_sort_keys_is_accepted(
    client: httpx.AsyncClient, admin: dict[str, str], settings: Settings
) -> None:
    created = await create(client, CAMPAIGNS, SEED_CAMPAIGN, admin)

    response = await client.get(
        CAMPAIGNS, params={"sort": _sort(settings.max_sort_terms)}, headers=admin
    )

    assert response.status_code == 200, response.text
    assert [doc["id"] for doc in response.json()["data"]] == [created["id"]]


@pytest.mark.parametrize("extra", [1, 1000], ids=["one-more", "a-thousand-more"])
async def test_more_sort_keys_are_400(
    client: httpx.AsyncClient, admin: dict[str, str], settings: Settings, extra: int
) -> None:
    count = settings.max_sort_terms + extra

    response = await client.get(CAMPAIGNS, params={"sort": _sort(count)}, headers=admin)

    problem = assert_problem(response, 400, "BAD_FILTER")
    assert f"{count} sort keys given; at most {settings.max_sort_terms}" in problem["detail"]


async def test_repeated_sort_parameters_count_too(
    client: httpx.AsyncClient, admin: dict[str, str], settings: Settings
) -> None:
    params = [("sort", f"/data/field{n}") for n in range(settings.max_sort_terms + 1)]

    response = await client.get(CAMPAIGNS, params=params, headers=admin)

    assert_problem(response, 400, "BAD_FILTER")


@pytest.mark.parametrize(
    "moment",
    ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+03:00", "9999-12-31T23:30:00-00:31"],
)
async def test_a_filter_timestamp_out_of_range_in_utc_is_400_naming_it(
    client: httpx.AsyncClient, admin: dict[str, str], moment: str
) -> None:
    for _ in range(3):  # repeated, on the same pool: no connection is left broken
        response = await client.get(
            CAMPAIGNS, params={"filter": f'/meta/modified gt "{moment}"'}, headers=admin
        )
        problem = assert_problem(response, 400, "BAD_FILTER")
        assert moment in problem["detail"]
        assert "between years 1 and 9999" in problem["detail"]

    assert (await client.get(CAMPAIGNS, headers=admin)).status_code == 200


@pytest.mark.parametrize(
    ("moment", "finds"),
    [("9999-12-31T23:59:59.999Z", False), ("0001-01-01T00:00:00Z", True)],
    ids=["last-moment", "first-moment"],
)
async def test_filter_timestamps_at_the_ends_of_the_range_work(
    client: httpx.AsyncClient, admin: dict[str, str], moment: str, finds: bool
) -> None:
    await create(client, CAMPAIGNS, SEED_CAMPAIGN, admin)

    response = await client.get(
        CAMPAIGNS, params={"filter": f'/meta/modified gt "{moment}"'}, headers=admin
    )

    assert response.status_code == 200, response.text
    assert len(response.json()["data"]) == (1 if finds else 0)
