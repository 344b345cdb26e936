"""Prometheus metrics, summed over every worker of `polis-api serve --workers N`.

With several workers `serve` gives each start a fresh directory in
PROMETHEUS_MULTIPROC_DIR (cli.py) before any worker imports prometheus_client; each
worker then writes its values to its own memory-mapped files there, and whichever
worker answers ``GET /metrics`` reads all of them. Counters and histograms of a worker
that died stay counted (totals never go backwards); its gauges are dropped by the
supervisor (``forget_worker``). A single process (one worker, or the app run by the
tests) keeps its metrics in memory.

Labels are bounded: a route is its template (``/v1/campaigns/{id}``), never the path
the client sent, and an unknown method is ``OTHER``.
"""

from __future__ import annotations

import asyncio
import hmac
import os
from collections.abc import Mapping

import asyncpg
from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.concurrency import run_in_threadpool

from polis_api.auth import authorization_header
from polis_api.documents.responses import problem_responses
from polis_api.errors import Unauthorized

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
POOL_SAMPLE_SECONDS = 1.0
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUESTS = Counter(
    "polis_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
DURATION = Histogram(
    "polis_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route template and method.",
    ["route", "method"],
)
RATE_LIMITED = Counter(
    "polis_rate_limited_requests",
    "Requests refused with 429 because the caller's per-minute budget was spent.",
)
IDEMPOTENT_REPLAYS = Counter(
    "polis_idempotent_replays",
    "POSTs answered with the stored response of an earlier request with the same Idempotency-Key.",
)
# livesum: the host's total over the workers that are alive now.
POOL_CONNECTIONS = Gauge(
    "polis_db_pool_connections",
    "Open database connections in the pool.",
    ["pool"],
    multiprocess_mode="livesum",
)
POOL_IN_USE = Gauge(
    "polis_db_pool_connections_in_use",
    "Database connections of the pool that a request holds now.",
    ["pool"],
    multiprocess_mode="livesum",
)
POOL_MAX = Gauge(
    "polis_db_pool_max_connections",
    "The most connections the pool may open (POLIS_POOL_MAX_SIZE, per worker).",
    ["pool"],
    multiprocess_mode="livesum",
)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROCESS_DIR) or None


# The labelled children by (route, method, status): looking them up through
# ``labels()`` on every request cost more than counting. Bounded like the labels.
_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    key = (route, method, status)
    series = _series.get(key)
    if series is None:
        label = method if method in METHODS else "OTHER"
        series = REQUESTS.labels(route, label, str(status)), DURATION.labels(route, label)
        _series[key] = series
    series[0].inc()
    series[1].observe(seconds)


def record_pools(pools: Mapping[str, asyncpg.Pool]) -> None:
    for name, pool in pools.items():
        size = pool.get_size()
        POOL_CONNECTIONS.labels(name).set(size)
        POOL_IN_USE.labels(name).set(size - pool.get_idle_size())
        POOL_MAX.labels(name).set(pool.get_max_size())


async def sample_pools(pools: Mapping[str, asyncpg.Pool]) -> None:
    """Keeps this worker's pool gauges current, whichever worker is scraped."""
    while True:
        record_pools(pools)
        await asyncio.sleep(POOL_SAMPLE_SECONDS)


def render() -> bytes:
    """The exposition: every worker's values when there are several, else this process's."""
    path = multiprocess_dir()
    if path is None:
        return generate_latest(REGISTRY)
    # A fresh registry: the default one would export this worker's values a second time.
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def forget_worker(pid: int) -> None:
    """Drops a dead worker's gauges (its counters stay: totals never go backwards)."""
    path = multiprocess_dir()
    if path is not None:
        multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


def check_metrics_token(expected: str | None, request: Request) -> None:
    if expected is None:
        return
    header = authorization_header(request.scope["headers"]) or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), expected.encode()
    ):
        raise Unauthorized("GET /metrics needs 'Authorization: Bearer <POLIS_METRICS_TOKEN>'.")


def add_metrics_route(app: FastAPI) -> None:
    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics of this host, all workers together",
        description="Text exposition format. No tenant token: when POLIS_METRICS_TOKEN is "
        "set, send it as a bearer token.",
        responses={
            200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}},
            **problem_responses(401),
        },
    )
    async def metrics(request: Request) -> Response:
        state = request.app.state
        check_metrics_token(state.settings.metrics_token, request)
        record_pools({"main": state.pool, "lists": state.list_pool})
        body = await run_in_threadpool(render)  # reads every worker's files
        return Response(body, media_type=CONTENT_TYPE_LATEST)
