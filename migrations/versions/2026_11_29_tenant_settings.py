"""Tenant settings (docs/visibility.md): one row per tenant, absent until changed.

``data`` holds the settings a tenant changed (``viewUnassignedData``); a missing row
or key means the default. Reads join it by primary key inside the statement that
reads the rows it governs, so it needs no other index.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tenant_settings",
        sa.Column("customer_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("data", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("modified", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified_by", UUID(as_uuid=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tenant_settings")
