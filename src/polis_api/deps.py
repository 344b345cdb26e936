"""Request-scoped dependencies: one pooled connection, one transaction per write.

``scope="function"`` closes them when the handler returns, before the response is
sent, so a client never sees a 2xx for a transaction that has not committed.
"""

from collections.abc import AsyncIterator
from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from polis_api.idempotency import connection_of


async def read_connection(request: Request) -> AsyncIterator[asyncpg.Connection]:
    async with request.app.state.pool.acquire() as conn:
        yield conn


async def write_connection(request: Request) -> AsyncIterator[asyncpg.Connection]:
    shared = connection_of(request.scope)
    if shared is not None:
        # An idempotent POST: join its transaction, which also stores the response.
        async with shared.transaction():
            yield shared
        return
    async with request.app.state.pool.acquire() as conn, conn.transaction():
        yield conn


ReadConnection = Annotated[asyncpg.Connection, Depends(read_connection, scope="function")]
WriteConnection = Annotated[asyncpg.Connection, Depends(write_connection, scope="function")]
