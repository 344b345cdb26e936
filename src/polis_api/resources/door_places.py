"""Where a campaign's doors are: the SQL that finds them by place (docs/turfs.md).

A door record names a contact-household, which names a household, whose
``address.coords`` place it. The households' GiST index ``ix_households_point``
is on exactly ``HOUSEHOLD_POINT`` under ``POSITIONED`` (the migration), so these
statements spell both the same way or PostgreSQL won't use it.

A turf's polygon goes in as text (``((lng,lat),...)``) cast to ``polygon``;
``point <@ polygon`` counts a point on the edge as inside (PostgreSQL compares with
a tolerance of 1e-6, about 10 cm in degrees). A hole removes only its strict
interior: a door on a hole's edge is on the turf's boundary, so it is inside too.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from polis_api.documents.envelope import StoredDocument
from polis_api.documents.repository import stored_from_row
from polis_api.resources.contact_households import CONTACT_HOUSEHOLDS
from polis_api.resources.door_records import DOOR_RECORDS
from polis_api.resources.households import HOUSEHOLDS
from polis_api.workflow.polygons import Polygon, path_text, polygon_text

HOUSEHOLD_POINT = (
    "point(((h.data #>> '{address,coords,lng}'))::float8, "
    "((h.data #>> '{address,coords,lat}'))::float8)"
)
POSITIONED = "NOT h.is_deleted AND h.data #> '{address,coords}' IS NOT NULL"
# The distance within which PostgreSQL's geometric operators call points equal.
EDGE_TOLERANCE = 1e-6

# Held: reserved, and the lease has not run out (no expiresAt: held until released).
# Only the door row itself is read, never the walk list: a taker that waited for a
# row lock re-checks this against the row's newest version, which a walk list
# written after the taker's snapshot could not be (close, release and delete write
# the doors free in the same transaction, so the door row is the truth).
HELD = (
    "(coalesce((d.data #>> '{reservation,reserved}')::boolean, false) "
    "AND coalesce((d.data #>> '{reservation,expiresAt}')::timestamptz > {now}, true))"
)


def inside_sql(outer: str, holes: str) -> str:
    """Whether the household ``h`` lies in the turf: ``outer`` a polygon, ``holes`` a
    text[] of polygons (parameters)."""
    return (
        # Names come from code; the polygons are bound parameters.
        f"{HOUSEHOLD_POINT} <@ {outer}::text::polygon AND NOT EXISTS ("  # noqa: S608
        f"SELECT 1 FROM unnest({holes}::text[]) AS hole(ring) "
        f"WHERE {HOUSEHOLD_POINT} <@ hole.ring::polygon "
        f"AND ({HOUSEHOLD_POINT} <-> hole.ring::path) > {EDGE_TOLERANCE})"
    )


def polygon_params(polygon: Polygon) -> list[object]:
    return [polygon_text(polygon.outer), [path_text(hole) for hole in polygon.holes]]


def in_turf_clause(first_param: int) -> str:
    """A list's WHERE clause on door records (unqualified columns): the door's household
    is inside the turf whose ``polygon_params`` are bound from ``$first_param`` on."""
    outer, holes = f"${first_param}", f"${first_param + 1}"
    return (
        "(data ->> 'contactHouseholdId') IN ("  # noqa: S608
        f"SELECT ch.id::text FROM {HOUSEHOLDS.table} AS h "
        f"JOIN {CONTACT_HOUSEHOLDS.table} AS ch ON ch.customer_id = h.customer_id "
        "AND (ch.data ->> 'householdId') = h.id::text AND NOT ch.is_deleted "
        f"WHERE h.customer_id = $1 AND {POSITIONED} AND {inside_sql(outer, holes)})"
    )


@dataclass(frozen=True, slots=True)
class PlacedDoor:
    """A door record, locked by the caller's transaction, with its household's place."""

    record: StoredDocument
    etag: str
    lng: float | None
    lat: float | None

    @property
    def contact_household_id(self) -> str:
        return str(self.record.data["contactHouseholdId"])

    @property
    def held_by(self) -> str | None:
        """The walk list holding this door's reservation (whatever its lease)."""
        reservation = self.record.data.get("reservation") or {}
        return reservation.get("walklistId") if reservation.get("reserved") else None

    def held_at(self, now: datetime) -> bool:
        reservation = self.record.data.get("reservation") or {}
        if not reservation.get("reserved"):
            return False
        expires = reservation.get("expiresAt")
        return expires is None or datetime.fromisoformat(expires) > now


