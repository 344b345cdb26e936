"""GET /metrics (SPEC §14): Prometheus text, by route template, summed over workers."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families

from polis_api.config import Settings
from tests.builders import assert_problem, campaign, create
from tests.conftest import Tenant, running_server

METRICS_TOKEN = "a-metrics-token-for-the-scraper"


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in an exposition (0 when it is not there yet)."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return float(found.value)
    return 0.0


async def scrape(client: httpx.AsyncClient, **headers: str) -> str:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_requests_are_counted_by_route_template_method_and_status(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    by_id = {"route": "/v1/campaigns/{id}", "method": "GET"}
    before = await scrape(client)
    ids = [uuid.uuid4() for _ in range(3)]

    for doc_id in ids:
        assert (await client.get(f"/v1/campaigns/{doc_id}", headers=admin)).status_code == 404
    assert (await client.get("/v1/campaigns/not-an-id", headers=admin)).status_code == 400

    after = await scrape(client)
    requests = "polis_http_requests_total"
    assert sample(after, requests, **by_id, status="404") - sample(
        before, requests, **by_id, status="404"
    ) == len(ids)
    assert (
        sample(after, requests, **by_id, status="400")
        - sample(before, requests, **by_id, status="400")
        == 1
    )
    count = "polis_http_request_duration_seconds_count"
    assert sample(after, count, **by_id) - sample(before, count, **by_id) == len(ids) + 1
    # Never the path itself: one series per route, however many ids are asked for.
    assert all(str(doc_id) not in after for doc_id in ids)
    assert "not-an-id" not in after


async def test_paths_no_route_knows_share_one_label(client: httpx.AsyncClient) -> None:
    before = await scrape(client)

    for path in ("/nowhere", "/wp-admin.php", f"/{uuid.uuid4()}"):
        assert (await client.get(path)).status_code == 404

    after = await scrape(client)
    labels = {"route": "unmatched", "method": "GET", "status": "404"}
    name = "polis_http_requests_total"
    assert sample(after, name, **labels) - sample(before, name, **labels) == 3
    assert "wp-admin" not in after


async def test_latency_histogram_and_pool_gauges_are_exposed(client: httpx.AsyncClient) -> None:
    # A scrape is observed once it has answered, so the first scrape of a fresh worker
    # cannot see itself: scrape once so the second has a /metrics series to show.
    await scrape(client)
    text = await scrape(client)

    buckets = [
        s
        for family in text_string_to_metric_families(text)
        if family.name == "polis_http_request_duration_seconds"
        for s in family.samples
        if s.name.endswith("_bucket") and s.labels["route"] == "/metrics"
    ]
    assert buckets and buckets[-1].labels["le"] == "+Inf"
    assert sample(text, "polis_db_pool_max_connections", pool="main") == 30  # conftest's size
    assert sample(text, "polis_db_pool_connections", pool="main") >= 1
    # The scrape itself holds no database connection.
    assert sample(text, "polis_db_pool_connections_in_use", pool="main") >= 0


async def test_idempotent_replays_are_counted(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    before = await scrape(client)
    headers = {**admin, "Idempotency-Key": str(uuid.uuid4())}

    first = await client.post("/v1/campaigns", json=campaign(name="Replayed"), headers=headers)
    again = await client.post("/v1/campaigns", json=campaign(name="Replayed"), headers=headers)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    after = await scrape(client)
    name = "polis_idempotent_replays_total"
    assert sample(after, name) - sample(before, name) == 1


@pytest.fixture(scope="module")
async def guarded(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An app with POLIS_METRICS_TOKEN set and a small rate budget."""
    from polis_api.app import create_app

    app = create_app(
        settings.model_copy(update={"metrics_token": METRICS_TOKEN, "rate_limit_per_minute": 3})
    )
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://polis.test") as http:
            yield http


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {METRICS_TOKEN}", f"Bearer {METRICS_TOKEN}x"],
)
async def test_a_metrics_token_when_set_is_required(
    guarded: httpx.AsyncClient, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}

    response = await guarded.get("/metrics", headers=headers)

    assert_problem(response, 401, "UNAUTHORIZED")
    assert "polis_http_requests_total" not in response.text


async def test_the_metrics_token_opens_metrics_and_a_tenant_token_does_not(
    guarded: httpx.AsyncClient, tenant: Tenant
) -> None:
    assert (await guarded.get("/metrics", headers=tenant.headers("admin"))).status_code == 401
    text = await scrape(guarded, Authorization=f"Bearer {METRICS_TOKEN}")
    assert "polis_http_requests_total" in text


