"""Issue 13's table of issue 11 and 12 GET routes (and the change feed) against their floor.

What run.py needs to drive them on its main dataset:

- ``ensure`` adds what the dataset lacks for them: turfs of the read campaigns, and
  walk lists holding doors of a campaign of their own (holding a door writes its
  record, which would move a read campaign's delta sync). Built beside the reused
  dataset, in seconds; ``SHAPE`` names the build, and a new one replaces the old.
- ``write_paths`` writes one file of request paths per route (wrk picks a random line:
  bench/wrk/paths.lua), and the change feed's sync tokens;
- ``endpoints`` are run.py's Endpoints for them; ``FLOORED`` the ones the floor serves
  (bench/route_floors.py), i.e. all of them.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
from common import (
    AUTHOR,
    CAMPAIGNS,
    ORGANIZATION,
    READ_CAMPAIGNS,
    TENANT,
    WRITER,
    Scale,
    campaign_id,
    contact_household_id,
    derived_uuid,
    household_of,
    turf,
)
from dataset import COLUMNS, People, Row, at, document_row, list_size, same_as_server
from geo import query_string
from loadgen import Endpoint

from polis_api.documents.feed import SyncToken, encode_token
from polis_api.documents.repository import Position
from polis_api.resources.campaigns import DEFAULT_FIELDS
from polis_api.resources.door_records import DoorRecordData
from polis_api.resources.turfs import TurfData
from polis_api.resources.walklists import WalkListData
from polis_api.workflow.door import new_record

# Bump when what ``ensure`` builds changes: the database then gets the new build.
SHAPE = {"version": 1}
MARKER = "bench_routes"
# The walk lists' campaign: past the 100 of the dataset, so no read or write benchmark
# of theirs sees its door records.
WALK_CAMPAIGN = campaign_id(CAMPAIGNS)
WALKLISTS = 4
WALKLIST_DOORS = 500  # bench/geo.py's walk list, and a canvasser's afternoon
TURFS = 10  # one for each of the first read campaigns
TURF_SIDE = 0.1  # degrees: about 1/25 of the households' square, a few hundred doors
FEED_PAGE = 500
NEAR_MILES = 1.0  # the main dataset is a county, not a town: tens of doors within a mile
LINES = 2_000  # request paths per file (random centres, campaigns, tokens)
CSV = "text/csv"


def walklist_id(w: int) -> str:
    return derived_uuid("walklist", w)


def turf_id(t: int) -> str:
    return derived_uuid("turf", t)


def walklist_doors(w: int) -> list[str]:
    """Contact-households that have contacts (the list's members): the download embeds them."""
    first = w * WALKLIST_DOORS
    return [contact_household_id(j) for j in range(first, first + WALKLIST_DOORS)]


def turf_boundary(t: int) -> dict[str, Any]:
    """A square somewhere inside the households' square (bench/dataset.py's People)."""
    rng = random.Random(f"turf:{t}")
    south = 33.6 + rng.random() * (0.5 - TURF_SIDE)
    west = -84.6 + rng.random() * (0.5 - TURF_SIDE)
    north, east = south + TURF_SIDE, west + TURF_SIDE
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [[[round(x, 6) for x in p] for p in ring]]}


def fixture_rows(scale: Scale) -> dict[str, list[Row]]:
    """The walk lists' campaign and its held doors, the walk lists, and the turfs."""
    if list_size(scale) < WALKLISTS * WALKLIST_DOORS:
        raise SystemExit(f"the walk lists need {WALKLISTS * WALKLIST_DOORS} contacts")
    created = at(-10 * 86_400_000)
    campaign = {
        "name": "Bench walk-list campaign",
        "status": "started",
        "organizationId": ORGANIZATION,
        "fields": DEFAULT_FIELDS,
        "lists": [],
    }
    doors, walklists = [], []
    for w in range(WALKLISTS):
        held = walklist_doors(w)
        data = {
            "campaignId": WALK_CAMPAIGN,
            "name": f"Bench walk {w}",
            "assigneeId": WRITER,
            "doors": held,
            "status": "open",
        }
        if w == 0:
            same_as_server(WalkListData, data)
        walklists.append(document_row("walklists", walklist_id(w), data, created, check=w == 0))
        for n, door in enumerate(held):
            record = new_record(WALK_CAMPAIGN, door)
            record["reservation"] = {"reserved": True, "walklistId": walklist_id(w)}
            if w == n == 0:
                same_as_server(DoorRecordData, record)
            doc_id = derived_uuid("walk-door", w * WALKLIST_DOORS + n)
            doors.append(document_row("contact-household-campaigns", doc_id, record, created))
    turfs = []
    for t in range(TURFS):
        data = {
            "campaignId": campaign_id(t),
            "name": f"Bench turf {t}",
            "boundary": turf_boundary(t),
        }
        if t == 0:
            same_as_server(TurfData, data)
        turfs.append(document_row("turfs", turf_id(t), data, created, check=t == 0))
    return {
        "campaigns": [document_row("campaigns", WALK_CAMPAIGN, campaign, created)],
        "contact_household_campaigns": doors,
        "walklists": walklists,
        "turfs": turfs,
    }


