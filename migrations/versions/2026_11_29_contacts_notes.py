"""Contacts and notes: the people behind the doors, and what canvassers wrote about them.

Both are document tables of the usual shape, with the change feed's ``txid`` column,
trigger and index from the start (see 0007).

Contacts are deduplicated by the database, not by a read-then-write in Python, so
concurrent creates cannot slip past each other. Two partial unique indexes lead with
``customer_id``:

- ``externalId``: one live contact per external id;
- the full name (five parts, trimmed, lower case) with ``primaryHouseholdId``, among
  live contacts without an external id (two people of the same name in one household
  can still be told apart by their external ids). A contact without a household has
  a NULL there and never collides.

Name search (``like``) is served by trigram indexes on the exact expressions the
filter compiler emits for the name parts.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = "WHERE NOT is_deleted"
TXID_FUNCTION = "polis_stamp_txid"  # created by 0007

NAME_PARTS = ("title", "given", "middlename", "surname", "suffix")
# Frozen copy of resources.contacts.FULL_NAME_SQL: the unique index must keep its shape.
FULL_NAME = (
    "ARRAY["
    + ", ".join(
        f"lower(btrim(coalesce(data #>> '{{profile,name,anglican,{part}}}', '')))"
        for part in NAME_PARTS
    )
    + "]"
)


def name_part(part: str) -> str:
    # As filtering.to_sql emits a nested text path, so `like` can use the index.
    return f"(data -> 'profile' -> 'name' -> 'anglican' ->> '{part}')"


def create_document_table(name: str, indexes: dict[str, str]) -> None:
    # A frozen copy of documents.schema.document_table, with the change feed's column.
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
    # SQLAlchemy has no xid8 type; the column is added in SQL, as 0007 did.
    op.execute(f"ALTER TABLE {name} ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id()")
    op.execute(
        f"CREATE TRIGGER {name}_txid BEFORE INSERT OR UPDATE ON {name} "
        f"FOR EACH ROW EXECUTE FUNCTION {TXID_FUNCTION}()"
    )
    op.execute(f"CREATE INDEX ix_{name}_txid ON {name} (customer_id, txid, id)")
    indexes = {
        "modified": "customer_id, modified, id",
        "created": "customer_id, created, id",
        **indexes,
    }
    for suffix, expressions in indexes.items():
        op.execute(f"CREATE INDEX ix_{name}_{suffix} ON {name} ({expressions}) {LIVE}")


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    create_document_table(
        "contacts",
        {"primary_household": "customer_id, (data ->> 'primaryHouseholdId'), id"},
    )
    op.execute(
        "CREATE UNIQUE INDEX uq_contacts_external_id ON contacts "
        f"(customer_id, (data ->> 'externalId')) {LIVE}"
    )
    op.execute(
        "CREATE UNIQUE INDEX uq_contacts_name_household ON contacts "
        f"(customer_id, ({FULL_NAME}), (data ->> 'primaryHouseholdId')) "
        f"{LIVE} AND (data ->> 'externalId') IS NULL"
    )
    for part in ("surname", "given"):
        op.execute(
            f"CREATE INDEX ix_contacts_{part}_trgm ON contacts "
            f"USING gin ({name_part(part)} gin_trgm_ops) {LIVE}"
        )
    create_document_table("notes", {"contact": "customer_id, (data ->> 'contactId'), id"})


def downgrade() -> None:
    op.drop_table("notes")
    op.drop_table("contacts")
    # pg_trgm stays: other objects may have come to use it.
