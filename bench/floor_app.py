"""The floor: the least this stack can do to answer the two reads polis-api answers.

A raw ASGI app (no framework, no auth) on uvicorn with uvloop and httptools; asyncpg
runs the server's own statements, PostgreSQL builds the JSON (``json_build_object``,
the very envelope SQL of polis-api) and the text goes out as bytes, never parsed. The
pool skips asyncpg's reset query on release (``SELECT pg_advisory_unlock_all()``, a
second round trip per request): the app keeps no session state to reset.

    DATABASE_URL=... BENCH_TENANT=<uuid> uvicorn floor_app:app --app-dir bench \\
        --loop uvloop --http httptools --workers 1

Routes: ``GET /v2/interactions/{id}`` and
``GET /v2/interactions?filter[/data/campaignId]=<id>&limit=50&skip=<n>``; for issue 10
``GET /v1/lists/{id}/contact-households?limit=<n>`` (a page, or past the page size
the whole list through a cursor, as polis-api streams it) and ``POST /v2/contacts/bulk``
(every item in one INSERT; the per-item 207 answer polis-api gives); for issue 13 the
write floor, ``POST /v2/interactions`` and ``POST /v2/interactions/bulk``: the very
interaction INSERT and door-record lock and UPDATE polis-api issues, one transaction
per request (a bulk call: its items in door order, each its own insert and update). The list
statements are the ones the server's own code builds; like polis-api's list pool,
they are planned for their values. What the floor leaves out is polis-api's own
bookkeeping: auth, rate limiting, the stream-slot lock, validating each contact.

For issue 13's table, bench/route_floors.py answers the change feed page and issue 11
and 12's GET routes (progress, review, the walk-list download, bbox and near, a turf's
doors, a CSV page) on the same pools.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
import orjson
import route_floors
from common import WRITER
from starlette.datastructures import QueryParams

from polis_api.config import Settings
from polis_api.db import _init_connection
from polis_api.documents import repository as repo
from polis_api.documents.bulk_results import ItemOutcome, render
from polis_api.documents.envelope import StoredDocument, utc_now_ms
from polis_api.documents.listing import parse_list_request
from polis_api.documents.repository import document_json_sql, list_sql, page_sql
from polis_api.resources.door_records import DOOR_RECORDS
from polis_api.resources.interactions import INTERACTIONS
from polis_api.resources.lists import LIST_MEMBERS, LISTS
from polis_api.workflow.door import apply_interaction, should_follow

TENANT = uuid.UUID(os.environ["BENCH_TENANT"])
WRITER_ID = uuid.UUID(WRITER)
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

# --- issue 10 -----------------------------------------------------------------------

SETTINGS = Settings()  # polis-api's defaults (the environment gives the secret)
LISTS_PREFIX = "/v1/lists/"
MEMBERS_SUFFIX = "/contact-households"
_PLACEHOLDER = "00000000-0000-0000-0000-000000000000"


def _members_query(limit: int) -> Any:
    """The query polis-api compiles for ``GET /v1/lists/{id}/contact-households``."""
    listing = parse_list_request(
        QueryParams(f"limit={limit}"),
        LIST_MEMBERS.field_policy,
        SETTINGS,
        TENANT,
        {"/data/listId": _PLACEHOLDER},
    )
    assert listing.query.params == [TENANT, _PLACEHOLDER], listing.query.params
    return listing.query


# The list's own GET (polis-api answers 404 for an unknown list), then the members:
# a page by ids first, or everything through an SQL cursor fetched 500 rows at a time.
LIST_GET = LISTS.sql.get
MEMBER_PAGE, _ = page_sql(LIST_MEMBERS.sql, _members_query(SETTINGS.max_page_size))
MEMBER_ALL, _ = list_sql(LIST_MEMBERS.sql, _members_query(SETTINGS.max_page_size + 1))
STREAM_BATCH = 500
CHUNK_BYTES = 65536

# Every item of the call in one multi-row INSERT under the contacts' unique indexes;
# a primary household must be the tenant's, checked in the same statement.
CONTACT_INSERT = (
    "INSERT INTO contacts (customer_id, id, security_group_id, data, created, modified, "
    "created_by, modified_by, is_deleted, etag) "
    "SELECT $1, u.id, $1, u.data, $2, $2, $3, $3, false, u.etag "
    "FROM unnest($4::uuid[], $5::jsonb[], $6::text[]) AS u(id, data, etag) "
    "WHERE (u.data ->> 'primaryHouseholdId') IS NULL OR EXISTS (SELECT 1 FROM households AS h "
    "WHERE h.customer_id = $1 AND h.id = (u.data ->> 'primaryHouseholdId')::uuid "
    "AND NOT h.is_deleted) "
    f"ON CONFLICT DO NOTHING RETURNING id, ({document_json_sql('contacts')})::text"
)
NOT_WRITTEN = orjson.dumps(
    {"title": "Not written", "status": 409, "detail": "key taken or household unknown"}
).decode()

pool: asyncpg.Pool | None = None
write_pool: asyncpg.Pool | None = None
list_pool: asyncpg.Pool | None = None
routes: route_floors.Pools | None = None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    path = scope["path"]
    assert pool is not None and routes is not None
    if await route_floors.serve(scope, send, routes):
        return
    if path == PREFIX + "/bulk" and scope["method"] == "POST":
        await post_interactions_bulk(receive, send)
    elif path.startswith(PREFIX + "/"):
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
    elif path == PREFIX and scope["method"] == "POST":
        await post_interaction(receive, send)
    elif path == PREFIX:
        query = dict(parse_qsl(scope["query_string"].decode()))
        limit, skip = int(query.get("limit", 100)), int(query.get("skip", 0))
        # On the list pool, planned for its values as polis-api's list pool plans a page.
        assert list_pool is not None
        rows = await list_pool.fetch(LIST, TENANT, query["filter[/data/campaignId]"], limit, skip)
        body = '{"data":[' + ",".join(row[0] for row in rows) + '],"meta":{}}'
        await respond(send, 200, body.encode())
    elif path.startswith(LISTS_PREFIX) and path.endswith(MEMBERS_SUFFIX):
        await list_members(scope, send, path[len(LISTS_PREFIX) : -len(MEMBERS_SUFFIX)])
    elif path == "/v2/contacts/bulk" and scope["method"] == "POST":
        await contacts_bulk(receive, send)
    else:
        await respond(send, 404, b'{"detail":"not found"}')


async def list_members(scope: dict[str, Any], send: Any, list_text: str) -> None:
    assert pool is not None and list_pool is not None
    list_id = uuid.UUID(list_text)
    limit = int(dict(parse_qsl(scope["query_string"].decode())).get("limit", 100))
    if await pool.fetchrow(LIST_GET, TENANT, list_id) is None:
        await respond(send, 404, b'{"detail":"not found"}')
        return
    if limit <= SETTINGS.max_page_size:
        async with list_pool.acquire() as conn:
            rows = await conn.fetch(MEMBER_PAGE, TENANT, str(list_id), limit, 0)
        body = '{"data":[' + ",".join(row[0] for row in rows) + '],"meta":{}}'
        await respond(send, 200, body.encode())
        return
    async with (
        list_pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        await conn.execute(
            f"DECLARE polis_stream NO SCROLL CURSOR FOR {MEMBER_ALL}",
            TENANT,
            str(list_id),
            limit,
            0,
        )
        start = {"type": "http.response.start", "status": 200, "headers": JSON}
        await send(start)
        buffer, size, separator = ['{"data":['], 0, ""
        while rows := await conn.fetch(f"FETCH {STREAM_BATCH} FROM polis_stream"):
            for row in rows:
                buffer.append(separator + row[0])
                separator = ","
                size += len(row[0])
                if size >= CHUNK_BYTES:
                    chunk = "".join(buffer).encode()
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    buffer, size = [], 0
        await conn.execute("CLOSE polis_stream")
    buffer.append('],"meta":{}}')
    await send({"type": "http.response.body", "body": "".join(buffer).encode()})


async def contacts_bulk(receive: Any, send: Any) -> None:
    """One INSERT of every item, then polis-api's 207 answer: one result per item."""
    assert pool is not None
    items = orjson.loads(await read_body(receive))["data"]
    now = utc_now_ms()
    template = StoredDocument(
        id=uuid.UUID(int=0),
        customer_id=TENANT,
        security_group_id=TENANT,
        data={},
        created=now,
        modified=now,
        created_by=WRITER_ID,
        modified_by=WRITER_ID,
    )
    ids, data, etags = [], [], []
    for item in items:
        doc = replace(template, id=uuid.uuid4(), data=item["data"])
        ids.append(doc.id)
        data.append(orjson.dumps(doc.data).decode())
        etags.append(doc.etag("contacts"))
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(CONTACT_INSERT, TENANT, now, WRITER_ID, ids, data, etags)
    written = {row[0]: row[1] for row in rows}
    outcomes = [
        ItemOutcome(201, written[doc_id]) if doc_id in written else ItemOutcome(409, NOT_WRITTEN)
        for doc_id in ids
    ]
    await respond(send, 207, render(outcomes).encode())


