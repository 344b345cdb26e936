"""Keyset pages: meta.next continues a list where a full page ended (docs/api.md, Paging).

A client that follows meta.next must read exactly the rows skip-paging reads, in the
same order, whatever the sort (data paths with missing values, descending, columns).
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import orjson
import pytest

from polis_api.config import Settings
from tests.builders import assert_problem, campaign, create

CAMPAIGNS = "/v1/campaigns"


async def _seed(client: httpx.AsyncClient, admin: dict[str, str], count: int) -> list[str]:
    ids = []
    for n in range(count):
        # Every third has no description: a sort key with missing (NULL) values.
        data: dict[str, Any] = {"name": f"Campaign {n % 4}"}
        body = campaign(**data)
        if n % 3 == 0:
            del body["data"]["description"]
        else:
            body["data"]["description"] = f"d{n % 5}"
        ids.append((await create(client, CAMPAIGNS, body, admin))["id"])
    return ids


async def _follow(
    client: httpx.AsyncClient, admin: dict[str, str], params: dict[str, Any]
) -> list[str]:
    seen: list[str] = []
    query = dict(params)
    for _ in range(50):
        answer = await client.get(CAMPAIGNS, params=query, headers=admin)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        seen += [doc["id"] for doc in body["data"]]
        if "next" not in body["meta"]:
            return seen
        query = {**params, "after": body["meta"]["next"]}
    raise AssertionError("meta.next never ended")


async def _all(client: httpx.AsyncClient, admin: dict[str, str], params: dict[str, Any]) -> list:
    answer = await client.get(CAMPAIGNS, params={**params, "limit": 1000}, headers=admin)
    return [doc["id"] for doc in answer.json()["data"]]


@pytest.mark.parametrize(
    "sort",
    [
        [],
        ["/data/name"],
        ["/data/name", "DESC"],
        ["/data/description"],
        ["/data/description", "DESC", "/data/name", "ASC"],
        ["/meta/created", "DESC"],
    ],
)
async def test_following_next_reads_every_row_once_in_order(
    client: httpx.AsyncClient, admin: dict[str, str], sort: list[str]
) -> None:
    await _seed(client, admin, 23)
    params: dict[str, Any] = {"limit": 5, "sort": sort}
    assert await _follow(client, admin, params) == await _all(client, admin, {"sort": sort})


async def test_a_page_that_is_not_full_has_no_next(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await _seed(client, admin, 3)
    body = (await client.get(CAMPAIGNS, params={"limit": 5}, headers=admin)).json()
    assert len(body["data"]) == 3 and body["meta"] == {}
    full = (await client.get(CAMPAIGNS, params={"limit": 3, "count": "true"}, headers=admin)).json()
    assert full["meta"]["total"] == 3 and "next" in full["meta"]
    last = await client.get(
        CAMPAIGNS, params={"limit": 3, "after": full["meta"]["next"]}, headers=admin
    )
    assert last.json() == {"data": [], "meta": {}}


async def test_next_respects_the_filter_and_a_row_added_meanwhile(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await _seed(client, admin, 12)
    wanted = {"filter": '/data/name eq "Campaign 1"', "limit": 2}
    first = (await client.get(CAMPAIGNS, params=wanted, headers=admin)).json()
    # A document created after the first page still comes, in its place (ids ascend
    # randomly, so it lands before or after the cursor; either way no row repeats).
    await create(client, CAMPAIGNS, campaign(name="Campaign 1"), admin)
    rest = await _follow(client, admin, {**wanted, "after": first["meta"]["next"]})
    seen = [doc["id"] for doc in first["data"]] + rest
    assert len(seen) == len(set(seen))
    everything = await _all(client, admin, {"filter": wanted["filter"]})
    assert set(seen) <= set(everything) and len(everything) - len(seen) in (0, 1)


async def test_a_token_from_another_list_is_refused(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await _seed(client, admin, 4)
    token = (await client.get(CAMPAIGNS, params={"limit": 2}, headers=admin)).json()["meta"]["next"]
    for other in (
        {"sort": ["/data/name"]},
        {"filter": '/data/name eq "Campaign 1"'},
    ):
        answer = await client.get(CAMPAIGNS, params={**other, "after": token}, headers=admin)
        assert "different list" in assert_problem(answer, 400)["detail"]


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        base64.urlsafe_b64encode(b'[1, "x", []]').decode(),
        # A forged type never reaches SQL: the server knows every type it writes.
        base64.urlsafe_b64encode(orjson.dumps([1, "x", [["uuid); DROP TABLE x; --", "a"]]])),
    ],
)
async def test_a_forged_token_is_a_400(
    client: httpx.AsyncClient, admin: dict[str, str], token: str | bytes
) -> None:
    text = token.decode() if isinstance(token, bytes) else token
    answer = await client.get(CAMPAIGNS, params={"after": text}, headers=admin)
    assert_problem(answer, 400)


async def test_a_forged_type_with_the_right_digest_is_a_400(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await _seed(client, admin, 3)
    token = (await client.get(CAMPAIGNS, params={"limit": 1}, headers=admin)).json()["meta"]["next"]
    version, digest, values = orjson.loads(base64.urlsafe_b64decode(token + "=" * 4))
    forged = orjson.dumps([version, digest, [["uuid); DROP TABLE campaigns; --", values[0][1]]]])
    answer = await client.get(
        CAMPAIGNS, params={"after": base64.urlsafe_b64encode(forged).decode()}, headers=admin
    )
    assert_problem(answer, 400)
    assert (await client.get(CAMPAIGNS, headers=admin)).status_code == 200


async def test_after_with_skip_or_twice_is_a_400(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await _seed(client, admin, 3)
    token = (await client.get(CAMPAIGNS, params={"limit": 1}, headers=admin)).json()["meta"]["next"]
    assert_problem(
        await client.get(CAMPAIGNS, params={"after": token, "skip": 1}, headers=admin), 400
    )
    twice = await client.get(f"{CAMPAIGNS}?after={token}&after={token}", headers=admin)
    assert_problem(twice, 400)
    assert_problem(
        await client.get(CAMPAIGNS, params={"after": token, "since": ""}, headers=admin), 400
    )


async def test_the_token_length_bound(
    client: httpx.AsyncClient, admin: dict[str, str], settings: Settings
) -> None:
    bound = settings.max_page_token_length
    at_bound = "A" * bound
    past = "A" * (bound + 1)
    at = assert_problem(await client.get(CAMPAIGNS, params={"after": at_bound}, headers=admin), 400)
    assert "not a page token" in at["detail"]
    over = assert_problem(await client.get(CAMPAIGNS, params={"after": past}, headers=admin), 400)
    assert "POLIS_MAX_PAGE_TOKEN_LENGTH" in over["detail"]


async def test_a_sort_value_too_long_for_a_token_gives_no_next(
    client: httpx.AsyncClient, admin: dict[str, str], settings: Settings
) -> None:
    for _ in range(2):
        await create(
            client,
            CAMPAIGNS,
            campaign(description="x" * settings.max_page_token_length),
            admin,
        )
    body = (
        await client.get(
            CAMPAIGNS, params={"limit": 1, "sort": ["/data/description"]}, headers=admin
        )
    ).json()
    assert len(body["data"]) == 1 and "next" not in body["meta"]
