"""Campaign progress at scale: the endpoint against its floor, and what counting costs.

Seeds one campaign with ``--doors`` door records (default 500 000) and 1.5 times as
many interactions straight through SQL (so the tally triggers run as for any writer),
then times, in the same run:

- ``floor``: the endpoint's own aggregate (the tally sum) run raw through asyncpg;
- ``endpoint``: ``GET /v1/campaigns/{id}/progress`` over HTTP (polis-api, 1 worker);
- ``endpoint 304``: the same with ``If-None-Match``;
- ``walk list``: ``?walklistId=`` of a 500-door walk list (counted from documents);
- ``plain count``: counting the documents at read time instead, both through the
  fact functions (what the scoped path runs) and a minimal hand-written GROUP BY;
- the write cost of the triggers: 20 000 interactions inserted with and without them.

    .venv/bin/python bench/progress.py              # 500k doors (several minutes)
    .venv/bin/python bench/progress.py --quick      # 20k doors
    .venv/bin/python bench/progress.py --database-url postgresql://.../polis_progress_bench

The database is the benchmark's embedded PostgreSQL (database ``polis_progress_bench``)
unless ``--database-url`` names another; its name must contain "bench", because the
run empties the tables it seeds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
from common import PG_DIR, TENANT, derived_uuid, server_env, token
from servers import Server

from polis_api import db
from polis_api.resources import progress_sql

CAMPAIGN = derived_uuid("progress-campaign", 0)
SCRATCH = derived_uuid("progress-campaign", 1)
WALKLIST = derived_uuid("progress-walklist", 0)
STATUSES = [derived_uuid("progress-status", n) for n in range(3)]
STATUS_STATES = [
    "contacted-available-successful",
    "contacted-unavailable-not-home",
    "not-contacted-normal",
]
DOOR_STATES = [
    "not-contacted-normal",
    "not-contacted-normal",
    "contacted-available-successful",
    "contacted-available-not-successful",
    "contacted-unavailable-not-home",
    "come-back",
]
CANVASSERS = 50
DAYS = 30
BATCH = 100_000
SEEDED = ("campaigns", "statuses", "walklists", "contact_household_campaigns", "interactions")

_DOORS = """
INSERT INTO contact_household_campaigns (customer_id, id, security_group_id, data, created,
  modified, created_by, modified_by, is_deleted, etag)
SELECT $1, gen_random_uuid(), $1, jsonb_build_object(
    'campaignId', $2::text,
    'contactHouseholdId', md5('ch' || g)::uuid::text,
    'state', ($3::text[])[1 + g % 6],
    'statusId', CASE WHEN g % 3 = 0 THEN ($4::text[])[1 + g % 2] END,
    'type', 'normal',
    'availability', jsonb_build_object('available', false, 'unavailableReason', null),
    'reservation', jsonb_build_object('reserved', false),
    'lastInteraction', null),
  now(), now(), $1, $1, false, 'bench'
FROM generate_series($5::int, $6::int) AS g
"""

_KNOCKS = """
INSERT INTO interactions (customer_id, id, security_group_id, data, created, modified,
  created_by, modified_by, is_deleted, etag)
