"""Every statement of the progress view (docs/progress.md).

Two ways to count the same facts (migration 0017_progress defines what a fact is):

- a whole campaign sums ``progress_tallies``, the deltas that triggers add in the
  same transaction as every door-record and interaction write: a few hundred rows
  whatever the campaign's size;
- a part of one (a turf, a walk list, a restricted caller's assigned doors) runs the
  same fact functions over its live documents: exact, and as fast as the part is
  small.

Both answer the counted facts with the contactState of the status each names.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from polis_api.resources.assigned import assigned_doors
from polis_api.resources.door_places import POSITIONED, inside_sql
from polis_api.workflow.polygons import Polygon, path_text, polygon_text
from polis_api.workflow.progress import Fact

KEY = "kind, day, user_id, state, status_id, outcome, question_id, option_id"

# The counted facts, with the contactState of the status each names (a deleted
# status still has the state it had: the knocks it labelled keep their meaning).
_WITH_STATES = """
SELECT c.kind, c.day, c.user_id::text AS user_id, c.state, c.status_id, c.outcome,
       c.question_id, c.option_id, c.n, c.parts, s.data ->> 'contactState' AS contact_state
FROM counted AS c
LEFT JOIN statuses AS s ON s.customer_id = $1 AND c.status_id IS NOT NULL
  AND s.id::text = c.status_id
"""

# $1 the tenant, $2 the campaign id (text).
TALLIED = f"""
WITH counted AS (
  SELECT {KEY}, sum(n)::bigint AS n, count(*) AS parts
  FROM progress_tallies WHERE customer_id = $1 AND campaign_id = $2
  GROUP BY {KEY}
)
{_WITH_STATES}
"""  # noqa: S608

# Sums a campaign's deltas into one row per key. Two compactions at once cannot
# count twice: the second's DELETE skips the rows the first deleted, and never sees
# the first's new rows (they are not in its snapshot).
COMPACT = f"""
WITH gone AS (
  DELETE FROM progress_tallies WHERE customer_id = $1 AND campaign_id = $2
  RETURNING customer_id, campaign_id, {KEY}, n
)
INSERT INTO progress_tallies (customer_id, campaign_id, {KEY}, n)
SELECT customer_id, campaign_id, {KEY}, sum(n) FROM gone
GROUP BY customer_id, campaign_id, {KEY} HAVING sum(n) <> 0
"""  # noqa: S608

# More rows than keys by this much, and a read compacts the campaign's tallies.
COMPACT_SLACK = 2000


def facts_statement(door_condition: str) -> str:
    """The counted facts of the campaign's live documents whose door meets
    ``door_condition`` (on ``{row}``, written by code, never from a request)."""
    # replace, not format: callers' conditions may hold literal braces.
    doors = door_condition.replace("{row}", "d")
    knocks = door_condition.replace("{row}", "i")
    return f"""
