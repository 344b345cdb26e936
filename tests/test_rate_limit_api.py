"""Per-token rate limiting (issue 5): 429 with Retry-After and RateLimit-* headers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from asgi_lifespan import LifespanManager

from polis_api.config import Settings
from polis_api.ratelimit import RateLimiter
from tests.builders import assert_problem
from tests.conftest import Tenant, running_server

LIMIT = 5


@pytest.fixture(scope="module")
async def limited(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    from polis_api.app import create_app

    app = create_app(settings.model_copy(update={"rate_limit_per_minute": LIMIT}))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://polis.test") as http:
            yield http


def _seconds_left_in_window() -> float:
    return 60 - time.time() % 60


def _start_of_a_window_if_less_than(seconds: float) -> None:
    # A budget resets on the minute; a test straddling it would see two budgets.
    if _seconds_left_in_window() < seconds:
        time.sleep(_seconds_left_in_window() + 0.1)


@pytest.fixture(autouse=True)
def _not_at_a_window_edge() -> None:
    _start_of_a_window_if_less_than(3)


async def test_the_budget_counts_down_then_429s(limited: httpx.AsyncClient, tenant: Tenant) -> None:
    headers = tenant.headers("viewer")
    answers = [await limited.get("/v1/campaigns", headers=headers) for _ in range(LIMIT + 1)]

    assert [r.status_code for r in answers[:LIMIT]] == [200] * LIMIT
    assert [int(r.headers["RateLimit-Remaining"]) for r in answers[:LIMIT]] == [4, 3, 2, 1, 0]
    assert all(r.headers["RateLimit-Limit"] == str(LIMIT) for r in answers[:LIMIT])
    refused = answers[LIMIT]
    problem = assert_problem(refused, 429, "RATE_LIMITED")
    assert "retry" in problem["detail"]
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert int(refused.headers["RateLimit-Reset"]) == retry_after


async def test_each_token_has_its_own_budget(
    limited: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    for _ in range(LIMIT):
        await limited.get("/v1/campaigns", headers=tenant.headers("viewer"))

    assert (await limited.get("/v1/campaigns", headers=tenant.headers("viewer"))).status_code == 429
    other = await limited.get("/v1/campaigns", headers=other_tenant.headers("viewer"))
    assert other.status_code == 200
    assert other.headers["RateLimit-Remaining"] == str(LIMIT - 1)


async def test_requests_without_a_valid_token_spend_no_budget(
    limited: httpx.AsyncClient, tenant: Tenant
) -> None:
    for _ in range(LIMIT * 2):
        response = await limited.get("/v1/campaigns", headers={"Authorization": "Bearer junk"})
        assert response.status_code == 401
        assert "RateLimit-Limit" not in response.headers

    assert (await limited.get("/v1/campaigns", headers=tenant.headers())).status_code == 200


async def test_the_default_app_has_a_generous_budget(
    client: httpx.AsyncClient, admin: dict[str, str], settings: Settings
) -> None:
    response = await client.get("/v1/campaigns", headers=admin)

    assert int(response.headers["RateLimit-Limit"]) == settings.rate_limit_per_minute == 1200


async def test_counts_are_shared_through_postgresql(settings: Settings, app: object) -> None:
    pool = app.state.pool  # type: ignore[attr-defined]
    first, second = RateLimiter(4), RateLimiter(4)
    bucket = f"test-{time.time_ns()}"

    assert [first.hit(bucket).allowed for _ in range(3)] == [True] * 3
    await first.sync(pool)
    await second.sync(pool)  # learns nothing yet: it has never seen the bucket
    assert second.hit(bucket).allowed
    await second.sync(pool)

    assert not second.hit(bucket).allowed, "3 + 1 hits across two workers spend the budget of 4"
    await first.sync(pool)
    assert not first.hit(bucket).allowed


async def test_a_sync_without_new_hits_writes_no_row_and_still_learns_the_total(
    app: object,
) -> None:
    """A quiet bucket is only read: writing it again each interval bloated the table
    until throughput fell (docs/reliability.md, the soak)."""
    pool = app.state.pool  # type: ignore[attr-defined]
    first, second = RateLimiter(10), RateLimiter(10)
    bucket = f"test-quiet-{time.time_ns()}"
    first.hit(bucket)
    await first.sync(pool)
    version = "SELECT xmin::text FROM rate_limits WHERE bucket = $1"
    written = await pool.fetchval(version, bucket)

    await first.sync(pool)  # nothing new from this worker
    second.hit(bucket)
    await second.sync(pool)  # one new hit elsewhere
    before_read = await pool.fetchval(version, bucket)
    await first.sync(pool)  # nothing new again: reads the total of 2

    assert await pool.fetchval(version, bucket) == before_read
    assert before_read != written, "the second worker's hit was written"
    assert [first.hit(bucket).remaining for _ in range(2)] == [7, 6]


@pytest.fixture(scope="module")
def limited_server(database_url: str) -> Iterator[str]:
    # A short merge interval, so the shared budget is exact when requests are spaced.
    with running_server(
        database_url,
        "limited-server",
        POLIS_RATE_LIMIT_PER_MINUTE="20",
        POLIS_RATE_LIMIT_SYNC_SECONDS="0.05",
    ) as base:
        yield base


async def test_two_workers_share_one_budget(limited_server: str, tenant: Tenant) -> None:
    _start_of_a_window_if_less_than(25)  # the 30 spaced requests take several seconds
    headers = tenant.headers("viewer")
    statuses = []
    for _ in range(30):
        # A fresh connection each time lets the kernel hand it to either worker.
        async with httpx.AsyncClient(base_url=limited_server, timeout=10) as http:
            statuses.append((await http.get("/v1/campaigns", headers=headers)).status_code)
        await asyncio.sleep(0.12)  # longer than the sync interval, so counts are merged

    assert statuses.count(200) == 20, statuses
    assert statuses.count(429) == 10