SELECT $1, gen_random_uuid(), $1, jsonb_build_object(
    'campaignId', $2::text,
    'contactHouseholdId', md5('ch' || (g % $6 + 1))::uuid::text,
    'contactId', md5('c' || (g % $6 + 1))::uuid::text,
    'householdId', md5('h' || (g % $6 + 1))::uuid::text,
    'timestamp', to_char(timestamp '2026-10-01' + (g % $7) * interval '1 day'
      + (g % 36000) * interval '1 second', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'unavailable', g % 4 = 0,
    'successful', g % 3 = 0,
    'statusId', CASE WHEN g % 7 = 0 THEN ($3::text[])[1 + g % 3] END,
    'survey', jsonb_build_object('surveyId', $2::text, 'responses', jsonb_build_object(
      'q1', jsonb_build_object('questionId', 'q1', 'optionId', 'o' || g % 4),
      'q2', jsonb_build_object('questionId', 'q2',
                               'optionIds', jsonb_build_array('a' || g % 3, 'b' || g % 5)))),
    'location', jsonb_build_object('lat', 33.7, 'lng', -84.3, 'confidence', 5)),
  now(), now(), md5('user' || g % $8)::uuid, md5('user' || g % $8)::uuid, false, 'bench'
FROM generate_series($4::int, $5::int) AS g
"""


async def seed(conn: asyncpg.Connection, doors: int, log: Callable[[str], None]) -> None:
    for table in (*SEEDED, "progress_tallies"):
        await conn.execute(f"DELETE FROM {table}")
    await conn.execute(
        "INSERT INTO campaigns (customer_id, id, security_group_id, data, created, modified, "
        "created_by, modified_by, is_deleted, etag) SELECT $1, c, $1, "
        "jsonb_build_object('name', 'Progress bench'), now(), now(), $1, $1, false, 'bench' "
        "FROM unnest($2::uuid[]) AS c",
        uuid.UUID(TENANT),
        [uuid.UUID(CAMPAIGN), uuid.UUID(SCRATCH)],
    )
    await conn.execute(
        "INSERT INTO statuses (customer_id, id, security_group_id, data, created, modified, "
        "created_by, modified_by, is_deleted, etag) SELECT $1, s.id, $1, "
        "jsonb_build_object('name', s.state, 'contactState', s.state), now(), now(), $1, $1, "
        "false, 'bench' FROM unnest($2::uuid[], $3::text[]) AS s(id, state)",
        uuid.UUID(TENANT),
        [uuid.UUID(s) for s in STATUSES],
        STATUS_STATES,
    )
    await conn.execute(
        "INSERT INTO walklists (customer_id, id, security_group_id, data, created, modified, "
        "created_by, modified_by, is_deleted, etag) SELECT $1, $2, $1, jsonb_build_object("
        "'campaignId', $3::text, 'name', 'bench', 'status', 'open', 'assigneeId', $4::text, "
        "'doors', (SELECT jsonb_agg(md5('ch' || g)::uuid::text) FROM generate_series(1, 500) g)"
        "), now(), now(), $1, $1, false, 'bench'",
        uuid.UUID(TENANT),
        uuid.UUID(WALKLIST),
        CAMPAIGN,
        TENANT,
    )
    started = time.perf_counter()
    for first in range(1, doors + 1, BATCH):
        last = min(doors, first + BATCH - 1)
        await conn.execute(_DOORS, uuid.UUID(TENANT), CAMPAIGN, DOOR_STATES, STATUSES, first, last)
    log(f"  {doors} door records in {time.perf_counter() - started:.1f} s")
    knocks = doors * 3 // 2
    started = time.perf_counter()
    for first in range(1, knocks + 1, BATCH):
        last = min(knocks, first + BATCH - 1)
        await insert_knocks(conn, CAMPAIGN, first, last, doors)
    log(f"  {knocks} interactions in {time.perf_counter() - started:.1f} s")
    await conn.execute("VACUUM ANALYZE")


async def insert_knocks(
    conn: asyncpg.Connection, campaign: str, first: int, last: int, doors: int
) -> None:
    await conn.execute(
        _KNOCKS,
        uuid.UUID(TENANT),
        campaign,
        STATUSES,
        first,
        last,
        doors,
        DAYS,
        CANVASSERS,
    )


async def timed(call: Callable[[], Awaitable[Any]], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50": statistics.median(ordered), "p95": p95, "runs": len(ordered)}


# Counting the documents at read time with the least work: one GROUP BY per table.
_MINIMAL_PLAIN = """
SELECT (SELECT json_agg(x) FROM (SELECT data ->> 'state' AS state, data ->> 'statusId' AS s,
          count(*) FROM contact_household_campaigns
        WHERE customer_id = $1 AND NOT is_deleted AND data ->> 'campaignId' = $2
        GROUP BY 1, 2) AS x),
       (SELECT json_agg(y) FROM (SELECT left(data ->> 'timestamp', 10) AS day, created_by,
          data ->> 'statusId' AS s, data ->> 'unavailable' AS u, data ->> 'successful' AS ok,
          count(*) FROM interactions
        WHERE customer_id = $1 AND NOT is_deleted AND data ->> 'campaignId' = $2
        GROUP BY 1, 2, 3, 4, 5) AS y)
"""


async def write_cost(conn: asyncpg.Connection, doors: int) -> dict[str, float]:
    """Seconds to insert 20 000 interactions with the tally trigger, then without."""
    cost = {}
    for label, enabled in (("with", True), ("without", False)):
        if not enabled:
            await conn.execute(
                "ALTER TABLE interactions DISABLE TRIGGER interactions_progress_insert"
            )
        try:
            started = time.perf_counter()
            await insert_knocks(conn, SCRATCH, 1, 20_000, doors)
            cost[label] = time.perf_counter() - started
        finally:
            await conn.execute(
                "ALTER TABLE interactions ENABLE TRIGGER interactions_progress_insert"
            )
            await conn.execute("DELETE FROM interactions WHERE data ->> 'campaignId' = $1", SCRATCH)
            await conn.execute("DELETE FROM progress_tallies WHERE campaign_id = $1", SCRATCH)
    return cost


async def measure(url: str, doors: int, runs: int, log: Callable[[str], None]) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        await seed(conn, doors, log)
        tenant = uuid.UUID(TENANT)
        results: dict[str, Any] = {"doors": doors, "interactions": doors * 3 // 2}
        results["tally rows before compaction"] = await conn.fetchval(
            "SELECT count(*) FROM progress_tallies WHERE campaign_id = $1", CAMPAIGN
        )
        started = time.perf_counter()
        await progress_sql.compact(conn, tenant, CAMPAIGN)
        results["first compaction (s)"] = time.perf_counter() - started
        results["tally rows after"] = await conn.fetchval(
            "SELECT count(*) FROM progress_tallies WHERE campaign_id = $1", CAMPAIGN
        )
        floor = await timed(lambda: conn.fetch(progress_sql.TALLIED, tenant, CAMPAIGN), runs)
        results["floor"] = summary(floor)
        plain_runs = max(3, runs // 10)
        # Fair to counting at read time: no JIT (the endpoint's scoped path turns it off).
        await conn.execute("SET jit = off")
        whole = progress_sql.facts_statement("true")
        results["plain count (fact functions)"] = summary(
            await timed(lambda: conn.fetch(whole, tenant, CAMPAIGN), plain_runs)
        )
        results["plain count (minimal GROUP BY)"] = summary(
            await timed(lambda: conn.fetch(_MINIMAL_PLAIN, tenant, CAMPAIGN), plain_runs)
        )
        results.update(await endpoint(url, runs))
        results["write 20k interactions (s)"] = await write_cost(conn, doors)
        return results
    finally:
        await conn.close()


async def endpoint(url: str, runs: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token()}"}
    log_path = PG_DIR / "progress-bench-server.log"
    PG_DIR.mkdir(parents=True, exist_ok=True)
    server = Server("polis-api", 1, server_env(url), "/readyz", log_path)
    server.start(headers)
    try:
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as http:
            path = f"/v1/campaigns/{CAMPAIGN}/progress"
            first = await http.get(path)
            first.raise_for_status()
            etag = first.headers["ETag"]

            async def whole() -> None:
                (await http.get(path)).raise_for_status()

            async def unchanged() -> None:
                answer = await http.get(path, headers={"If-None-Match": etag})
                assert answer.status_code == 304, answer.status_code

            async def walk() -> None:
                (await http.get(path, params={"walklistId": WALKLIST})).raise_for_status()

            return {
                "endpoint": summary(await timed(whole, runs)),
                "endpoint 304": summary(await timed(unchanged, runs)),
                "walk list (500 doors)": summary(await timed(walk, runs)),
            }
    finally:
        server.stop()


def report(results: dict[str, Any]) -> str:
    floor = results["floor"]["p50"]
    lines = [
        f"doors {results['doors']}, interactions {results['interactions']}; tally rows "
        f"{results['tally rows before compaction']} -> {results['tally rows after']} "
        f"(first compaction {results['first compaction (s)']:.1f} s)",
        "| what | p50 ms | p95 ms | p50 / floor |",
        "|---|---|---|---|",
    ]
    for name, value in results.items():
        if isinstance(value, dict) and "p50" in value:
            ratio = value["p50"] / floor if floor else float("nan")
            lines.append(f"| {name} | {value['p50']:.1f} | {value['p95']:.1f} | {ratio:.1f}x |")
    cost = results["write 20k interactions (s)"]
    lines.append(
        f"20k interactions inserted: {cost['with']:.2f} s with the tally trigger, "
        f"{cost['without']:.2f} s without ({cost['with'] / cost['without']:.2f}x)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--doors", type=int, default=500_000)
    parser.add_argument("--quick", action="store_true", help="20k doors, fewer runs")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--database-url", help="default: the embedded bench PostgreSQL")
    args = parser.parse_args(argv)
    doors, runs = (20_000, 20) if args.quick else (args.doors, args.runs)
    server = None
    url = args.database_url
    if url is None:
        url, server = db.start_embedded(PG_DIR, database="polis_progress_bench")
    if "bench" not in url.rsplit("/", 1)[-1]:
        print("refusing: the database name must contain 'bench' (the run empties it)")
        return 2
    try:
        db.run_migrations(url, "head")
        print(f"progress bench: {doors} doors on {url.rsplit('@', 1)[-1]}")
        results = asyncio.run(measure(url, doors, runs, print))
        print(report(results))
    finally:
        if server is not None:
            db.stop_embedded(server)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
