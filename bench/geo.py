"""Issue 11's benchmark: bbox and near on households and doors, and the walk-list download.

Seeds a tenant of its own with SQL (``generate_series``, a few statements of 100 k rows):
households in towns of ``TOWN_SIZE`` spread over six south-eastern US states, so a
larger dataset has more towns, not denser ones; one contact-household per household;
a campaign (made through the API) with a door record, and a contact, for each of the
households of its first two towns. Then, at each size asked for (the dataset only
grows: ``--households 200000,2000000`` measures 200 k, adds 1.8 M, measures again):

- ``bbox`` and ``near``+``radius`` (and ``near`` alone) on ``/v2/households`` and on
  the campaign's doors, each centred on a random household, driven by wrk against a
  real ``polis-api serve``: requests per second, p50 and p95; and EXPLAIN ANALYZE of
  the statement the server compiles for each, to show which index serves it;
- a 500-door walk list made through the API (``near`` + ``size``), and its download
  (``GET /v1/walklists/{id}/contact-households``) against ``bench/geo_floor.py``, a raw
  ASGI app that sends the route's own statements; the ratio of the two in the same run.

    .venv/bin/python bench/geo.py --quick                      # 20 k households, 1 min
    .venv/bin/python bench/geo.py                              # 200 k
    .venv/bin/python bench/geo.py --households 200000,10000000 # the scale run
    .venv/bin/python bench/run.py --geo                        # after the main benchmark

The database is the benchmark's embedded PostgreSQL (database ``polis_bench_geo``)
unless ``--database-url`` (or ``BENCH_GEO_DATABASE_URL``) names another. Never point
it at a PostgreSQL that others use: each seeding statement is a long transaction, and
every change feed of that server (the feed's horizon is the server-wide snapshot
xmin, docs/sync.md) holds back new rows until it commits. Results go to
``bench/results/geo-<timestamp>.md`` (+ ``.json``; plans and server logs in ``.raw``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from common import DATA_DIR, JWT_SECRET, PG_DIR, RESULTS_DIR, derived_uuid, server_env
from explain import Plan, explain
from loadgen import Endpoint, run_wrk, wrk_path
from servers import CpuWindow, Server, machine_load, postgres_processes
from starlette.datastructures import QueryParams

from polis_api import db
from polis_api.auth import mint_token
from polis_api.config import Settings
from polis_api.documents.listing import parse_list_request
from polis_api.documents.repository import page_sql
from polis_api.documents.resource import Resource
from polis_api.documents.validation import validate_data
from polis_api.resources.contacts import ContactData
from polis_api.resources.door_records import DOOR_RECORDS, DoorRecordData
from polis_api.resources.households import HOUSEHOLDS, HouseholdData
from polis_api.workflow.door import new_record

GEO_TENANT = derived_uuid("tenant", 11)  # issue 11's own tenant, apart from run.py's
ADMIN = derived_uuid("user", 1100)
CANVASSER = derived_uuid("user", 1101)  # the walk list's assignee
ORGANIZATION = derived_uuid("organization", 11)
DATABASE = "polis_bench_geo"
GEO_DIR = DATA_DIR / "geo"
MARKER = "bench_geo_marker"

TOWN_SIZE = 25_000  # households per town: a larger dataset is more towns, equally dense
TOWN_SPREAD = 0.04  # degrees: a town's households fall around its centre with this sigma
CAMPAIGN_TOWNS = 2  # the campaign's doors are every household of the first towns
WALKLIST_DOORS = 500
# Rows per INSERT statement: one transaction each, kept short; the statements skip
# rows already there, so a run interrupted mid-seeding simply carries on.
BATCH = 50_000
# South-west and north-east corners of the states the towns are spread over.
STATES = {
    "GA": (31.0, -85.0, 34.9, -81.5),
    "NC": (34.0, -83.5, 36.5, -76.0),
    "SC": (32.2, -83.2, 35.1, -79.0),
    "TN": (35.0, -90.0, 36.6, -82.0),
    "AL": (30.5, -88.3, 35.0, -85.1),
    "VA": (36.6, -83.5, 39.4, -76.0),
}
FIRST_TOWN = (33.7748, -84.2963, "GA")  # Decatur: the campaign's first town

# Each query: a name, the list it reads, and the query string around a centre. The box
# and the radius are about a 700 m square and a 400 m circle, where tens of households
# live at a town's density: the answer is one page of tens of documents at every scale.
BOX_HALF = 0.003  # degrees of latitude and of longitude
RADIUS_MILES = 0.25
QUERIES: dict[str, tuple[str, str]] = {
    "households bbox": ("households", "bbox={s},{w},{n},{e}&limit=100"),
    "households near+radius": (
        "households",
        f"near={{lat}},{{lng}}&radius={RADIUS_MILES}&limit=50",
    ),
    "households near (nearest 50)": ("households", "near={lat},{lng}&limit=50"),
    "doors bbox": ("doors", "bbox={s},{w},{n},{e}&limit=100"),
    "doors near+radius": ("doors", f"near={{lat}},{{lng}}&radius={RADIUS_MILES}&limit=50"),
}
GIST = ("ix_households_point", "ix_households_earth")
CENTRES = 2_000  # request paths per query, each around another household
DOWNLOAD_PATH = "/v1/walklists/{id}/contact-households"


def log(message: str) -> None:
    print(message, flush=True)


# --- seeding with SQL --------------------------------------------------------------


def towns(count: int) -> list[tuple[float, float, str]]:
    """Town centres (lat, lng, state): Decatur first, then at random in the states in
    turn. The same list every time, and a prefix of any longer one."""
    rng = random.Random(b"geo-towns")
    states = list(STATES.items())
    found = [FIRST_TOWN]
    while len(found) < count:
        code, (south, west, north, east) = states[len(found) % len(states)]
        found.append((rng.uniform(south, north), rng.uniform(west, east), code))
    return found[:count]


# Deterministic uniforms in (0, 1) from a row number and a seed (no random(): a rerun of
# a batch writes the same rows).
def _uniform(seed: int) -> str:
    return f"((abs(hashint8extended(i::int8, {seed})) % 1000000007) + 1)::float8 / 1000000009"


_HOUSEHOLDS = f"""
INSERT INTO households (customer_id, id, security_group_id, data, created, modified,
                        created_by, modified_by, etag)
