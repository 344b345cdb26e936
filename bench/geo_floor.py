"""The floor of the walk-list download: the least this stack can do to answer it.

``GET /v1/walklists/{id}/contact-households`` only. A raw ASGI app (no framework, no
auth) on uvicorn with uvloop and httptools; asyncpg sends, in one read-only
transaction as the route does, the very statements the route sends, imported from its
module rather than copied: the walk list's GET, the doors in walk order with their
contact and household (``download_view``), the campaign's GET, its linked statuses,
the statuses, the segments (and each matched survey's GET). PostgreSQL renders every
document; the floor joins the texts into the answer without parsing them (only the
walk list's and the campaign's JSON, for the ids and ``fields`` it needs). What it
leaves out is polis-api's own bookkeeping: auth, tenancy, rate limiting, visibility,
and decoding and re-encoding each door.

    DATABASE_URL=... BENCH_TENANT=<uuid> uvicorn geo_floor:app --app-dir bench \\
        --loop uvloop --http httptools --workers 1
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import asyncpg
import orjson

from polis_api.resources import walklist_download as route
from polis_api.resources.campaign_status_links import LIVE_LINKED_SQL
from polis_api.resources.campaigns import CAMPAIGNS
from polis_api.resources.surveys import SURVEYS
from polis_api.resources.walklists import WALKLISTS
from polis_api.workflow.segments import criteria_match

TENANT = uuid.UUID(os.environ["BENCH_TENANT"])
PREFIX, SUFFIX = "/v1/walklists/", "/contact-households"
_VIEW = route.download_view(2, live_only=True)  # as the route's page reads it
DOORS = (
    f"SELECT ({_VIEW.listed})::text FROM {_VIEW.source} WHERE NOT is_deleted ORDER BY walk_order"
)
JSON = [(b"content-type", b"application/json")]

pool: asyncpg.Pool | None = None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    path = scope["path"]
    if not (path.startswith(PREFIX) and path.endswith(SUFFIX)):
        await respond(send, 404, b'{"detail":"not found"}')
        return
    try:
        walklist_id = uuid.UUID(path[len(PREFIX) : -len(SUFFIX)])
    except ValueError:
        await respond(send, 400, b'{"detail":"bad id"}')
        return
    assert pool is not None
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        body = await download(conn, walklist_id)
    if body is None:
        await respond(send, 404, b'{"detail":"not found"}')
    else:
        await respond(send, 200, body)


async def download(conn: asyncpg.Connection, walklist_id: uuid.UUID) -> bytes | None:
    walklist = await conn.fetchrow(WALKLISTS.sql.get, TENANT, walklist_id)
    if walklist is None:
        return None
    data = orjson.loads(walklist[0])["data"]
    campaign_id = str(data["campaignId"])
    rows = await conn.fetch(DOORS, TENANT, str(walklist_id), campaign_id, data.get("doors") or [])
    doors = [row[0] for row in rows]
    campaign = await conn.fetchrow(CAMPAIGNS.sql.get, TENANT, uuid.UUID(campaign_id))
    linked = await conn.fetch(LIVE_LINKED_SQL, TENANT, uuid.UUID(campaign_id))
    statuses = await conn.fetch(route._STATUSES, TENANT, sorted(row[0] for row in linked))
    segments = await conn.fetch(route._SEGMENTS_IN_ORDER, TENANT, campaign_id)
    by_contact = survey_by_contact(doors, segments) if segments else {}
    surveys = [
        (await conn.fetchrow(SURVEYS.sql.get, TENANT, uuid.UUID(s)))[0]
        for s in sorted(set(by_contact.values()))
    ]
    fields = orjson.dumps(orjson.loads(campaign[0])["data"].get("fields")).decode()
    meta = (
        f'{{"campaign":{campaign[0]},"fields":{fields},'
        f'"statuses":[{",".join(row[0] for row in statuses)}],'
        f'"surveys":[{",".join(surveys)}],"surveyByContact":{orjson.dumps(by_contact).decode()}}}'
    )
    return f'{{"data":[{",".join(doors)}],"meta":{meta}}}'.encode()


def survey_by_contact(doors: list[str], segments: list[asyncpg.Record]) -> dict[str, str]:
    """As the route: each contact's first matching segment's survey (only with segments)."""
    found: dict[str, str] = {}
    for text in doors:
        contact = orjson.loads(text)["data"].get("contact")
        if not contact:
            continue
        for segment in segments:
            if criteria_match(contact, orjson.loads(segment["criteria"])):
                found[contact["id"]] = str(segment["survey_id"])
                break
    return found


async def respond(send: Any, status: int, body: bytes) -> None:
    length = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": JSON + length})
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
