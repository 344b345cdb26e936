"""Tenants are created the first time one of their tokens is seen, with Polis' default statuses."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

from polis_api.documents import repository as repo
from polis_api.documents.envelope import utc_now_ms
from polis_api.documents.resource import Resource


class TenantRegistry:
    """Remembers which tenants this process has already made sure exist."""

    def __init__(self, pool: asyncpg.Pool, resources: Sequence[Resource]) -> None:
        self._pool = pool
        self._resources = resources
        self._known: set[uuid.UUID] = set()

    async def ensure(self, customer_id: uuid.UUID) -> None:
        if customer_id in self._known:
            return
        async with self._pool.acquire() as conn, conn.transaction():
            await self._create_if_new(conn, customer_id)
        self._known.add(customer_id)

    async def _create_if_new(self, conn: asyncpg.Connection, customer_id: uuid.UUID) -> None:
        # Of several workers meeting a new tenant at once, the unique key lets exactly
        # one insert it (the others wait for its commit), so defaults are seeded once.
        created = await conn.fetchval(
            "INSERT INTO tenants (customer_id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING true",
            customer_id,
        )
        if not created:
            return
        now = utc_now_ms()
        for resource in self._resources:
            docs = await resource.hooks.seed_tenant(conn, customer_id, now)
            if docs:
                await repo.insert_many(conn, resource.sql, docs)
