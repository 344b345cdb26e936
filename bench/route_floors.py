"""The floor of the change feed and of issue 11 and 12's GET routes (bench/routes.py).

Part of bench/floor_app.py: the same raw ASGI app, no framework, no auth, no rate
limit. Each route sends the statements polis-api's route sends, built by polis-api's
own code (imported, never copied), through asyncpg on a pool like the one the route
uses; PostgreSQL renders the documents and their text goes out unparsed.

- ``GET /v2/interactions?since=&limit=&filter[/data/campaignId]=``: the feed page, the
  snapshot's horizon then the changes after the token, and the same ``meta``
  (``next``, ``more``) polis-api gives;
- ``GET /v2/interactions?filter[/data/campaignId]=`` with ``Accept: text/csv``: in one
  read-only snapshot, the page's open keys (the CSV header), then its rows as CSV;
- ``GET /v1/campaigns/{id}/progress``: the campaign's tallies, then polis-api's pure
  ``progress`` of them (numbers are the answer), with its etag;
- ``GET /v1/campaigns/{id}/review``: the ranking statement;
- ``GET /v1/walklists/{id}/contact-households``: bench/geo_floor.py's download;
- ``GET /v2/households?bbox=`` and ``GET /v1/campaigns/{id}/contact-households?near=``:
  the page polis-api compiles for the query (parsed by its parser per request, as the
  statement depends on the values);
- ``GET /v1/turfs/{id}/contact-households``: the turf's GET, then its doors' page.

Lists answer ``"meta":{}`` as the floor's other lists do (no next-page token), except
the feed, whose token is the point of it. What the floor leaves out is polis-api's own
bookkeeping: auth, tenancy, rate limiting, visibility, validation, error handling.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
import geo_floor
import orjson
from starlette.datastructures import QueryParams

from polis_api import jsoncodec
from polis_api.config import Settings
from polis_api.documents import csv_export
from polis_api.documents import repository as repo
from polis_api.documents.envelope import format_timestamp, utc_now_ms
from polis_api.documents.etag import compute_etag
from polis_api.documents.feed import BEGINNING, SyncToken, decode_token, encode_token
from polis_api.documents.listing import ListQuery, parse_list_request
from polis_api.documents.repository import Position
from polis_api.resources import door_places, review, review_sql
from polis_api.resources.campaigns import CAMPAIGNS
from polis_api.resources.door_records import DOOR_RECORDS
from polis_api.resources.households import HOUSEHOLDS
from polis_api.resources.interactions import INTERACTIONS
from polis_api.resources.progress_sql import whole_campaign_facts
from polis_api.resources.turfs import TURFS
from polis_api.workflow.polygons import check_polygon
from polis_api.workflow.progress import progress

TENANT = uuid.UUID(os.environ["BENCH_TENANT"])
SETTINGS = Settings()
_PLACEHOLDER = "00000000-0000-0000-0000-000000000000"
_LAST_ID = uuid.UUID(int=(1 << 128) - 1)
JSON = [(b"content-type", b"application/json")]
Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class Pools:
    main: asyncpg.Pool  # with polis-api's jsonb codec, as its main pool
    lists: asyncpg.Pool  # planned for each statement's values, as its list pool
    plain: asyncpg.Pool  # text only (bench/geo_floor.py's download)


def _campaign_query(text: str, **kwargs: Any) -> ListQuery:
    """The compiled list of one campaign's interactions; ``$2`` is the campaign."""
    query = parse_list_request(
        QueryParams(f"filter[/data/campaignId]={_PLACEHOLDER}&{text}"),
        INTERACTIONS.field_policy,
        SETTINGS,
        TENANT,
        **kwargs,
    ).query
    assert query.params == [TENANT, _PLACEHOLDER], query.params
    return query