async def ensure(url: str, scale: Scale, log: Any = print) -> dict[str, Any]:
    """The fixture, unless the database already holds this very build of it."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"CREATE TABLE IF NOT EXISTS {MARKER} (shape jsonb NOT NULL)")
        if await _built(conn):
            return {"walklists": WALKLISTS, "turfs": TURFS, "reused": True}
        started = time.perf_counter()
        rows = fixture_rows(scale)
        async with conn.transaction():
            await remove(conn)
            for table, table_rows in rows.items():
                await conn.copy_records_to_table(table, records=table_rows, columns=COLUMNS)
            await conn.execute(f"DELETE FROM {MARKER}")
            await conn.execute(f"INSERT INTO {MARKER} VALUES ($1::text::jsonb)", json.dumps(SHAPE))
        for table in rows:
            await conn.execute(f"VACUUM (ANALYZE) {table}")
    finally:
        await conn.close()
    log(f"  walk lists and turfs built in {time.perf_counter() - started:.1f} s")
    return {"walklists": WALKLISTS, "turfs": TURFS, "reused": False}


async def _built(conn: asyncpg.Connection) -> bool:
    """This build, and its rows still there (a rebuilt dataset starts from no tables)."""
    built = await conn.fetchval(f"SELECT shape::text FROM {MARKER}")
    if built is None or json.loads(built) != SHAPE:
        return False
    held = await conn.fetchval(
        "SELECT count(*) FROM walklists WHERE customer_id = $1 AND created_by = $2",
        uuid.UUID(TENANT),
        AUTHOR,
    )
    return bool(held == WALKLISTS)


async def remove(conn: asyncpg.Connection) -> None:
    """Every row a build of the fixture may have left (all by the dataset's author)."""
    tenant = uuid.UUID(TENANT)
    for table in ("walklists", "turfs"):
        await conn.execute(
            f"DELETE FROM {table} WHERE customer_id = $1 AND created_by = $2", tenant, AUTHOR
        )
    await conn.execute(
        "DELETE FROM contact_household_campaigns WHERE customer_id = $1 "
        "AND (data ->> 'campaignId') = $2",
        tenant,
        WALK_CAMPAIGN,
    )
    await conn.execute(
        "DELETE FROM campaigns WHERE customer_id = $1 AND id = $2", tenant, uuid.UUID(WALK_CAMPAIGN)
    )


# --- request paths -------------------------------------------------------------------


async def write_paths(url: str, scale: Scale, folder: Path) -> dict[str, int]:
    """One file of request paths per route (how many each holds); the change feed's
    tokens need the database."""
    rng = random.Random(b"routes")
    people = People.build(scale).coords
    reads = list(READ_CAMPAIGNS)
    files = {
        "feed-500": await feed_paths(url, scale, rng),
        "progress": [f"/v1/campaigns/{campaign_id(c)}/progress" for c in reads],
        "review": [f"/v1/campaigns/{campaign_id(c)}/review" for c in reads],
        "walklist-download": [
            f"/v1/walklists/{walklist_id(w)}/contact-households" for w in range(WALKLISTS)
        ],
        "households-bbox": [
            "/v2/households?" + query_string("bbox={s},{w},{n},{e}&limit=100", *people[h])
            for h in (rng.randrange(scale.households) for _ in range(LINES))
        ],
        "doors-near": list(door_near_paths(scale, people, rng)),
        "turf-doors": [
            f"/v1/turfs/{turf_id(t)}/contact-households?limit=100" for t in range(TURFS)
        ],
        "list-50-csv": [
            "/v2/interactions?"
            + urlencode({"filter[/data/campaignId]": campaign_id(c), "limit": "50"})
            for c in reads
        ],
    }
    for name, paths in files.items():
        path_file(folder, name).write_text("".join(path + "\n" for path in paths))
    return {name: len(paths) for name, paths in files.items()}


def path_file(folder: Path, name: str) -> Path:
    return folder / f"route-{name}.txt"


def door_near_paths(
    scale: Scale, coords: list[tuple[float, float]], rng: random.Random
) -> Iterable[str]:
    """Around one of the campaign's own doors, so there are doors near."""
    for _ in range(LINES):
        c = rng.choice(list(READ_CAMPAIGNS))
        lat, lng = coords[household_of(rng.choice(turf(c, scale)), scale)]
        query = urlencode({"near": f"{lat},{lng}", "radius": f"{NEAR_MILES:g}", "limit": "50"})
        yield f"/v1/campaigns/{campaign_id(c)}/contact-households?{query}"


async def feed_paths(url: str, scale: Scale, rng: random.Random) -> list[str]:
    """A phone's next page of a campaign's interactions: ``since=`` (from the start) or
    the token a previous page of 500 would have given, so every page is full."""
    conn = await asyncpg.connect(url)
    try:
        cluster = int(await conn.fetchval("SELECT system_identifier FROM pg_control_system()"))
        paths = []
        for c in READ_CAMPAIGNS:
            last = max(0, scale.per_campaign - FEED_PAGE)
            for skip in sorted({0, last // 2, last}):
                token = await _token_after(conn, campaign_id(c), skip, cluster)
                query = {"since": token, "limit": str(FEED_PAGE)}
                query["filter[/data/campaignId]"] = campaign_id(c)
                paths.append("/v2/interactions?" + urlencode(query))
    finally:
        await conn.close()
    rng.shuffle(paths)
    return paths


async def _token_after(conn: asyncpg.Connection, campaign: str, skip: int, cluster: int) -> str:
    """The since token after the campaign's first ``skip`` changes ("" for none)."""
    if skip == 0:
        return ""
    row = await conn.fetchrow(
        "SELECT txid::text, id FROM interactions WHERE customer_id = $1 "
        "AND (data ->> 'campaignId') = $2 ORDER BY txid, id OFFSET $3 LIMIT 1",
        uuid.UUID(TENANT),
        campaign,
        skip - 1,
    )
    position = Position(int(row[0]), row[1])
    return encode_token(SyncToken(position, cluster, datetime.now(UTC)))


# --- what run.py drives ----------------------------------------------------------------

# Route, the request, and the connections of its own: the feed has a target, so it runs
# at the run's counts; the others at one count, which keeps the full run's added time
# to minutes (a walk list of 500 doors with their contacts is a heavy read: 4, as in
# bench/geo.py).
ONE = (16,)
ROUTES: dict[str, tuple[str, tuple[int, ...]]] = {
    "feed-500": ("GET /v2/interactions?since=…&limit=500 (a campaign's)", ()),
    "progress": ("GET /v1/campaigns/{id}/progress", ONE),
    "review": ("GET /v1/campaigns/{id}/review", ONE),
    "walklist-download": ("GET /v1/walklists/{id}/contact-households (500 doors)", (4,)),
    "households-bbox": ("GET /v2/households?bbox=…&limit=100", ONE),
    "doors-near": (
        f"GET /v1/campaigns/{{id}}/contact-households?near=…&radius={NEAR_MILES:g}",
        ONE,
    ),
    "turf-doors": ("GET /v1/turfs/{id}/contact-households?limit=100", ONE),
    "list-50-csv": ("GET /v2/interactions?filter…&limit=50, Accept: text/csv", ONE),
}
FLOORED = tuple(ROUTES)
ISSUE_11_12 = tuple(name for name in ROUTES if name != "feed-500")


def endpoints(folder: Path) -> list[Endpoint]:
    found = []
    for name, (_, connections) in ROUTES.items():
        env = {"BENCH_PATHS": str(path_file(folder, name))}
        if name == "list-50-csv":
            env["BENCH_ACCEPT"] = CSV
        found.append(Endpoint(name, "paths.lua", env, connections=connections))
    return found
