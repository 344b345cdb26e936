"""Data quality's database work at scale (docs/quality.md): what each knock's speed and
burst checks cost, and what a campaign's review costs, as ratios to floors measured in
the same run on the same data.

- the canvasser look-up (advisory lock + the neighbours statement of
  ``resources/canvasser_knocks.py``) against the floor of one primary-key read;
- the review ranking of ``resources/review_sql.py`` against the floor of counting the
  same campaign's live interactions.

Run on its own against a migrated database it may fill (it adds one tenant's rows and
deletes them afterwards):

    DATABASE_URL=postgresql://… .venv/bin/python bench/quality.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg

from polis_api import db
from polis_api.resources import canvasser_knocks, review_sql
from polis_api.workflow.quality import QualityLimits

_FILL = """
INSERT INTO interactions (customer_id, id, security_group_id, data, created, modified,
                          created_by, modified_by, etag)
SELECT $1::uuid, gen_random_uuid(), $1::uuid,
       jsonb_build_object(
         'campaignId', $2::text,
         'contactHouseholdId', md5('door' || n)::uuid::text,
         'timestamp', to_char((timestamptz '2026-10-01' + n * interval '7 seconds')
                              AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
         'location', jsonb_build_object('lat', 40 + (n % 1000) * 0.0001, 'lng', -74.0))
       || CASE WHEN n % 20 = 0 THEN '{"qualityFlags": ["burst"]}'::jsonb ELSE '{}' END,
       now(), now(), md5('canvasser' || (n % $4))::uuid, $1::uuid, 'x'
FROM generate_series(1, $3) AS n
"""


async def _median_ms(run: Callable[[], Awaitable[object]], times: int) -> float:
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        await run()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


async def main(url: str, knocks: int, canvassers: int, times: int) -> dict[str, float]:
    conn = await asyncpg.connect(url)
    await db._init_connection(conn)
    tenant, campaign = uuid.uuid4(), uuid.uuid4()
    user = uuid.UUID(await conn.fetchval("SELECT md5('canvasser0')::uuid::text"))
    try:
        await conn.execute(_FILL, tenant, str(campaign), knocks, canvassers)
        await conn.execute("ANALYZE interactions")
        some_id = await conn.fetchval(
            "SELECT id FROM interactions WHERE customer_id = $1 LIMIT 1", tenant
        )

        async def floor_read() -> object:
            return await conn.fetchrow(
                "SELECT data FROM interactions WHERE customer_id = $1 AND id = $2", tenant, some_id
            )

        neighbours = canvasser_knocks.neighbours_sql(first=2, need=QualityLimits().burst_knocks)
        args = canvasser_knocks.neighbour_args(
            user, None, "2026-10-02T12:00:00.000Z", QualityLimits()
        )

        async def look_up() -> object:
            async with conn.transaction():
                await canvasser_knocks.lock_canvasser(conn, tenant, user)
                return canvasser_knocks.knocks_of(await conn.fetch(neighbours, tenant, *args))

        async def floor_count() -> object:
            return await conn.fetchval(
                "SELECT count(*) FROM interactions WHERE customer_id = $1 AND NOT is_deleted "
                "AND (data ->> 'campaignId') = $2",
                tenant,
                str(campaign),
            )

        async def ranking() -> object:
            return await review_sql.ranking(
                conn, tenant, campaign, review_sql.Window(), (100, 0), None
            )

        read = await _median_ms(floor_read, times)
        knock = await _median_ms(look_up, times)
        count = await _median_ms(floor_count, max(3, times // 20))
        review = await _median_ms(ranking, max(3, times // 20))
    finally:
        await conn.execute("DELETE FROM interactions WHERE customer_id = $1", tenant)
        await conn.close()
    return {
        "knocks": knocks,
        "canvassers": canvassers,
        "pk_read_ms": read,
        "canvasser_look_up_ms": knock,
        "look_up_over_pk_read": knock / read,
        "campaign_count_ms": count,
        "review_ms": review,
        "review_over_count": review / count,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50k knocks instead of 500k")
    args = parser.parse_args()
    url = os.environ["DATABASE_URL"]
    knocks = 50_000 if args.quick else 500_000
    result = asyncio.run(main(url, knocks, canvassers=200, times=200))
    for name, value in result.items():
        print(f"{name:>24}: {value:.3f}" if isinstance(value, float) else f"{name:>24}: {value}")