FEED_QUERY = _campaign_query("since=&limit=1")
FEED, _ = repo.changes_sql(INTERACTIONS.sql, FEED_QUERY, BEGINNING, 0, 0)
CSV = csv_export.offer(SETTINGS.max_csv_columns)
CSV_LISTING = parse_list_request(
    QueryParams(f"filter[/data/campaignId]={_PLACEHOLDER}&limit=50"),
    INTERACTIONS.field_policy,
    SETTINGS,
    TENANT,
    representation=CSV,
    keyset_paging=True,
)
_TURF_DOORS = parse_list_request(
    QueryParams("limit=100"),
    DOOR_RECORDS.field_policy,
    SETTINGS,
    TENANT,
    scope={"/data/campaignId": _PLACEHOLDER},
).query
assert _TURF_DOORS.params == [TENANT, _PLACEHOLDER], _TURF_DOORS.params
# $3 and $4 the turf's polygon (turf_routes.py's ``_inside``), then the limit and skip.
TURF_PAGE, _ = repo.page_sql(
    DOOR_RECORDS.sql,
    replace(
        _TURF_DOORS,
        where=f"{_TURF_DOORS.where} AND {door_places.in_turf_clause(3)}",
        params=[TENANT, _PLACEHOLDER, "outer", []],
    ),
)


async def serve(scope: dict[str, Any], send: Any, pools: Pools) -> bool:
    """Answer the request if it is one of these routes; False if it is not."""
    handler = _handler(scope)
    if handler is None:
        return False
    status, body, headers = await handler(scope, pools)
    await respond(send, status, body, headers)
    return True


Answer = tuple[int, bytes, Headers]
Handler = Callable[[dict[str, Any], Pools], Awaitable[Answer]]


def _handler(scope: dict[str, Any]) -> Handler | None:
    path: str = scope["path"]
    if path == "/v2/interactions":
        if b"since=" in scope["query_string"]:
            return feed_page
        return csv_page if _accepts_csv(scope) else None
    if path == "/v2/households":
        return households_page
    parts = path.split("/")
    if len(parts) != 5 or parts[1] != "v1":
        return None
    return {
        ("campaigns", "progress"): campaign_progress,
        ("campaigns", "review"): campaign_review,
        ("campaigns", "contact-households"): campaign_doors_page,
        ("walklists", "contact-households"): walklist_download,
        ("turfs", "contact-households"): turf_doors_page,
    }.get((parts[2], parts[4]))


def _accepts_csv(scope: dict[str, Any]) -> bool:
    return any(name == b"accept" and b"text/csv" in value for name, value in scope["headers"])


def _query(scope: dict[str, Any]) -> dict[str, str]:
    return dict(parse_qsl(scope["query_string"].decode(), keep_blank_values=True))


def _path_id(scope: dict[str, Any]) -> uuid.UUID:
    return uuid.UUID(scope["path"].split("/")[3])


def _page(rows: list[asyncpg.Record]) -> bytes:
    return ('{"data":[' + ",".join(row[0] for row in rows) + '],"meta":{}}').encode()


NOT_FOUND: Answer = (404, b'{"detail":"not found"}', JSON)


# --- the change feed ----------------------------------------------------------------


async def feed_page(scope: dict[str, Any], pools: Pools) -> Answer:
    """As documents/feed.py's ``feed_changes``: the rows after the token and below the
    snapshot's horizon, one more than the page to know if there are more."""
    query = _query(scope)
    since = query["since"]
    after = decode_token(since).after if since else BEGINNING
    limit = min(int(query.get("limit", 100)), SETTINGS.max_page_size)
    async with pools.lists.acquire() as conn:
        bounds = await repo.snapshot_horizon(conn)
        rows = await conn.fetch(
            FEED,
            TENANT,
            query["filter[/data/campaignId]"],
            str(bounds.oldest_running),
            str(after.txid),
            after.id,
            limit + 1,
        )
    more = len(rows) > limit
    rows = rows[:limit]
    # Rows come in (txid, id) order: the last is the greatest position.
    last = Position(int(rows[-1][0]), rows[-1][1]) if rows else after
    if not more:
        last = max(last, Position(bounds.oldest_running - 1, _LAST_ID))
    token = encode_token(SyncToken(last, bounds.cluster, datetime.now(UTC)))
    meta = orjson.dumps({"next": token, "more": more}).decode()
    body = '{"data":[' + ",".join(row[2] for row in rows) + '],"meta":' + meta + "}"
    return 200, body.encode(), JSON


# --- CSV ----------------------------------------------------------------------------


