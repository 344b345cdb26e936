"""Tenants and the first two document tables: campaigns and statuses.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def create_document_table(name: str, indexes: dict[str, str]) -> None:
    # A frozen copy of documents.schema.document_table: migrations must not change
    # when the application's schema module does.
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


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
        sa.Column(
            "created", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")
        ),
        sa.PrimaryKeyConstraint("customer_id", name="pk_tenants"),
    )
    create_document_table(
        "campaigns",
        {
            "organization": "customer_id, (data ->> 'organizationId'), id",
            "status": "customer_id, (data ->> 'status'), id",
        },
    )
    create_document_table(
        "statuses",
        {"contact_state": "customer_id, (data ->> 'contactState'), id"},
    )


def downgrade() -> None:
    op.drop_table("statuses")
    op.drop_table("campaigns")
    op.drop_table("tenants")