SELECT $1::uuid, md5('geo-h-' || i)::uuid, $1::uuid,
       jsonb_build_object(
         'address', jsonb_build_object(
           'number', (1 + i % 4000)::text,
           'streetName', (ARRAY['Oak','Maple','Pine','Cedar','Elm','Church','Park','Lake',
                                'Hill','Mill'])[1 + i % 10] || ' Street',
           'city', 'Town ' || town,
           'state', ($4::text[])[1 + town],
           'postalCode', lpad((10000 + town * 7 + i % 7)::text, 5, '0'),
           'country', 'US',
           'coords', jsonb_build_object('lat', round(lat::numeric, 6),
                                        'lng', round(lng::numeric, 6))),
         'externalId', 'geo-household-' || i),
       $5, $5, $6::uuid, $6::uuid, md5('geo-h-etag-' || i)
FROM (
  SELECT i, town,
         ($2::float8[])[1 + town] + {TOWN_SPREAD} * r * cos(a) AS lat,
         ($3::float8[])[1 + town]
           + {TOWN_SPREAD} * r * sin(a) / cos(radians(($2::float8[])[1 + town])) AS lng
  FROM (
    SELECT i, (i / {TOWN_SIZE})::int AS town,
           sqrt(-2 * ln({_uniform(1)})) AS r, 2 * pi() * {_uniform(2)} AS a
    FROM generate_series($7::bigint, $8::bigint - 1) AS i
  ) AS polar
) AS placed
ON CONFLICT DO NOTHING
"""

_CONTACT_HOUSEHOLDS = """
INSERT INTO contact_households (customer_id, id, security_group_id, data, created,
                                modified, created_by, modified_by, etag)
SELECT $1::uuid, md5('geo-ch-' || i)::uuid, $1::uuid,
       jsonb_build_object('contactId', md5('geo-c-' || i)::uuid::text,
                          'householdId', md5('geo-h-' || i)::uuid::text),
       $2, $2, $3::uuid, $3::uuid, md5('geo-ch-etag-' || i)
