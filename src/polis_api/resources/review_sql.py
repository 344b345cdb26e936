"""The statements behind a campaign's review and its rollback (docs/quality.md).

Windows compare the interactions' own ``timestamp`` (when the knock happened, as
the phone recorded it): ``from`` inclusive, ``to`` exclusive. Timestamps are stored
in one fixed-width UTC form, so comparing their text compares the times.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from polis_api.documents import repository as repo
from polis_api.documents.envelope import StoredDocument
from polis_api.documents.visibility import VisibleTo
from polis_api.filtering.to_sql import Params
from polis_api.resources.interactions import INTERACTIONS
from polis_api.resources.statuses import STATUSES
from polis_api.workflow.door import StatusInfo

TABLE = INTERACTIONS.table
_AT = "(data ->> 'timestamp')"
# The knocks judged, the ranking and the page; then each listed canvasser's flags.
# Interpolated pieces are constants or built from Params; values are parameters.
_RANKING = """
WITH scoped AS MATERIALIZED (
  SELECT created_by, data -> 'qualityFlags' AS flags FROM {table}
  WHERE {where}
), per_user AS (
  SELECT created_by, count(*) AS interactions,
         count(*) FILTER (WHERE jsonb_typeof(flags) = 'array'
                          AND jsonb_array_length(flags) > 0) AS flagged
  FROM scoped GROUP BY created_by
), page AS (
  SELECT * FROM per_user
  ORDER BY flagged::numeric / interactions DESC, flagged DESC, created_by
  LIMIT {limit} OFFSET {skip}
), per_flag AS (
  SELECT s.created_by, f.flag, count(*) AS n
  FROM scoped AS s JOIN page AS p USING (created_by),
       jsonb_array_elements_text(
         CASE WHEN jsonb_typeof(s.flags) = 'array' THEN s.flags ELSE '[]' END) AS f(flag)
  GROUP BY s.created_by, f.flag
)
SELECT p.created_by::text AS user_id, p.interactions, p.flagged,
       coalesce((SELECT jsonb_object_agg(pf.flag, pf.n ORDER BY pf.flag) FROM per_flag AS pf
                 WHERE pf.created_by = p.created_by), '{{}}'::jsonb) AS flags
FROM page AS p
ORDER BY p.flagged::numeric / p.interactions DESC, p.flagged DESC, p.created_by
"""


@dataclass(frozen=True, slots=True)
class Window:
    """``[start, end)`` over the interactions' timestamps, as stored text; None: open."""

    start: str | None = None
    end: str | None = None


@dataclass(frozen=True, slots=True)
class CanvasserCounts:
    user_id: str
    interactions: int
    flagged: int
    flags: dict[str, int]


async def ranking(
    conn: asyncpg.Connection,
    customer_id: uuid.UUID,
    campaign_id: uuid.UUID,
    window: Window,
    page: tuple[int, int],
    visible: VisibleTo | None,
) -> list[CanvasserCounts]:
    """The campaign's canvassers by flagged share; ``page`` is (limit, skip)."""
    params = Params([customer_id, str(campaign_id)])
    where = ["customer_id = $1 AND NOT is_deleted AND (data ->> 'campaignId') = $2"]
    if window.start is not None:
        where.append(f"{_AT} >= {params.add(window.start)}")
    if window.end is not None:
        where.append(f"{_AT} < {params.add(window.end)}")
    if visible is not None:
        where.append(visible.where(params))
    limit, skip = page
    sql = _RANKING.format(
        table=TABLE,
        where=" AND ".join(where),
        limit=params.add(limit),
        skip=params.add(skip),
    )
    rows = await conn.fetch(sql, *params.values)
    return [
        CanvasserCounts(row["user_id"], row["interactions"], row["flagged"], row["flags"])
        for row in rows
    ]


_ROLLED_BACK = f"""
SELECT id, customer_id, security_group_id, data, created, modified, created_by, modified_by,
       is_deleted
FROM {TABLE}
WHERE customer_id = $1 AND created_by = $2 AND NOT is_deleted
  AND {_AT} >= $3 AND {_AT} < $4 AND (data ->> 'campaignId') = $5
ORDER BY id LIMIT $6
"""  # noqa: S608


async def canvasser_interactions(
    conn: asyncpg.Connection,
    customer_id: uuid.UUID,
    campaign_id: uuid.UUID,
    user_id: uuid.UUID,
    window: Window,
    most: int,
    *,
    lock: bool,
) -> list[StoredDocument]:
    """The canvasser's live interactions of the campaign in the window, in id order
    (locked FOR UPDATE with ``lock``), at most ``most`` of them."""
    rows = await conn.fetch(
        _ROLLED_BACK + (" FOR UPDATE" if lock else ""),
        customer_id,
        user_id,
        window.start,
        window.end,
        str(campaign_id),
        most,
    )
    return [repo.stored_from_row(row) for row in rows]


_LATEST_REMAINING = f"""
SELECT DISTINCT ON (data ->> 'contactHouseholdId') id, data
FROM {TABLE}
WHERE customer_id = $1 AND NOT is_deleted AND (data ->> 'contactHouseholdId') = ANY($2::text[])
  AND (data ->> 'campaignId') = $3 AND NOT (id = ANY($4::uuid[]))
ORDER BY (data ->> 'contactHouseholdId'), {_AT} DESC, created DESC, id DESC
"""  # noqa: S608


async def latest_remaining(
    conn: asyncpg.Connection,
    customer_id: uuid.UUID,
    campaign_id: uuid.UUID,
    doors: list[str],
    leaving: list[uuid.UUID],
) -> dict[str, tuple[uuid.UUID, dict[str, Any]]]:
    """Door (contact-household id) → the interaction it follows once ``leaving`` are
    gone: the latest by timestamp, the later arrival on a tie (as workflow/door.py)."""
    rows = await conn.fetch(_LATEST_REMAINING, customer_id, doors, str(campaign_id), leaving)
    return {row["data"]["contactHouseholdId"]: (row["id"], row["data"]) for row in rows}


_STATUSES = f"""
SELECT id::text AS id, data ->> 'contactState' AS state,
       (data ->> 'defaultStatus') = 'true' AS is_default
FROM {STATUSES.table}
WHERE customer_id = $1 AND NOT is_deleted
  AND (id = ANY($2::uuid[]) OR (data ->> 'defaultStatus') = 'true')
ORDER BY created, id
"""  # noqa: S608


@dataclass(frozen=True, slots=True)
class Statuses:
    named: dict[str, StatusInfo]  # the statuses asked for, by id
    defaults: dict[str, str]  # contactState → the tenant's default status id (the oldest)


async def statuses(
    conn: asyncpg.Connection, customer_id: uuid.UUID, ids: set[uuid.UUID]
) -> Statuses:
    rows = await conn.fetch(_STATUSES, customer_id, list(ids))
    named: dict[str, StatusInfo] = {}
    defaults: dict[str, str] = {}
    for row in rows:
        named[row["id"]] = StatusInfo(row["id"], row["state"])
        if row["is_default"]:
            defaults.setdefault(row["state"], row["id"])
    return Statuses({key: named[key] for key in named if uuid.UUID(key) in ids}, defaults)