# --- issue 13: the write floor ----------------------------------------------------------


async def post_interaction(receive: Any, send: Any) -> None:
    """The knock and its door in one transaction: what polis-api's write must at least do."""
    assert write_pool is not None
    data = orjson.loads(await read_body(receive))
    async with write_pool.acquire() as conn, conn.transaction():
        body = await write_knock(conn, data, utc_now_ms())
    if body is None:
        await respond(send, 409, NOT_WRITTEN.encode())
        return
    await respond(send, 201, body.encode())


async def post_interactions_bulk(receive: Any, send: Any) -> None:
    """The outbox: every knock in one transaction, door by door (polis-api's lock order),
    answered per item as polis-api answers."""
    assert write_pool is not None
    items = orjson.loads(await read_body(receive))["data"]
    order = sorted(
        range(len(items)),
        key=lambda n: (items[n]["campaignId"], items[n]["contactHouseholdId"]),
    )
    outcomes: list[ItemOutcome | None] = [None] * len(items)
    now = utc_now_ms()
    async with write_pool.acquire() as conn, conn.transaction():
        for n in order:
            body = await write_knock(conn, items[n], now)
            outcomes[n] = ItemOutcome(201, body) if body else ItemOutcome(409, NOT_WRITTEN)
    await respond(send, 207, render([o for o in outcomes if o is not None]).encode())