FROM generate_series($4::bigint, $5::bigint - 1) AS i
ON CONFLICT DO NOTHING
"""

_CONTACTS = """
INSERT INTO contacts (customer_id, id, security_group_id, data, created, modified,
                      created_by, modified_by, etag)
SELECT $1::uuid, md5('geo-c-' || i)::uuid, $1::uuid,
       jsonb_build_object(
         'profile', jsonb_build_object(
           'name', jsonb_build_object('anglican', jsonb_build_object(
             'given', (ARRAY['Ada','Grace','Alan','Edsger','Barbara','Donald'])[1 + i % 6],
             'surname', (ARRAY['Lovelace','Hopper','Turing','Dijkstra','Liskov'])[1 + i % 5])),
           'phones', jsonb_build_array(jsonb_build_object(
             'phone', '+1 404 555 ' || lpad((i % 10000)::text, 4, '0'),
             'phoneType', 'mobile'))),
         'externalId', 'geo-contact-' || i,
         'primaryHouseholdId', md5('geo-h-' || i)::uuid::text),
       $2, $2, $3::uuid, $3::uuid, md5('geo-c-etag-' || i)
FROM generate_series($4::bigint, $5::bigint - 1) AS i
ON CONFLICT DO NOTHING
"""

# A fresh door record (the server's own new_record) for each contact-household.
_DOORS = """
INSERT INTO contact_household_campaigns (customer_id, id, security_group_id, data,
                                         created, modified, created_by, modified_by, etag)
SELECT $1::uuid, md5('geo-d-' || $4 || '-' || i)::uuid, $1::uuid,
       $5::jsonb || jsonb_build_object('contactHouseholdId', md5('geo-ch-' || i)::uuid::text),
       $2, $2, $3::uuid, $3::uuid, md5('geo-d-etag-' || $4 || '-' || i)
FROM generate_series($6::bigint, $7::bigint - 1) AS i
ON CONFLICT DO NOTHING
"""


@dataclass
class Dataset:
    households: int
    campaign_id: str
    doors: int


async def marker(conn: asyncpg.Connection) -> dict[str, str]:
    await conn.execute(f"CREATE TABLE IF NOT EXISTS {MARKER} (key text PRIMARY KEY, value text)")
    return {row[0]: row[1] for row in await conn.fetch(f"SELECT key, value FROM {MARKER}")}


async def set_marker(conn: asyncpg.Connection, key: str, value: object) -> None:
    await conn.execute(
        f"INSERT INTO {MARKER} VALUES ($1, $2) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        key,
        str(value),
    )


async def _batches(
    conn: asyncpg.Connection,
    what: str,
    statement: str,
    start: int,
    stop: int,
    args: Callable[[int, int], list[Any]],
) -> None:
    t0 = time.perf_counter()
    for lo in range(start, stop, BATCH):
        hi = min(stop, lo + BATCH)
        await conn.execute(statement, *args(lo, hi))
        rate = (hi - start) / (time.perf_counter() - t0)
        log(f"  {what}: {hi:,} of {stop:,} ({rate:,.0f} rows/s)")


async def grow_households(url: str, wanted: int) -> int:
    """Households and contact-households up to ``wanted``; how many there were before."""
    conn = await asyncpg.connect(url)
    try:
        have = int((await marker(conn)).get("households", 0))
        if have > wanted:
            # The dataset only grows: measuring it as a smaller one would mislabel it.
            raise SystemExit(
                f"the database holds {have:,} households, more than the {wanted:,} asked "
                "for: give --database another name (or list the sizes smallest first)"
            )
        if have == wanted:
            return have
        log(f"seeding households {have:,} .. {wanted:,}")
        centres = towns(math.ceil(wanted / TOWN_SIZE))
        lats = [t[0] for t in centres]
        lngs = [t[1] for t in centres]
        codes = [t[2] for t in centres]
        tenant, now = uuid.UUID(GEO_TENANT), datetime.now(UTC)
        author = uuid.UUID(ADMIN)
        # One long statement per batch outlives the default statement timeout of nothing
        # here: the benchmark's own connection, not the server's.
        await _batches(
            conn,
            "households",
            _HOUSEHOLDS,
            have,
            wanted,
            lambda lo, hi: [tenant, lats, lngs, codes, now, author, lo, hi],
        )
        await _batches(
            conn,
            "contact-households",
            _CONTACT_HOUSEHOLDS,
            have,
            wanted,
            lambda lo, hi: [tenant, now, author, lo, hi],
        )
        await set_marker(conn, "households", wanted)
        t0 = time.perf_counter()
        for table in ("households", "contact_households"):
            await conn.execute(f"VACUUM ANALYZE {table}")
        log(f"  VACUUM ANALYZE in {time.perf_counter() - t0:.0f} s")
        await check_shapes(conn)
        return have
    finally:
        await conn.close()


async def seed_doors(url: str, campaign_id: str, households: int) -> int:
    """The campaign's door records and their contacts: the households of its towns."""
    doors = min(households, CAMPAIGN_TOWNS * TOWN_SIZE)
    conn = await asyncpg.connect(url)
    try:
        have = int((await marker(conn)).get(f"doors:{campaign_id}", 0))
        if have >= doors:
            return have
        tenant, now, author = uuid.UUID(GEO_TENANT), datetime.now(UTC), uuid.UUID(ADMIN)
        template = json.dumps(new_record(campaign_id, "placeholder"))
        await _batches(
            conn,
            "contacts",
            _CONTACTS,
            have,
            doors,
            lambda lo, hi: [tenant, now, author, lo, hi],
        )
        await _batches(
            conn,
            "door records",
            _DOORS,
            have,
            doors,
            lambda lo, hi: [tenant, now, author, campaign_id, template, lo, hi],
        )
        await set_marker(conn, f"doors:{campaign_id}", doors)
        for table in ("contacts", "contact_household_campaigns"):
            await conn.execute(f"VACUUM ANALYZE {table}")
        await check_shapes(conn)
        return doors
    finally:
        await conn.close()


