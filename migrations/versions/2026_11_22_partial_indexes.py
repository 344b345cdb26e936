"""Filter and sort indexes cover live documents only (WHERE NOT is_deleted).

Every list query says NOT is_deleted, so a partial index matches it and can
answer "which ids are on this page" from the index alone, without visiting the
table for every skipped row.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> {index suffix: columns}, as created by 0001 and 0002.
INDEXES: dict[str, dict[str, str]] = {
    "campaigns": {
        "organization": "customer_id, (data ->> 'organizationId'), id",
        "status": "customer_id, (data ->> 'status'), id",
    },
    "statuses": {"contact_state": "customer_id, (data ->> 'contactState'), id"},
    "households": {"unit_num": "customer_id, (data ->> 'unitNum'), id"},
    "contact_households": {
        "contact": "customer_id, (data ->> 'contactId'), id",
        "household": "customer_id, (data ->> 'householdId'), id",
    },
    "contact_household_campaigns": {
        "campaign": "customer_id, (data ->> 'campaignId'), id",
        "campaign_modified": "customer_id, (data ->> 'campaignId'), modified, id",
    },
    "interactions": {
        "campaign": "customer_id, (data ->> 'campaignId'), id",
        "contact": "customer_id, (data ->> 'contactId'), id",
        "contact_household": "customer_id, (data ->> 'contactHouseholdId'), id",
        "household": "customer_id, (data ->> 'householdId'), id",
    },
}


def _recreate(where: str) -> None:
    for table, indexes in INDEXES.items():
        for suffix, columns in {**indexes, "modified": "customer_id, modified, id"}.items():
            op.execute(f"DROP INDEX ix_{table}_{suffix}")
            op.execute(f"CREATE INDEX ix_{table}_{suffix} ON {table} ({columns}){where}")


def upgrade() -> None:
    _recreate(" WHERE NOT is_deleted")


def downgrade() -> None:
    _recreate("")
