"""The canvassing tables: households, contact-households, door records, interactions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = "WHERE NOT is_deleted"


def create_document_table(name: str, indexes: dict[str, str], unique: dict[str, str]) -> None:
    # A frozen copy of documents.schema.document_table (see 0001).
    op.create_table(
        name,
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("security_group_id", UUID(as_uuid=True), nullable=False),
        sa.Column("data", JSONB, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", UUID(as_uuid=True), nullable=False),
        sa.Column("modified_by", UUID(as_uuid=True), nullable=False),
        sa.Column("is_deleted", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("etag", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "id", name=f"pk_{name}"),
    )
    op.create_index(f"ix_{name}_modified", name, ["customer_id", "modified", "id"])
    for suffix, expressions in indexes.items():
        op.execute(f"CREATE INDEX ix_{name}_{suffix} ON {name} ({expressions})")
    for suffix, expressions in unique.items():
        # Partial: a deleted document frees its key for a new one.
        op.execute(f"CREATE UNIQUE INDEX uq_{name}_{suffix} ON {name} ({expressions}) {LIVE}")


def upgrade() -> None:
    create_document_table(
        "households",
        {"unit_num": "customer_id, (data ->> 'unitNum'), id"},
        {"external_id": "customer_id, (data ->> 'externalId')"},
    )
    create_document_table(
        "contact_households",
        {
            "contact": "customer_id, (data ->> 'contactId'), id",
            "household": "customer_id, (data ->> 'householdId'), id",
        },
        {"pair": "customer_id, (data ->> 'contactId'), (data ->> 'householdId')"},
    )
    create_document_table(
        "contact_household_campaigns",
        {
            "campaign": "customer_id, (data ->> 'campaignId'), id",
            "campaign_modified": "customer_id, (data ->> 'campaignId'), modified, id",
        },
        {"door": "customer_id, (data ->> 'campaignId'), (data ->> 'contactHouseholdId')"},
    )
    create_document_table(
        "interactions",
        {
            "campaign": "customer_id, (data ->> 'campaignId'), id",
            "contact": "customer_id, (data ->> 'contactId'), id",
            "contact_household": "customer_id, (data ->> 'contactHouseholdId'), id",
            "household": "customer_id, (data ->> 'householdId'), id",
        },
        {},
    )


def downgrade() -> None:
    for name in ("interactions", "contact_household_campaigns", "contact_households", "households"):
        op.drop_table(name)