async def check_shapes(conn: asyncpg.Connection) -> None:
    """The seeded documents are what the server itself would store for them."""
    tenant = uuid.UUID(GEO_TENANT)
    for table, model in (
        ("households", HouseholdData),
        ("contacts", ContactData),
        ("contact_household_campaigns", DoorRecordData),
    ):
        row = await conn.fetchrow(
            f"SELECT data::text FROM {table} WHERE customer_id = $1 LIMIT 1",
            tenant,
        )
        if row is None:
            continue
        data = json.loads(row[0])
        if validate_data(model, data) != data:  # type: ignore[arg-type]
            raise AssertionError(f"{table}: the seeded shape differs from the server's")


# --- the queries -------------------------------------------------------------------


def household_index(rng: random.Random, households: int, doors_only: bool) -> int:
    upper = min(households, CAMPAIGN_TOWNS * TOWN_SIZE) if doors_only else households
    return rng.randrange(upper)


async def centres(url: str, households: int, doors_only: bool, count: int) -> list[Any]:
    """``count`` households' coordinates, chosen at random (by their seeded ids)."""
    rng = random.Random(f"centres:{households}:{doors_only}")
    ids = [
        str(uuid.UUID(hex=_md5(f"geo-h-{household_index(rng, households, doors_only)}")))
        for _ in range(count)
    ]
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT (data #>> '{address,coords,lat}')::float8, "
            "(data #>> '{address,coords,lng}')::float8 FROM households "
            "WHERE customer_id = $1 AND id = ANY($2::uuid[])",
            uuid.UUID(GEO_TENANT),
            ids,
        )
    finally:
        await conn.close()
    return [(row[0], row[1]) for row in rows]


def _md5(text: str) -> str:
    import hashlib

    return hashlib.md5(text.encode()).hexdigest()


def query_string(template: str, lat: float, lng: float) -> str:
    return template.format(
        lat=round(lat, 6),
        lng=round(lng, 6),
        s=round(lat - BOX_HALF, 6),
        n=round(lat + BOX_HALF, 6),
        w=round(lng - BOX_HALF, 6),
        e=round(lng + BOX_HALF, 6),
    )


def list_path(kind: str, campaign_id: str) -> str:
    return (
        "/v2/households"
        if kind == "households"
        else f"/v1/campaigns/{campaign_id}/contact-households"
    )