WITH facts AS (
  SELECT f.* FROM contact_household_campaigns AS d, LATERAL progress_door_facts(d) AS f
  WHERE d.customer_id = $1 AND NOT d.is_deleted AND (d.data ->> 'campaignId') = $2
    AND {doors}
  UNION ALL
  SELECT f.* FROM interactions AS i, LATERAL progress_knock_facts(i) AS f
  WHERE i.customer_id = $1 AND NOT i.is_deleted AND (i.data ->> 'campaignId') = $2
    AND {knocks}
), counted AS (
  SELECT {KEY}, count(*)::bigint AS n, 1::bigint AS parts FROM facts GROUP BY {KEY}
)
{_WITH_STATES}
"""  # noqa: S608


# The doors are looked up first, so both tables are read by their door indexes
# (= ANY of an array whose length the planner knows).
IN_DOORS = facts_statement("({row}.data ->> 'contactHouseholdId') = ANY($3::text[])")


@dataclass(frozen=True, slots=True)
class DoorScope:
    """Which doors of the campaign count: every door set named (a walk list, a turf,
    the caller's assignment) at once. Each set is a query of contact-household ids
    (text) with its parameters, numbered from $2 on ($1 is the tenant)."""

    sets: tuple[str, ...] = ()
    params: tuple[object, ...] = ()

    @property
    def whole_campaign(self) -> bool:
        return not self.sets

    def _with(self, query: str, *params: object) -> DoorScope:
        return DoorScope((*self.sets, query), (*self.params, *params))

    def _next(self) -> int:
        return 2 + len(self.params)

    def on_walklist(self, walklist_id: uuid.UUID) -> DoorScope:
        n = self._next()
        return self._with(
            "SELECT jsonb_array_elements_text(w.data -> 'doors') FROM walklists AS w "  # noqa: S608
            f"WHERE w.customer_id = $1 AND w.id = ${n} AND NOT w.is_deleted",
            walklist_id,
        )

    def in_turf(self, polygon: Polygon) -> DoorScope:
        n = self._next()
        return self._with(
            "SELECT ch.id::text FROM households AS h JOIN contact_households AS ch "  # noqa: S608
            "ON ch.customer_id = h.customer_id AND (ch.data ->> 'householdId') = h.id::text "
            "AND NOT ch.is_deleted "
            f"WHERE h.customer_id = $1 AND {POSITIONED} AND {inside_sql(f'${n}', f'${n + 1}')}",
            polygon_text(polygon.outer),
            [path_text(hole) for hole in polygon.holes],
        )

    def assigned_to(self, sub: uuid.UUID) -> DoorScope:
        return self._with(assigned_doors(f"${self._next()}"), str(sub))

    def doors_statement(self) -> str:
        """The contact-household ids in every set, as one text[]."""
        return "SELECT array(" + " INTERSECT ".join(f"({query})" for query in self.sets) + ")"


async def count_facts(
    conn: asyncpg.Connection, customer_id: uuid.UUID, campaign_id: str, scope: DoorScope
) -> list[Fact]:
    """The campaign's counted facts within ``scope``; compacts the tallies when due."""
    if scope.whole_campaign:
        rows = await conn.fetch(TALLIED, customer_id, campaign_id)
        if sum(row["parts"] for row in rows) - len(rows) >= COMPACT_SLACK:
            await compact(conn, customer_id, campaign_id)
    else:
        doors = await conn.fetchval(scope.doors_statement(), customer_id, *scope.params)
        async with conn.transaction():
            # The inlined fact functions make PostgreSQL overestimate rows a hundredfold,
            # and JIT-compiling the plan would then cost more than running it.
            await conn.execute("SET LOCAL jit = off")
            rows = await conn.fetch(IN_DOORS, customer_id, campaign_id, doors)
    return [_fact(row) for row in rows]


async def compact(conn: asyncpg.Connection, customer_id: uuid.UUID, campaign_id: str) -> None:
    # One compaction per campaign at a time; the others simply skip it (the tallies
    # are exact either way, compacting only keeps them short).
    async with conn.transaction():
        locked = await conn.fetchval(
            "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))",
            f"progress:{customer_id}:{campaign_id}",
        )
        if locked:
            await conn.execute(COMPACT, customer_id, campaign_id)


def _fact(row: asyncpg.Record) -> Fact:
    return Fact(
        kind=row["kind"],
        n=int(row["n"]),
        day=row["day"],
        user_id=row["user_id"],
        state=row["state"],
        status_id=row["status_id"],
        outcome=row["outcome"],
        question_id=row["question_id"],
        option_id=row["option_id"],
        contact_state=row["contact_state"],
    )


async def shows_unassigned(conn: asyncpg.Connection, customer_id: uuid.UUID) -> bool:
    """The tenant's ``viewUnassignedData`` (docs/visibility.md; default true)."""
    return bool(await conn.fetchval(_SHOWS_UNASSIGNED, customer_id))


_SHOWS_UNASSIGNED = (
    "SELECT coalesce((SELECT (data ->> 'viewUnassignedData')::boolean "
    "FROM tenant_settings WHERE customer_id = $1), true)"
)
