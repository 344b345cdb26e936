"""The storage shape every document table shares.

Each resource has its own table of this shape, keyed ``(customer_id, id)`` so a
tenant's rows stay together and the schema can be distributed by tenant (Citus).
"""

from __future__ import annotations

import re

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.types import UserDefinedType

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Xid8(UserDefinedType[int]):
    """PostgreSQL's 64-bit transaction id: a row's commit-ordered change position."""

    cache_ok = True

    def get_col_spec(self, **kw: object) -> str:
        return "xid8"


# The trigger function every document table runs before insert and update, so
# ``txid`` always names the transaction that last wrote the row (migration 0007).
TXID_TRIGGER_FUNCTION = "polis_stamp_txid"


def document_table(name: str, *indexes: tuple[str, str], feeds_by: tuple[str, ...] = ()) -> Table:
    """A document table plus its sync indexes and the resource's own indexes.

    ``txid`` is the change feed's position (set by the ``TXID_TRIGGER_FUNCTION``
    trigger on every write); its index covers deleted rows, so tombstones are found.

    ``indexes`` are ``(suffix, SQL expression list)`` pairs; the expressions must be
    written exactly as ``filtering.to_sql`` emits them, or PostgreSQL won't use them.
    ``feeds_by`` names data fields clients follow the change feed by (a campaign's
    doors): each gets an index in change order under that field, tombstones included.
    """
    table = Table(
        name,
        metadata,
        Column("customer_id", UUID(as_uuid=True), nullable=False),
        Column("id", UUID(as_uuid=True), nullable=False),
        Column("security_group_id", UUID(as_uuid=True), nullable=False),
        Column("data", JSONB, nullable=False),
        Column("created", DateTime(timezone=True), nullable=False),
        Column("modified", DateTime(timezone=True), nullable=False),
        Column("created_by", UUID(as_uuid=True), nullable=False),
        Column("modified_by", UUID(as_uuid=True), nullable=False),
        Column("is_deleted", Boolean, nullable=False, server_default=text("false")),
        Column("etag", Text, nullable=False),
        Column("txid", Xid8(), nullable=False, server_default=text("pg_current_xact_id()")),
        PrimaryKeyConstraint("customer_id", "id"),
    )
    Index(f"ix_{name}_txid", table.c.customer_id, table.c.txid, table.c.id)
    live = text("NOT is_deleted")
    Index(
        f"ix_{name}_modified",
        table.c.customer_id,
        table.c.modified,
        table.c.id,
        postgresql_where=live,
    )
    Index(
        f"ix_{name}_created",
        table.c.customer_id,
        table.c.created,
        table.c.id,
        postgresql_where=live,
    )
    for suffix, expressions in indexes:
        Index(f"ix_{name}_{suffix}", text(expressions), postgresql_where=live)
    for field in feeds_by:
        suffix = re.sub(r"(?<!^)(?=[A-Z])", "_", field.removesuffix("Id")).lower()
        Index(
            f"ix_{name}_{suffix}_txid",
            text(f"customer_id, (data ->> '{field}'), txid, id"),
        )
    return table


tenants = Table(
    "tenants",
    metadata,
    Column("customer_id", UUID(as_uuid=True), primary_key=True),
    Column("created", DateTime(timezone=True), nullable=False, server_default=text("now()")),
)


idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("customer_id", UUID(as_uuid=True), nullable=False),
    Column("key", Text, nullable=False),
    Column("request_hash", Text, nullable=False),
    Column("status", Integer, nullable=False),
    Column("headers", JSONB, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    PrimaryKeyConstraint("customer_id", "key"),
)


rate_limits = Table(
    "rate_limits",
    metadata,
    Column("bucket", Text, nullable=False),
    Column("window_start", BigInteger, nullable=False),
    Column("count", Integer, nullable=False),
    PrimaryKeyConstraint("bucket", "window_start"),
    prefixes=["UNLOGGED"],
)
