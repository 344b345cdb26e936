"""Lists and their members (SPEC §9).

Both are document tables of the shared shape, with the change feed's ``txid``
column, trigger and index (as 0007 added to the first tables). A member is unique
per (list, contact, household) among live rows, so concurrent adds of the same
pair make one member; every key leads with ``customer_id`` (Citus-ready).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = "WHERE NOT is_deleted"
# The trigger function 0007 created: stamps the writing transaction on every row.
TXID_FUNCTION = "polis_stamp_txid"


def create_document_table(
    name: str, indexes: dict[str, str], unique: dict[str, str], feeds_by: dict[str, str]
) -> None:
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
    for suffix, columns in unique.items():
        # Partial: taking a member off frees its key, so it can be put on again.
        op.execute(f"CREATE UNIQUE INDEX uq_{name}_{suffix} ON {name} ({columns}) {LIVE}")
    for suffix, field in feeds_by.items():
        op.execute(
            f"CREATE INDEX ix_{name}_{suffix}_txid ON {name} "
            f"(customer_id, (data ->> '{field}'), txid, id)"
        )


def upgrade() -> None:
    create_document_table(
        "lists",
        {"organization": "customer_id, (data ->> 'organizationId'), id"},
        {},
        {},
    )
    create_document_table(
        "list_members",
        {
            "list": "customer_id, (data ->> 'listId'), id",
            "contact_household": "customer_id, (data ->> 'contactHouseholdId'), id",
        },
        {
            "member": "customer_id, (data ->> 'listId'), (data ->> 'contactId'), "
            "(data ->> 'householdId')"
        },
        {"list": "listId"},
    )


def downgrade() -> None:
    op.drop_table("list_members")
    op.drop_table("lists")
