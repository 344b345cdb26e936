"""The floor: the least this stack can do to answer the two reads polis-api answers.

A raw ASGI app (no framework, no auth) on uvicorn with uvloop and httptools; asyncpg
runs the server's own statements, PostgreSQL builds the JSON (``json_build_object``,
the very envelope SQL of polis-api) and the text goes out as bytes, never parsed. The
pool skips asyncpg's reset query on release (``SELECT pg_advisory_unlock_all()``, a
second round trip per request): the app keeps no session state to reset.

    DATABASE_URL=... BENCH_TENANT=<uuid> uvicorn floor_app:app --app-dir bench \\
        --loop uvloop --http httptools --workers 1

Routes: ``GET /v2/interactions/{id}`` and
``GET /v2/interactions?filter[/data/campaignId]=<id>&limit=50&skip=<n>``.
"""

from __future__ import annotations

import os
import uuid
from typing import Any
from urllib.parse import parse_qsl

import asyncpg

from polis_api.documents.repository import document_json_sql

TENANT = uuid.UUID(os.environ["BENCH_TENANT"])
DOCUMENT = document_json_sql("interactions")
# The statements polis-api runs for these two reads (the list in its best known form).
GET = (
    f"SELECT ({DOCUMENT})::text, etag FROM interactions "
    "WHERE customer_id = $1 AND id = $2 AND NOT is_deleted"
)
# A page finds its ids first (from the index) and renders only those documents.
LIST = (
    f"SELECT ({DOCUMENT})::text FROM interactions JOIN ("
    "SELECT id AS page_id FROM interactions "
    "WHERE customer_id = $1 AND NOT is_deleted AND (data ->> 'campaignId') = $2 "
    "ORDER BY id ASC LIMIT $3 OFFSET $4"
    ") AS page ON id = page.page_id WHERE customer_id = $1 ORDER BY id ASC"
)
PREFIX = "/v2/interactions"
JSON = [(b"content-type", b"application/json")]

pool: asyncpg.Pool | None = None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    path = scope["path"]
    assert pool is not None
    if path.startswith(PREFIX + "/"):
        try:
            doc_id = uuid.UUID(path[len(PREFIX) + 1 :])
        except ValueError:
            await respond(send, 400, b'{"detail":"bad id"}')
            return
        row = await pool.fetchrow(GET, TENANT, doc_id)
        if row is None:
            await respond(send, 404, b'{"detail":"not found"}')
            return
        await respond(send, 200, row[0].encode(), [(b"etag", f'"{row[1]}"'.encode())])
    elif path == PREFIX:
        query = dict(parse_qsl(scope["query_string"].decode()))
        limit, skip = int(query.get("limit", 100)), int(query.get("skip", 0))
        rows = await pool.fetch(LIST, TENANT, query["filter[/data/campaignId]"], limit, skip)
        body = '{"data":[' + ",".join(row[0] for row in rows) + '],"meta":{}}'
        await respond(send, 200, body.encode())
    else:
        await respond(send, 404, b'{"detail":"not found"}')


async def respond(
    send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    length = [(b"content-length", str(len(body)).encode())]
    start = {"type": "http.response.start", "status": status, "headers": JSON + length}
    if headers:
        start["headers"] += headers
    await send(start)
    await send({"type": "http.response.body", "body": body})


async def keep_session(conn: asyncpg.Connection) -> None:
    """No reset query: nothing here takes advisory locks, LISTENs or SETs."""


async def lifespan(receive: Any, send: Any) -> None:
    global pool
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            pool = await asyncpg.create_pool(
                os.environ["DATABASE_URL"], min_size=2, max_size=10, reset=keep_session
            )
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if pool is not None:
                await pool.close()
            await send({"type": "lifespan.shutdown.complete"})
            return
