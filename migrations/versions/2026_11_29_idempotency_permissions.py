"""Idempotency keys remember the permissions their first call was checked for.

A replay is asked for the same permissions, so a stored answer only ever goes to a
caller who could have made the request. Keys stored before this have none listed
and replay to any valid token of their tenant, as they did.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "idempotency_keys",
        sa.Column(
            "permissions", ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]")
        ),
    )


def downgrade() -> None:
    op.drop_column("idempotency_keys", "permissions")
