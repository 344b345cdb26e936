"""What the speed and burst checks need to know about a canvasser's other knocks
(docs/quality.md, Concurrency).

One statement per write, four LIMITed range reads of the canvasser's own index
(``ix_interactions_canvasser_time`` and, for the knocks with a place,
``ix_interactions_canvasser_located``), never a scan of the canvasser's history.

Before reading, the write takes a transaction-scoped advisory lock on the canvasser:
a second write of the same canvasser waits until the first commits, and its read
(a new statement, so a new snapshot under READ COMMITTED) then sees the first knock.
So two knocks sent at once are judged as if sent one after the other.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from polis_api.documents.envelope import format_timestamp
from polis_api.workflow.door import parse_timestamp
from polis_api.workflow.quality import CanvasserKnocks, Knock, QualityLimits, shifted

TABLE = "interactions"  # INTERACTIONS.table (resources/interactions.py imports this module)

_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('canvasser:' || $1 || ':' || $2, 0))"

# $1 tenant, $2 canvasser, $3 the interaction itself (left out: a PATCH re-judges it),
# $4 its timestamp, $5/$6 the burst window's ends, $7 knocks needed on each side.
_MINE = f"FROM {TABLE} WHERE customer_id = $1 AND created_by = $2 AND NOT is_deleted AND id <> $3"
_LOCATED = (
    "AND (data -> 'location' ->> 'lat') IS NOT NULL AND (data -> 'location' ->> 'lng') IS NOT NULL"
)
_AT = "(data ->> 'timestamp')"
_PLACE = "(data -> 'location' ->> 'lat')::float8, (data -> 'location' ->> 'lng')::float8"
_NEIGHBOURS = f"""
(SELECT 'previous', {_AT}, {_PLACE} {_MINE} {_LOCATED} AND {_AT} <= $4
   ORDER BY {_AT} DESC LIMIT 1)
UNION ALL
(SELECT 'next', {_AT}, {_PLACE} {_MINE} {_LOCATED} AND {_AT} >= $4 ORDER BY {_AT} LIMIT 1)
UNION ALL
(SELECT 'nearby', {_AT}, NULL, NULL {_MINE} AND {_AT} >= $5 AND {_AT} <= $4
   ORDER BY {_AT} DESC LIMIT $7)
UNION ALL
(SELECT 'nearby', {_AT}, NULL, NULL {_MINE} AND {_AT} > $4 AND {_AT} <= $6
   ORDER BY {_AT} LIMIT $7)
"""


async def lock_canvasser(conn: asyncpg.Connection, customer_id: uuid.UUID, user: uuid.UUID) -> None:
    await conn.execute(_LOCK, str(customer_id), str(user))


async def knocks_around(
    conn: asyncpg.Connection,
    customer_id: uuid.UUID,
    user: uuid.UUID,
    interaction_id: uuid.UUID | None,
    timestamp: str,
    limits: QualityLimits,
) -> CanvasserKnocks:
    """The canvasser's other live knocks around ``timestamp``, under its lock.

    Taking ``burst_knocks`` on each side is enough: a window holding this knock and
    more than that many others either holds that many on one side (all among the
    nearest taken) or fewer on both (all taken).
    """
    await lock_canvasser(conn, customer_id, user)
    at = parse_timestamp(timestamp)
    window = limits.burst_window
    rows = await conn.fetch(
        _NEIGHBOURS,
        customer_id,
        user,
        interaction_id or uuid.UUID(int=0),
        format_timestamp(at),
        format_timestamp(shifted(at, -window)),
        format_timestamp(shifted(at, window)),
        limits.burst_knocks,
    )
    sides: dict[str, Knock] = {}
    nearby: list[datetime] = []
    for side, text, lat, lng in rows:
        moment = parse_timestamp(text)
        if side == "nearby":
            nearby.append(moment)
        else:
            sides[side] = Knock(moment, (lat, lng))
    return CanvasserKnocks(sides.get("previous"), sides.get("next"), tuple(nearby))
