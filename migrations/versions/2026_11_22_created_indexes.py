"""Indexes for /meta/created filters, which phones use for sync as much as /meta/modified.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "campaigns",
    "statuses",
    "households",
    "contact_households",
    "contact_household_campaigns",
    "interactions",
)


def upgrade() -> None:
    for table in TABLES:
        op.execute(
            f"CREATE INDEX ix_{table}_created ON {table} (customer_id, created, id) "
            "WHERE NOT is_deleted"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP INDEX ix_{table}_created")