async def test_rate_limited_requests_are_counted(
    guarded: httpx.AsyncClient, tenant: Tenant
) -> None:
    if 60 - time.time() % 60 < 3:  # a budget resets on the minute
        await asyncio.sleep(60 - time.time() % 60 + 0.1)
    scraper = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    before = await scrape(guarded, **scraper)
    headers = tenant.headers("admin")

    statuses = [(await guarded.get("/v1/campaigns", headers=headers)).status_code for _ in range(5)]

    assert statuses == [200, 200, 200, 429, 429]
    after = await scrape(guarded, **scraper)
    name = "polis_rate_limited_requests_total"
    assert sample(after, name) - sample(before, name) == 2
    labels = {"route": "/v1/campaigns", "method": "GET", "status": "429"}
    requests = "polis_http_requests_total"
    assert sample(after, requests, **labels) - sample(before, requests, **labels) == 2


# --- a real server with two workers ------------------------------------------------------


def _metrics_dir(tmp: Path) -> Path:
    [found] = list(tmp.glob("polis-api-metrics-*"))
    return found


def _worker_pids(directory: Path) -> set[int]:
    return {int(path.stem.rsplit("_", 1)[1]) for path in directory.glob("gauge_livesum_*.db")}


def _per_worker(directory: Path, name: str, **labels: str) -> dict[int, float]:
    """Each worker's own count, read from its own file alone."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    counts = {}
    for path in directory.glob("counter_*.db"):
        alone = directory.parent / f"alone-{path.stem}"
        alone.mkdir(exist_ok=True)
        (alone / path.name).write_bytes(path.read_bytes())
        registry = CollectorRegistry()
        MultiProcessCollector(registry, str(alone))
        counts[int(path.stem.split("_")[1])] = sample(
            generate_latest(registry).decode(), name, **labels
        )
    return counts


async def _scrape_many(base: str, times: int) -> list[str]:
    # A new connection each time, so that both workers get to answer.
    texts = []
    for _ in range(times):
        async with httpx.AsyncClient(base_url=base) as http:
            texts.append(await scrape(http))
    return texts


async def test_two_workers_count_into_one_total(
    database_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    headers = tenant.headers("admin")
    labels = {"route": "/v1/campaigns/{id}", "method": "GET", "status": "404"}
    requests = 40

    async def one_request() -> int:
        async with httpx.AsyncClient() as http:  # a new connection: any worker may take it
            return (
                await http.get(f"{base}/v1/campaigns/{uuid.uuid4()}", headers=headers)
            ).status_code

    with running_server(database_url, "metrics", TMPDIR=str(tmp_path)) as base:
        directory = _metrics_dir(tmp_path)
        statuses = await asyncio.gather(*(one_request() for _ in range(requests)))
        assert statuses == [404] * requests

        shares = _per_worker(directory, "polis_http_requests_total", **labels)
        texts = await _scrape_many(base, 6)

        # Both workers answered some, and every scrape, whichever worker serves it,
        # reports the sum over both.
        assert len([share for share in shares.values() if share > 0]) == 2, shares
        assert sum(shares.values()) == requests
        for text in texts:
            assert sample(text, "polis_http_requests_total", **labels) == requests
            assert (
                sample(
                    text,
                    "polis_http_request_duration_seconds_count",
                    route=labels["route"],
                    method="GET",
                )
                == requests
            )
            # livesum: the host's pools, two workers of POLIS_POOL_MAX_SIZE=6
            assert sample(text, "polis_db_pool_max_connections", pool="main") == 12

        # A worker that dies is replaced; its gauges leave, its counts stay.
        victim = min(_worker_pids(directory))
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            pids = _worker_pids(directory)
            if victim not in pids and len(pids) == 2:
                break
            await asyncio.sleep(0.5)
        else:
            pytest.fail(f"the killed worker was not replaced: {_worker_pids(directory)}")
        for text in await _scrape_many(base, 4):
            assert sample(text, "polis_http_requests_total", **labels) == requests
            assert sample(text, "polis_db_pool_max_connections", pool="main") == 12

    # Each start gets a fresh directory, removed when the server stops.
    assert not directory.exists()


async def test_problem_answers_are_counted_like_any_other(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    before = await scrape(client)

    response = await client.post("/v1/campaigns", json=campaign(name=7), headers=admin)
    created = await create(client, "/v1/campaigns", campaign(name="Counted"), admin)

    assert response.status_code == 400 and created["id"]
    after = await scrape(client)
    name = "polis_http_requests_total"
    for status, expected in (("400", 1), ("201", 1)):
        labels = {"route": "/v1/campaigns", "method": "POST", "status": status}
        assert sample(after, name, **labels) - sample(before, name, **labels) == expected