def plan_for(name: str, kind: str, query: str, campaign_id: str) -> Plan:
    """The statement the server compiles for this list request (its own code)."""
    resource: Resource = HOUSEHOLDS if kind == "households" else DOOR_RECORDS
    scope = None if kind == "households" else {"/data/campaignId": campaign_id}
    listing = parse_list_request(
        QueryParams(query),
        resource.field_policy,
        Settings(jwt_secret=JWT_SECRET),
        uuid.UUID(GEO_TENANT),
        scope,
        geo=resource.geo,
    )
    sql, args = page_sql(resource.sql, listing.query)
    return Plan(name, resource.sql.table, sql, args)


@dataclass
class Timing:
    name: str
    households: int
    connections: int
    requests: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: dict[str, int]
    server_cpu_us: float
    db_cpu_us: float
    other_cpu_pct: float
    items: float | None = None  # documents per answer (a sample)
    bytes_per_answer: float | None = None


def database_processes(url: str | None) -> Callable[[], list[psutil.Process]]:
    """PostgreSQL's processes (the postmaster and its children), for the CPU window:
    the embedded server's (``url`` None), or the parent of a backend of ``url``."""
    if url is None:
        return postgres_processes

    async def backend() -> int:
        conn = await asyncpg.connect(url)
        try:
            return int(await conn.fetchval("SELECT pg_backend_pid()"))
        finally:
            await conn.close()

    postmaster = psutil.Process(asyncio.run(backend())).parent()
    return lambda: _tree(postmaster.pid) if postmaster is not None else []


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def drive(
    server: Server,
    name: str,
    paths_file: Path,
    connections: int,
    window: tuple[float, float],
    database: Callable[[], list[psutil.Process]],
    households: int,
) -> Timing:
    """wrk on random lines of ``paths_file``: a warm-up, then the measured window."""
    endpoint = Endpoint(name, "paths.lua", {"BENCH_PATHS": str(paths_file)})
    warmup, seconds = window
    run_wrk(server, endpoint, connections, warmup, GEO_DIR)
    with CpuWindow(server.all_processes, database) as cpu:
        result = run_wrk(server, endpoint, connections, seconds, GEO_DIR)
    requests = max(1, result["requests"])
    latency = result["latency_us"]
    timing = Timing(
        name=name,
        households=households,
        connections=connections,
        requests=result["requests"],
        rps=round(result["requests"] / (result["duration_us"] / 1e6), 1),
        p50_ms=latency["p50"] / 1000,
        p95_ms=latency["p95"] / 1000,
        p99_ms=latency["p99"] / 1000,
        errors={k: v for k, v in result["errors"].items() if v},
        server_cpu_us=round(1e6 * cpu.server_s / requests),
        db_cpu_us=round(1e6 * cpu.database_s / requests),
        other_cpu_pct=round(cpu.other_pct),
    )
    errors = ", ".join(f"{k} {v}" for k, v in timing.errors.items()) or "no errors"
    log(
        f"  {server.app:9} {name:30} c={connections:<3} {timing.rps:7,.0f} req/s"
        f"  p50 {timing.p50_ms:7.2f} ms  p95 {timing.p95_ms:7.2f} ms"
        f"  app {timing.server_cpu_us:6,} µs/req  db {timing.db_cpu_us:6,} µs/req"
        f"  {errors}  (other load {timing.other_cpu_pct} %)"
    )
    return timing


def sample_answers(
    server: Server, token: str, paths: list[str], accept_items: bool = True
) -> tuple[float, float]:
    """Documents and bytes per answer, on a few of the paths (all must answer 200)."""
    counts, sizes = [], []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
        for path in paths:
            answer = client.get(path)
            if answer.status_code != 200:
                raise RuntimeError(f"{server.app} {path}: HTTP {answer.status_code} {answer.text}")
            sizes.append(len(answer.content))
            if accept_items:
                counts.append(len(answer.json()["data"]))
    return (statistics.mean(counts) if counts else math.nan), statistics.mean(sizes)


# --- the run -----------------------------------------------------------------------