_DOORS = f"""
SELECT d.id, d.customer_id, d.security_group_id, d.data, d.created, d.modified,
       d.created_by, d.modified_by, d.is_deleted, d.etag,
       (h.data #>> '{{address,coords,lng}}')::float8 AS lng,
       (h.data #>> '{{address,coords,lat}}')::float8 AS lat
FROM {DOOR_RECORDS.table} AS d
JOIN {CONTACT_HOUSEHOLDS.table} AS ch
  ON ch.customer_id = d.customer_id AND ch.id::text = (d.data ->> 'contactHouseholdId')
  AND NOT ch.is_deleted
JOIN {HOUSEHOLDS.table} AS h
  ON h.customer_id = ch.customer_id AND h.id::text = (ch.data ->> 'householdId')
WHERE d.customer_id = $1 AND NOT d.is_deleted AND (d.data ->> 'campaignId') = $2
  AND {POSITIONED} AND NOT {HELD.replace("{now}", "$3")}
  AND NOT (d.id = ANY($4::uuid[]))
"""  # noqa: S608

# Nearest first by the index's own distance (degrees); SKIP LOCKED: a door another
# request is taking right now is passed over, never waited for, never shared.
_NEAREST_FREE = (
    _DOORS + f"ORDER BY {HOUSEHOLD_POINT} <-> point($5, $6), d.id LIMIT $7 "
    "FOR UPDATE OF d SKIP LOCKED"
)
_IN_TURF_FREE = (
    _DOORS + f"AND {inside_sql('$5', '$6')} ORDER BY d.id LIMIT $7 FOR UPDATE OF d SKIP LOCKED"
)

# Refilling a short answer: rows another taker held when this one passed them can be
# free by the next statement (that taker failed), so a few passes fill the list.
MAX_PASSES = 3


async def take_nearest_free(
    conn: asyncpg.Connection,
    customer_id: uuid.UUID,
    campaign_id: str,
    lng: float,
    lat: float,
    size: int,
    now: datetime,
) -> list[PlacedDoor]:
    """Lock up to ``size`` free doors of the campaign nearest (lng, lat)."""
    return await _take(conn, _NEAREST_FREE, customer_id, campaign_id, now, size, lng, lat)


async def take_free_in_turf(
    conn: asyncpg.Connection,
    customer_id: uuid.UUID,
    campaign_id: str,
    polygon: Polygon,
    size: int,
    now: datetime,
) -> list[PlacedDoor]:
    """Lock up to ``size`` free doors of the campaign inside the turf."""
    outer, holes = polygon_params(polygon)
    return await _take(conn, _IN_TURF_FREE, customer_id, campaign_id, now, size, outer, holes)


async def _take(
    conn: asyncpg.Connection,
    statement: str,
    customer_id: uuid.UUID,
    campaign_id: str,
    now: datetime,
    size: int,
    *where: object,
) -> list[PlacedDoor]:
    taken: list[PlacedDoor] = []
    for _ in range(MAX_PASSES):
        wanted = size - len(taken)
        if wanted <= 0:
            break
        ids = [door.record.id for door in taken]
        rows = await conn.fetch(statement, customer_id, campaign_id, now, ids, *where, wanted)
        if not rows:
            break
        taken.extend(_placed(row) for row in rows)
    return taken


_BY_CONTACT_HOUSEHOLDS = f"""
SELECT d.id, d.customer_id, d.security_group_id, d.data, d.created, d.modified,
       d.created_by, d.modified_by, d.is_deleted, d.etag,
       CASE WHEN {POSITIONED} THEN (h.data #>> '{{address,coords,lng}}')::float8 END AS lng,
       CASE WHEN {POSITIONED} THEN (h.data #>> '{{address,coords,lat}}')::float8 END AS lat
FROM {DOOR_RECORDS.table} AS d
LEFT JOIN {CONTACT_HOUSEHOLDS.table} AS ch
  ON ch.customer_id = d.customer_id AND ch.id::text = (d.data ->> 'contactHouseholdId')
LEFT JOIN {HOUSEHOLDS.table} AS h
  ON h.customer_id = ch.customer_id AND h.id::text = (ch.data ->> 'householdId')
WHERE d.customer_id = $1 AND NOT d.is_deleted AND (d.data ->> 'campaignId') = $2
  AND (d.data ->> 'contactHouseholdId') = ANY($3::text[])
ORDER BY (d.data ->> 'contactHouseholdId')
FOR UPDATE OF d
"""  # noqa: S608


async def lock_doors(
    conn: asyncpg.Connection,
    customer_id: uuid.UUID,
    campaign_id: str,
    contact_household_ids: Sequence[str],
) -> dict[str, PlacedDoor]:
    """The campaign's door records for these contact-households, locked (waiting for
    other writers) in contact-household order, so writers naming the same doors in
    other orders queue instead of deadlocking. Missing doors are simply absent."""
    rows = await conn.fetch(
        _BY_CONTACT_HOUSEHOLDS, customer_id, campaign_id, sorted(set(contact_household_ids))
    )
    doors = (_placed(row) for row in rows)
    return {door.contact_household_id: door for door in doors}


def _placed(row: asyncpg.Record) -> PlacedDoor:
    return PlacedDoor(stored_from_row(row), row["etag"], row["lng"], row["lat"])
