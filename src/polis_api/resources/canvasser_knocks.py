"""What the speed and burst checks need to know about a canvasser's other knocks
(docs/quality.md, Concurrency).

One statement per write (with the door's record: resources/interactions.py), four
LIMITed range reads of the canvasser's own index
(``ix_interactions_canvasser_time`` and, for the knocks with a place,
``ix_interactions_canvasser_located``), never a scan of the canvasser's history.

Before reading, the write takes a transaction-scoped advisory lock on the canvasser:
a second write of the same canvasser waits until the first commits, and its read
(a new statement, so a new snapshot under READ COMMITTED) then sees the first knock.
So two knocks sent at once are judged as if sent one after the other.

The wait is bounded (``LOCK_WAIT_SECONDS``): the first write may itself be waiting,
for a door another request holds, and a canvasser's knocks must not queue behind
that until a statement times out. Past the bound the knock is judged on what is
committed, as it would be without the lock.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from polis_api.documents.envelope import format_timestamp
from polis_api.workflow.door import parse_timestamp
from polis_api.workflow.quality import CanvasserKnocks, Knock, QualityLimits, shifted

TABLE = "interactions"  # INTERACTIONS.table (resources/interactions.py imports this module)


def try_lock_sql(customer: str, user: str) -> str:
    """The expression taking a canvasser's lock if it is free (true) or not (false),
    with the SQL text of the tenant's and the canvasser's ids."""
    key = f"'canvasser:' || {customer} || ':' || {user}"
    return f"pg_try_advisory_xact_lock(hashtextextended({key}, 0))"


_TRY_LOCK = f"SELECT {try_lock_sql('$1', '$2')}"
# A knock commits in milliseconds; one that takes longer is waiting for something else.
LOCK_WAIT_SECONDS = 0.25
_LOCK_POLL_SECONDS = 0.01


def neighbours_sql(first: int, need: int) -> str:
    """The knocks around one, as rows (side, timestamp, lat, lng); $1 is the tenant and
    the statement's own parameters start at ``$first``: the canvasser, the interaction
    itself (left out: a PATCH re-judges it), its timestamp and the burst window's ends.

    ``need``, the knocks taken on each side, is written into the text rather than
    bound: with ``LIMIT $n`` PostgreSQL never settles on a generic plan and plans the
    statement again on every knock, which tripled its cost.
    """
    user, me, at, start, end = (f"${n}" for n in range(first, first + 5))
    need = int(need)
    mine = (
        f"FROM {TABLE} WHERE customer_id = $1 AND created_by = {user} AND NOT is_deleted"
        f" AND id <> {me}"
    )
    located = (
        "AND (data -> 'location' ->> 'lat') IS NOT NULL"
        " AND (data -> 'location' ->> 'lng') IS NOT NULL"
    )
    when = "(data ->> 'timestamp')"
    place = "(data -> 'location' ->> 'lat')::float8, (data -> 'location' ->> 'lng')::float8"
    return f"""
(SELECT 'previous', {when}, {place} {mine} {located} AND {when} <= {at}
   ORDER BY {when} DESC LIMIT 1)
UNION ALL
(SELECT 'next', {when}, {place} {mine} {located} AND {when} >= {at} ORDER BY {when} LIMIT 1)
UNION ALL
(SELECT 'nearby', {when}, NULL, NULL {mine} AND {when} >= {start} AND {when} <= {at}
   ORDER BY {when} DESC LIMIT {need})
UNION ALL
(SELECT 'nearby', {when}, NULL, NULL {mine} AND {when} > {at} AND {when} <= {end}
   ORDER BY {when} LIMIT {need})
"""


async def lock_canvasser(conn: asyncpg.Connection, customer_id: uuid.UUID, user: uuid.UUID) -> bool:
    """Take the canvasser's lock (held until the transaction ends; taking it again in
    the same transaction succeeds at once), waiting at most ``LOCK_WAIT_SECONDS``."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while not await conn.fetchval(_TRY_LOCK, str(customer_id), str(user)):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_LOCK_POLL_SECONDS)
    return True


def neighbour_args(
    user: uuid.UUID, interaction_id: uuid.UUID | None, timestamp: str, limits: QualityLimits
) -> tuple[object, ...]:
    """``neighbours_sql``'s own parameters, in order.

    Taking ``burst_knocks`` on each side is enough: a window holding this knock and
    more than that many others either holds that many on one side (all among the
    nearest taken) or fewer on both (all taken).
    """
    at = parse_timestamp(timestamp)
    window = limits.burst_window
    return (
        user,
        interaction_id or uuid.UUID(int=0),
        format_timestamp(at),
        format_timestamp(shifted(at, -window)),
        format_timestamp(shifted(at, window)),
    )


def knocks_of(rows: Iterable[Sequence[Any]]) -> CanvasserKnocks:
    """The canvasser's other live knocks around one, from ``neighbours_sql``'s rows."""
    sides: dict[str, Knock] = {}
    nearby: list[datetime] = []
    for side, text, lat, lng in rows:
        moment = parse_timestamp(text)
        if side == "nearby":
            nearby.append(moment)
        else:
            sides[side] = Knock(moment, (lat, lng))
    return CanvasserKnocks(sides.get("previous"), sides.get("next"), tuple(nearby))