def _commit() -> str:
    found = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return found.stdout.strip() or "unknown"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 k households, short windows")
    parser.add_argument(
        "--households",
        help="comma-separated sizes measured in turn (default 200000; --quick 20000)",
    )
    parser.add_argument("--warmup", type=float, help="seconds (default 3; --quick 1)")
    parser.add_argument("--seconds", type=float, help="measured seconds (default 10; --quick 3)")
    parser.add_argument("--connections", type=int, default=16, help="for bbox and near")
    parser.add_argument(
        "--download-connections", type=int, default=4, help="for the walk-list download"
    )
    parser.add_argument(
        "--database",
        help=f"the embedded PostgreSQL's database (default {DATABASE}; --quick {DATABASE}_quick)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_GEO_DATABASE_URL"),
        help="a PostgreSQL database to seed and serve (default: the embedded one)",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    sizes = args.households or ("20000" if quick else "200000")
    args.households = sorted(int(float(s)) for s in sizes.split(","))
    args.warmup = args.warmup if args.warmup is not None else (1.0 if quick else 3.0)
    args.seconds = args.seconds or (3.0 if quick else 10.0)
    args.database = args.database or (f"{DATABASE}_quick" if quick else DATABASE)
    if args.households[0] < 1_000:
        parser.error("--households: at least 1000")
    return args


