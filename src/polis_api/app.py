"""create_app(): lifespan, routers, error handlers, middleware."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi

from polis_api import db
from polis_api.auth import TokenVerifier
from polis_api.config import ConfigError, Settings, get_settings
from polis_api.dashboard import add_dashboard_routes
from polis_api.docs_pages import add_docs_routes
from polis_api.documents.fastpath import DocumentFastPath
from polis_api.documents.listing import RecentLists
from polis_api.documents.responses import json_response, problem_responses
from polis_api.edge.metrics import add_metrics_route, sample_pools
from polis_api.edge.observe import Edge, route_templates
from polis_api.errors import ServiceUnavailable
from polis_api.idempotency import IdempotencyMiddleware
from polis_api.middleware import BodyGuard, SpoolPolicy
from polis_api.problems import (
    DATABASE_UNAVAILABLE,
    DatabaseFaultGuard,
    install_problem_handlers,
    problem_response,
)
from polis_api.ratelimit import RateLimiter, RateLimitMiddleware
from polis_api.resources.imports import IMPORT_CONTENT_TYPES, IMPORTS_PATH
from polis_api.resources.registry import RESOURCES, routers
from polis_api.tenancy import TenantRegistry

DESCRIPTION = """\
A self-hostable, Polis-compatible canvassing API. Every resource is a JSON document
with an envelope (`id`, `data`, `meta`, `customerId`, `securityGroupId`), an etag,
soft delete, RFC 6902 PATCH and filtered lists. Authenticate with
`Authorization: Bearer <JWT>`; errors are `application/problem+json`.
"""

log = logging.getLogger("polis_api")
POOL_CLOSE_SECONDS = 5
READY_CHECK_SECONDS = 2


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    if not settings.database_url:
        raise ConfigError(
            "DATABASE_URL is not set. Use `polis-api serve`, which starts the embedded "
            "PostgreSQL, or set DATABASE_URL=postgresql://user@host:5432/dbname."
        )
    app = FastAPI(
        title="polis-api",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=_lifespan,
        default_response_class=Response,
        # Served by docs_pages from bundled assets instead of FastAPI's CDN pages.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.verifier = TokenVerifier(settings)
    app.state.recent_lists = RecentLists()
    install_problem_handlers(app)
    # The routes themselves, in order, rather than one included router per resource:
    # FastAPI matches an included router as a nested table, so every request paid a
    # nested match for each of them (about two dozen) before reaching its own route.
    for router in routers():
        app.router.routes.extend(router.routes)
    _add_operations_routes(app)
    add_metrics_route(app)
    add_docs_routes(app)
    add_dashboard_routes(app)
    # Added first, so it runs inside BodyGuard: sizes are checked before bodies are read.
    app.add_middleware(IdempotencyMiddleware, ttl_hours=settings.idempotency_ttl_hours)
    app.add_middleware(DocumentFastPath, resources=RESOURCES)
    app.add_middleware(
        BodyGuard,
        max_bytes=settings.max_body_bytes,
        max_bulk_bytes=settings.max_bulk_body_bytes,
        spooled={IMPORTS_PATH: SpoolPolicy(settings.import_max_bytes, IMPORT_CONTENT_TYPES)},
    )
    # A database failure inside a middleware (idempotency) is a 503 like any other.
    app.add_middleware(DatabaseFaultGuard)
    app.add_middleware(RateLimitMiddleware)  # refusals cost the least
    # Outermost: every answer, refusals included, gets its request id and is counted.
    app.add_middleware(Edge, max_request_id_length=settings.max_request_id_length)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    assert settings.database_url is not None
    pool = await db.create_pool(settings, settings.database_url)
    app.state.pool = pool
    app.state.list_pool = await db.create_pool(settings, settings.database_url, for_lists=True)
    app.state.tenants = TenantRegistry(pool, RESOURCES)
    limiter = _rate_limiter(settings)
    app.state.rate_limiter = limiter
    if limiter is not None:
        limiter.start(pool)
    # Before serving: the first 429 or replay must not pay for compiling them.
    app.state.route_templates = route_templates(app.router.routes)
    sampler = asyncio.create_task(
        sample_pools({"main": pool, "lists": app.state.list_pool}), name="pool-metrics"
    )
    # What is loaded by now (modules, routes, models, compiled statements) lives as long
    # as the process: the cycle collector need not walk it on every full collection.
    gc.freeze()
    try:
        yield
    finally:
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
        if limiter is not None:
            await limiter.stop(pool)
        # uvicorn gets here after in-flight requests have finished (or were cancelled
        # at POLIS_SHUTDOWN_TIMEOUT_SECONDS), so every connection is back by now.
        await _close_pool(app.state.list_pool)
        await _close_pool(pool)


async def _close_pool(pool: asyncpg.Pool) -> None:
    try:
        await asyncio.wait_for(pool.close(), POOL_CLOSE_SECONDS)
    except TimeoutError:
        log.warning("the database pool did not close in %s s; dropped it", POOL_CLOSE_SECONDS)
        pool.terminate()
    except Exception as exc:  # shutdown goes on whatever state the database is in
        log.warning("the database pool did not close cleanly (%r); dropped it", exc)
        pool.terminate()
    else:
        log.info("database pool closed")


def _rate_limiter(settings: Settings) -> RateLimiter | None:
    if settings.rate_limit_per_minute == 0:
        return None
    return RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_sync_seconds)


def _add_operations_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["operations"], summary="The process is up")
    async def healthz() -> Response:
        return json_response('{"status":"ok"}')

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="The database answers and its schema is at the latest migration",
        responses=problem_responses(503),
    )
    async def readyz(request: Request) -> Response:
        expected = db.head_revision()
        try:
            async with asyncio.timeout(READY_CHECK_SECONDS):
                async with request.app.state.pool.acquire() as conn:
                    revision = await db.schema_revision(conn)
        except DATABASE_UNAVAILABLE as exc:
            raise ServiceUnavailable(
                "The database does not answer.", headers={"Retry-After": "1"}
            ) from exc
        if revision != expected:
            return problem_response(
                ServiceUnavailable(
                    f"The schema is at {revision or 'no revision'}; expected {expected}. "
                    "Run `polis-api migrate`."
                )
            )
        return json_response('{"status":"ready","schema":"' + expected + '"}')


# What the HTTP edge may answer on any route, before the route runs: a request head that
# is too slow or too large (a long filter in the URL counts), a spent rate budget, a
# database outage.
EDGE_RESPONSES = {
    408: "The request line and headers did not arrive in time",
    429: "Rate limit reached (see Retry-After)",
    431: "The request line and headers are larger than allowed",
    503: "The database is unavailable or the server is at its connection limit; retry later",
}


def _add_edge_responses(operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    problem = next(
        (
            answer["content"]
            for answer in responses.values()
            if "application/problem+json" in answer.get("content", {})
        ),
        None,
    )
    for status, description in EDGE_RESPONSES.items():
        entry: dict[str, Any] = {"description": description}
        if problem is not None:
            entry["content"] = problem
        responses.setdefault(str(status), entry)


# Probes and the scrape take no tenant token (/metrics may take POLIS_METRICS_TOKEN,
# which is not a tenant's bearer token; its description says so).
_WITHOUT_TENANT_TOKEN = frozenset({"/healthz", "/readyz", "/metrics"})


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    schema.setdefault("components", {})["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            _add_edge_responses(operation)
            # Validation failures are 400 here (docs/api.md, Errors), never FastAPI's default 422.
            operation.get("responses", {}).pop("422", None)
            if path not in _WITHOUT_TENANT_TOKEN:
                operation["security"] = [{"bearer": []}]
    for name in ("HTTPValidationError", "ValidationError"):
        schema["components"].get("schemas", {}).pop(name, None)
    app.openapi_schema = schema
    return schema
