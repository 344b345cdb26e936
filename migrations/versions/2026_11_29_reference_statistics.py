"""Statistics on the references the map's joins follow (docs/geography.md).

Every expression index on ``data ->> '...'`` is partial (live rows only), and
PostgreSQL ignores a partial index's statistics when it estimates a condition. A
reference such as ``contact_households.data ->> 'householdId'`` therefore had no
statistics at all: the planner guessed that one value matches 0.5 % of the table (1,000
contact-households per household at 200 k) and, for a campaign's doors within a
radius, hashed every contact-household of the tenant instead of looking up the few in
the circle (3 s a request at 200 k households; bench/geo.py). Expression statistics
give it the real number of distinct values (each is nearly unique), so it looks them up.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# name: (table, the reference, exactly as the joins and indexes spell it)
STATISTICS = {
    "st_contact_households_household": ("contact_households", "householdId"),
    "st_contact_households_contact": ("contact_households", "contactId"),
    "st_contact_household_campaigns_pair": ("contact_household_campaigns", "contactHouseholdId"),
}


def upgrade() -> None:
    for name, (table, field) in STATISTICS.items():
        op.execute(f"CREATE STATISTICS {name} ON ((data ->> '{field}')) FROM {table}")
        # Without this the statistics stay empty until autovacuum next analyzes the table.
        op.execute(f"ANALYZE {table}")


def downgrade() -> None:
    for name in STATISTICS:
        op.execute(f"DROP STATISTICS {name}")
