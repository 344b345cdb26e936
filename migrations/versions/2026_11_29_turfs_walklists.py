"""Turfs and walk lists (docs/turfs.md).

Both are document tables of the shared shape, with the change feed's ``txid``
column, trigger and index. A turf's doors are found through a GiST index on each
household's position (``point(lng, lat)``, PostgreSQL's own geometric type; no
PostGIS): ``point <@ polygon`` and nearest-first ``<->`` are answered from it. The
geography migration creates the same index under the same name; whichever runs
first makes it (IF NOT EXISTS), so the expression and condition must stay identical.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = "WHERE NOT is_deleted"
# The trigger function 0007 created: stamps the writing transaction on every row.
TXID_FUNCTION = "polis_stamp_txid"
HOUSEHOLD_POINT = (
    "point(((data #>> '{address,coords,lng}'))::float8, "
    "((data #>> '{address,coords,lat}'))::float8)"
)


def create_document_table(name: str, indexes: dict[str, str], feeds_by: dict[str, str]) -> None:
    # A frozen copy of documents.schema.document_table as of this revision.
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
    op.execute(f"ALTER TABLE {name} ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id()")
    op.execute(
        f"CREATE TRIGGER {name}_txid BEFORE INSERT OR UPDATE ON {name} "
        f"FOR EACH ROW EXECUTE FUNCTION {TXID_FUNCTION}()"
    )
    # The feed's index covers deleted rows (tombstones); the list indexes only live ones.
    op.execute(f"CREATE INDEX ix_{name}_txid ON {name} (customer_id, txid, id)")
    for suffix, columns in {
        "modified": "customer_id, modified, id",
        "created": "customer_id, created, id",
        **indexes,
    }.items():
        op.execute(f"CREATE INDEX ix_{name}_{suffix} ON {name} ({columns}) {LIVE}")
    for suffix, field in feeds_by.items():
        op.execute(
            f"CREATE INDEX ix_{name}_{suffix}_txid ON {name} "
            f"(customer_id, (data ->> '{field}'), txid, id)"
        )


def upgrade() -> None:
    create_document_table(
        "turfs",
        {"campaign": "customer_id, (data ->> 'campaignId'), id"},
        {"campaign": "campaignId"},
    )
    create_document_table(
        "walklists",
        {
            "campaign": "customer_id, (data ->> 'campaignId'), id",
            "assignee": "customer_id, (data ->> 'assigneeId'), id",
        },
        {"campaign": "campaignId"},
    )
    op.execute(
        f"CREATE INDEX IF NOT EXISTS ix_households_point ON households "
        f"USING gist (({HOUSEHOLD_POINT})) "
        "WHERE NOT is_deleted AND data #> '{address,coords}' IS NOT NULL"
    )


def downgrade() -> None:
    # The household index is left alone: the geography migration may own it.
    op.drop_table("walklists")
    op.drop_table("turfs")