class GeoRun:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.started = datetime.now(UTC)
        self.stamp = self.started.strftime("%Y%m%d-%H%M%S")
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        GEO_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = RESULTS_DIR / f"geo-{self.stamp}.raw"
        self.results: dict[str, Any] = {
            "meta": {
                "started": self.started.isoformat(timespec="seconds"),
                "cpus": os.cpu_count(),
                "command": "`" + " ".join(["bench/geo.py", *sys.argv[1:]]) + "`",
                "commit": _commit(),
                "warmup": args.warmup,
                "seconds": args.seconds,
                "town_size": TOWN_SIZE,
                "load_before_pct": round(machine_load()),
            },
            "scales": [],
        }
        settings = Settings(jwt_secret=JWT_SECRET)
        self.tokens = [
            mint_token(
                settings,
                roles=["admin"],
                customer_id=uuid.UUID(GEO_TENANT),
                sub=uuid.UUID(derived_uuid("user", 1200 + n)),
                ttl_seconds=4 * 3600,
            )
            # Many users, one token each: the per-token rate limit stays realistic.
            for n in range(500)
        ]
        (GEO_DIR / "tokens.txt").write_text("\n".join(self.tokens) + "\n")

    def execute(self) -> Path:
        wrk_path()
        server_handle = None
        url = self.args.database_url
        if url is None:
            url, server_handle = db.start_embedded(PG_DIR, database=self.args.database)
        self.url = url
        try:
            db.run_migrations(url)
            self.database = database_processes(self.args.database_url)
            for households in self.args.households:
                self.at_scale(households)
        finally:
            if server_handle is not None:
                db.stop_embedded(server_handle)
        return self.write()

    def server(self, app: str) -> Server:
        env = {**server_env(self.url), "BENCH_TENANT": GEO_TENANT}
        return Server(app, 1, env, "/readyz", self.log_path)

    def at_scale(self, households: int) -> None:
        t0 = time.perf_counter()
        before = asyncio.run(grow_households(self.url, households))
        seeded = round(time.perf_counter() - t0, 1)
        log(f"\n{households:,} households ({households - before:,} added in {seeded} s)")
        scale: dict[str, Any] = {"households": households, "seed_s": seeded}
        self.results["scales"].append(scale)
        server = self.server("polis-api")
        server.start({"Authorization": f"Bearer {self.tokens[0]}"})
        try:
            campaign_id = self.campaign(server)
            scale["doors"] = asyncio.run(seed_doors(self.url, campaign_id, households))
            scale["plans"] = asyncio.run(self.plans(households, campaign_id))
            scale["queries"] = self.queries(server, households, campaign_id)
            scale["walklist"] = self.walklist(server, households, campaign_id)
        finally:
            server.stop()

    def client(self, server: Server) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[0]}"}
        return httpx.Client(base_url=server.base_url, headers=headers, timeout=120)

    def campaign(self, server: Server) -> str:
        """The benchmark's campaign, made through the API the first time."""

        async def known() -> str | None:
            conn = await asyncpg.connect(self.url)
            try:
                return (await marker(conn)).get("campaign")
            finally:
                await conn.close()

        found = asyncio.run(known())
        if found is not None:
            return found
        body = {
            "data": {
                "name": "Geo bench campaign",
                "status": "started",
                "organizationId": ORGANIZATION,
                "description": "Doors of the first two towns",
            }
        }
        with self.client(server) as client:
            answer = client.post("/v1/campaigns", json=body)
            answer.raise_for_status()
            campaign_id = str(answer.json()["id"])

        async def remember() -> None:
            conn = await asyncpg.connect(self.url)
            try:
                await set_marker(conn, "campaign", campaign_id)
            finally:
                await conn.close()

        asyncio.run(remember())
        return campaign_id

    def paths(self, households: int, campaign_id: str) -> dict[str, list[str]]:
        everywhere = asyncio.run(centres(self.url, households, False, CENTRES))
        campaign = asyncio.run(centres(self.url, households, True, CENTRES))
        found = {}
        for name, (kind, template) in QUERIES.items():
            points = everywhere if kind == "households" else campaign
            base = list_path(kind, campaign_id)
            found[name] = [f"{base}?{query_string(template, lat, lng)}" for lat, lng in points]
        return found

    async def plans(self, households: int, campaign_id: str) -> list[dict[str, Any]]:
        """EXPLAIN ANALYZE of each query's statement, around the first centre."""
        everywhere = (await centres(self.url, households, False, 1))[0]
        campaign = (await centres(self.url, households, True, 1))[0]
        conn = await asyncpg.connect(self.url)
        found = []
        try:
            for name, (kind, template) in QUERIES.items():
                lat, lng = everywhere if kind == "households" else campaign
                plan = plan_for(name, kind, query_string(template, lat, lng), campaign_id)
                result = await explain(conn, plan)
                gist = [index for index in result.indexes if index in GIST]
                whole_table = "Seq Scan" in result.text
                found.append(
                    {
                        "name": name,
                        "indexes": result.indexes,
                        "gist": gist,
                        "seq_scan": whole_table,
                        "ms": result.ms,
                    }
                )
                with self.log_path.open("a") as raw:
                    raw.write(f"== {households:,} households: {name}\n{result.text}\n\n")
                log(
                    f"  plan {name:30} {', '.join(result.indexes):70} "
                    f"{'SEQ SCAN ' if whole_table else ''}{result.ms} ms"
                )
        finally:
            await conn.close()
        return found

    def queries(self, server: Server, households: int, campaign_id: str) -> list[dict[str, Any]]:
        window = (self.args.warmup, self.args.seconds)
        timings = []
        for name, paths in self.paths(households, campaign_id).items():
            file = GEO_DIR / f"{name.replace(' ', '-').replace('+', '')}.txt"
            file.write_text("\n".join(paths) + "\n")
            items, size = sample_answers(server, self.tokens[0], paths[:50])
            timing = drive(
                server, name, file, self.args.connections, window, self.database, households
            )
            timing.items, timing.bytes_per_answer = round(items, 1), round(size)
            timings.append(asdict(timing))
        return timings

    def walklist(self, server: Server, households: int, campaign_id: str) -> dict[str, Any]:
        """A 500-door walk list near the campaign's first town, downloaded by polis-api
        and by the floor; released afterwards so the doors are free for the next run."""
        lat, lng, _ = FIRST_TOWN
        body = {
            "data": {
                "campaignId": campaign_id,
                "name": "Geo bench walk",
                "assigneeId": CANVASSER,
                "near": {"lat": lat, "lng": lng},
                "size": WALKLIST_DOORS,
            }
        }
        with self.client(server) as client:
            t0 = time.perf_counter()
            answer = client.post("/v1/walklists", json=body)
            created_s = time.perf_counter() - t0
            if answer.status_code != 201:
                raise RuntimeError(f"walk list: HTTP {answer.status_code} {answer.text}")
            walklist_id = answer.json()["id"]
            doors = len(answer.json()["data"]["doors"])
        log(f"  walk list of {doors} doors made in {created_s * 1000:.0f} ms")
        path = DOWNLOAD_PATH.format(id=walklist_id)
        file = GEO_DIR / "download.txt"
        file.write_text(path + "\n")
        window = (self.args.warmup, self.args.seconds)
        conns = self.args.download_connections
        result: dict[str, Any] = {"doors": doors, "create_ms": round(created_s * 1000)}
        try:
            items, size = sample_answers(server, self.tokens[0], [path])
            ours = asdict(drive(server, "download", file, conns, window, self.database, households))
            ours.update(items=items, bytes_per_answer=round(size))
            floor = self.server("geo-floor")
            floor.ready_path = path  # no /readyz: ready when it answers the download
            floor.start({})
            try:
                f_items, f_size = sample_answers(floor, self.tokens[0], [path])
                theirs = asdict(
                    drive(floor, "download", file, conns, window, self.database, households)
                )
                theirs.update(items=f_items, bytes_per_answer=round(f_size))
            finally:
                floor.stop()
            result.update(polis_api=ours, floor=theirs, ratio=round(ours["rps"] / theirs["rps"], 2))
            log(
                f"  download: {ours['rps']:.1f} vs floor {theirs['rps']:.1f} req/s "
                f"= {result['ratio']}x; {items:.0f} doors, {size / 1e6:.2f} MB "
                f"(floor {f_items:.0f}, {f_size / 1e6:.2f} MB)"
            )
        finally:
            with self.client(server) as client:
                client.post(f"/v1/walklists/{walklist_id}/release").raise_for_status()
        return result

    def write(self) -> Path:
        self.results["meta"]["total_s"] = round((datetime.now(UTC) - self.started).total_seconds())
        path = RESULTS_DIR / f"geo-{self.stamp}.md"
        text = markdown(self.results)
        path.write_text(text)
        (RESULTS_DIR / f"geo-{self.stamp}.json").write_text(
            json.dumps(self.results, indent=1, default=str)
        )
        log("\n" + text)
        log(f"written: {path} (+ .json; plans and server logs in {self.log_path.name})")
        return path


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        f"# Geography and walk lists, {meta['started']}",
        "",
        f"{meta['command']} at {meta['commit']}; {meta['cpus']} CPUs, "
        f"{meta['load_before_pct']} % busy before; "
        f"windows {meta['warmup']} s + {meta['seconds']} s; polis-api x1.",
        "",
        "| households | query | docs/answer | req/s | p50 ms | p95 ms | app µs/req | db µs/req"
        " | index (EXPLAIN ANALYZE, ms) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for scale in results["scales"]:
        plans = {p["name"]: p for p in scale["plans"]}
        for q in scale["queries"]:
            plan = plans[q["name"]]
            served = ", ".join(plan["gist"]) or "**no GiST**"
            if plan["seq_scan"]:
                served += ", **seq scan**"
            lines.append(
                f"| {scale['households']:,} | {q['name']} | {q['items']} | {q['rps']:,.0f} "
                f"| {q['p50_ms']:.1f} | {q['p95_ms']:.1f} | {q['server_cpu_us']:,} "
                f"| {q['db_cpu_us']:,} | {served} ({plan['ms']}) |"
            )
    lines += [
        "",
        "| households | walk-list download | doors | MB | req/s | p50 ms | p95 ms "
        "| app µs/req | db µs/req | x floor |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scale in results["scales"]:
        w = scale["walklist"]
        for app in ("polis_api", "floor"):
            d = w[app]
            ratio = f"{w['ratio']}" if app == "polis_api" else "1"
            lines.append(
                f"| {scale['households']:,} | {app.replace('_', '-')} | {d['items']} "
                f"| {d['bytes_per_answer'] / 1e6:.2f} | {d['rps']:,.1f} | {d['p50_ms']:.0f} "
                f"| {d['p95_ms']:.0f} | {d['server_cpu_us']:,} | {d['db_cpu_us']:,} | {ratio} |"
            )
    lines += [
        "",
        "Seeding: "
        + "; ".join(f"{s['households']:,} in {s['seed_s']} s" for s in results["scales"])
        + f"; total {meta['total_s']} s.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    GeoRun(parse_args(argv)).execute()
    return 0


if __name__ == "__main__":
    sys.exit(main())