async def csv_page(scope: dict[str, Any], pools: Pools) -> Answer:
    """The header from the page's open keys, then the page, in one snapshot."""
    query = _query(scope)
    listing = replace(
        CSV_LISTING,
        query=replace(
            CSV_LISTING.query,
            params=[TENANT, query["filter[/data/campaignId]"]],
            limit=int(query.get("limit", 50)),
        ),
    )
    async with (
        pools.lists.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        assert CSV.resolve is not None
        shape = await CSV.resolve(conn, INTERACTIONS, listing)
        text, args = repo.page_sql(INTERACTIONS.sql, listing.query, shape.item(INTERACTIONS.sql))
        rows = await conn.fetch(text, *args)
    body = shape.opening + "".join(shape.finished([row[0] for row in rows]))
    return 200, body.encode(), [(b"content-type", shape.content_type.encode())]


# --- issue 12: progress and review --------------------------------------------------


async def campaign_progress(scope: dict[str, Any], pools: Pools) -> Answer:
    campaign = _path_id(scope)
    async with pools.main.acquire() as conn:
        if await repo.fetch_data(conn, CAMPAIGNS.sql, TENANT, campaign) is None:
            return NOT_FOUND
        facts = await whole_campaign_facts(conn, TENANT, str(campaign))
    data = progress(facts)
    body = jsoncodec.dumps({"data": data, "meta": {"asOf": format_timestamp(utc_now_ms())}})
    return 200, body.encode(), [*JSON, (b"etag", f'"{compute_etag(data)}"'.encode())]


async def campaign_review(scope: dict[str, Any], pools: Pools) -> Answer:
    campaign = _path_id(scope)
    async with pools.main.acquire() as conn:
        if await repo.fetch_data(conn, CAMPAIGNS.sql, TENANT, campaign) is None:
            return NOT_FOUND
        rows = await review_sql.ranking(conn, TENANT, campaign, review_sql.Window(), (100, 0), None)
    data = review.ranking_data(rows)
    body = jsoncodec.dumps({"data": data, "meta": {"asOf": format_timestamp(utc_now_ms())}})
    return 200, body.encode(), JSON


# --- issue 11: places, turfs, walk lists --------------------------------------------


async def walklist_download(scope: dict[str, Any], pools: Pools) -> Answer:
    async with pools.plain.acquire() as conn, conn.transaction(readonly=True):
        body = await geo_floor.download(conn, _path_id(scope))
    return NOT_FOUND if body is None else (200, body, JSON)


async def households_page(scope: dict[str, Any], pools: Pools) -> Answer:
    return await _geo_page(scope, pools, None)


async def campaign_doors_page(scope: dict[str, Any], pools: Pools) -> Answer:
    campaign = _path_id(scope)
    async with pools.main.acquire() as conn:
        if await repo.fetch_data(conn, CAMPAIGNS.sql, TENANT, campaign) is None:
            return NOT_FOUND
    return await _geo_page(scope, pools, str(campaign))


async def _geo_page(scope: dict[str, Any], pools: Pools, campaign: str | None) -> Answer:
    """Households (no campaign), or a campaign's door records, by bbox= or near=."""
    resource = HOUSEHOLDS if campaign is None else DOOR_RECORDS
    listing = parse_list_request(
        QueryParams(scope["query_string"].decode()),
        resource.field_policy,
        SETTINGS,
        TENANT,
        None if campaign is None else {"/data/campaignId": campaign},
        geo=resource.geo,
    )
    text, args = repo.page_sql(resource.sql, listing.query)
    async with pools.lists.acquire() as conn:
        rows = await conn.fetch(text, *args)
    return 200, _page(rows), JSON


async def turf_doors_page(scope: dict[str, Any], pools: Pools) -> Answer:
    async with pools.main.acquire() as conn:
        turf = await repo.fetch_data(conn, TURFS.sql, TENANT, _path_id(scope))
    if turf is None:
        return NOT_FOUND
    boundary = turf["boundary"]
    polygon = check_polygon(boundary, max_positions=len(str(boundary)))
    limit = int(_query(scope).get("limit", 100))
    args = [str(turf["campaignId"]), *door_places.polygon_params(polygon), limit, 0]
    async with pools.lists.acquire() as conn:
        rows = await conn.fetch(TURF_PAGE, TENANT, *args)
    return 200, _page(rows), JSON


async def respond(send: Any, status: int, body: bytes, headers: Headers) -> None:
    length = [(b"content-length", str(len(body)).encode())]
    start = {"type": "http.response.start", "status": status, "headers": headers + length}
    await send(start)
    await send({"type": "http.response.body", "body": body})
