"""Geography: households' points indexed for bbox, near and point-in-polygon, and the
address fields most filtered on (docs/geography.md).

- ``ix_households_point``: GiST on ``point(lng, lat)``; serves ``bbox`` (``<@ box``)
  and turfs' point-in-polygon. Its expression is shared with that code word for word.
- ``ix_households_earth``: GiST on ``ll_to_earth(lat, lng)`` (the ``cube`` and
  ``earthdistance`` extensions, both trusted: a database owner may create them);
  serves ``near``/``radius`` (``earth_box @>``) and nearest first (KNN ``<->``).
- B-tree expression indexes for city, postal code and latitude filters.

All partial on live rows (and on rows with coordinates for the GiST ones), like the
other list indexes.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LAT = "((data #>> '{address,coords,lat}'))::float8"
LNG = "((data #>> '{address,coords,lng}'))::float8"
LOCATED = "NOT is_deleted AND data #> '{address,coords}' IS NOT NULL"

INDEXES = {
    "ix_households_point": f"USING gist (point({LNG}, {LAT})) WHERE {LOCATED}",
    "ix_households_earth": f"USING gist (ll_to_earth({LAT}, {LNG})) WHERE {LOCATED}",
    "ix_households_city": (
        "(customer_id, (data -> 'address' ->> 'city'), id) WHERE NOT is_deleted"
    ),
    "ix_households_postal_code": (
        "(customer_id, (data -> 'address' ->> 'postalCode'), id) WHERE NOT is_deleted"
    ),
    "ix_households_lat": (
        "(customer_id, (data -> 'address' -> 'coords' -> 'lat'), id) WHERE NOT is_deleted"
    ),
}


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS cube")
    op.execute("CREATE EXTENSION IF NOT EXISTS earthdistance")
    for name, definition in INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON households {definition}")


def downgrade() -> None:
    for name in INDEXES:
        op.execute(f"DROP INDEX {name}")
    # Kept if anything else came to depend on them (no CASCADE).
    op.execute("DROP EXTENSION IF EXISTS earthdistance")
    op.execute("DROP EXTENSION IF EXISTS cube")