async def write_knock(conn: asyncpg.Connection, data: dict[str, Any], now: Any) -> str | None:
    """Insert the interaction, then lock its door and move it if this knock is the latest."""
    doc_id = uuid.UUID(data.pop("id")) if "id" in data else uuid.uuid4()
    doc = StoredDocument(
        id=doc_id,
        customer_id=TENANT,
        security_group_id=TENANT,
        data=data,
        created=now,
        modified=now,
        created_by=WRITER_ID,
        modified_by=WRITER_ID,
    )
    body = await repo.insert(conn, INTERACTIONS.sql, doc, doc.etag("interactions"))
    if body is None:
        return None
    door = await repo.fetch_for_write_by_natural_key(
        conn, DOOR_RECORDS.sql, TENANT, [data["campaignId"], data["contactHouseholdId"]]
    )
    if door is not None and should_follow(door[0].data, data["timestamp"]):
        current, etag = door
        moved = apply_interaction(current.data, data, None, None, interaction_id=str(doc_id))
        revised = current.revised(data=moved, by=WRITER_ID, at=now)
        await repo.update_if_etag(
            conn, DOOR_RECORDS.sql, revised, revised.etag("contact-household-campaigns"), etag
        )
    return body


async def read_body(receive: Any) -> bytes:
    parts = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


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
    global pool, list_pool, write_pool, routes
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            pool = await asyncpg.create_pool(
                os.environ["DATABASE_URL"], min_size=2, max_size=10, reset=keep_session
            )
            # polis-api's own jsonb codec: the knocks bind documents as Python objects.
            write_pool = await asyncpg.create_pool(
                os.environ["DATABASE_URL"],
                min_size=2,
                max_size=10,
                reset=keep_session,
                init=_init_connection,
            )
            list_pool = await asyncpg.create_pool(
                os.environ["DATABASE_URL"],
                min_size=1,
                max_size=5,
                reset=keep_session,
                server_settings={"plan_cache_mode": "force_custom_plan"},
            )
            routes = route_floors.Pools(main=write_pool, lists=list_pool, plain=pool)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            for opened in (pool, list_pool, write_pool):
                if opened is not None:
                    await opened.close()
            await send({"type": "lifespan.shutdown.complete"})
            return
