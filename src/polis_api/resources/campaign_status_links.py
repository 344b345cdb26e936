"""A campaign's statuses: the links and every SQL statement about them (docs/statuses.md).

A link is a row of ``campaign_statuses`` keyed ``(customer_id, campaign_id,
status_id)``, not a document: it has no data to edit, so no etag. Unlinking marks
the row ``is_deleted`` and linking again revives it; every write stamps ``txid``,
so the campaign's statuses have an exact change feed (``feed_view``). A
campaign's statuses are its live links to statuses that still exist; when there
are none, every status of its tenant (``workflow.campaign_statuses.campaign_allows``).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
from sqlalchemy import Boolean, Column, DateTime, PrimaryKeyConstraint, Table, text
from sqlalchemy.dialects.postgresql import UUID

from polis_api.documents.repository import FeedView, document_json_sql
from polis_api.documents.schema import Xid8, metadata
from polis_api.errors import invalid_field
from polis_api.resources.statuses import STATUSES
from polis_api.workflow.campaign_statuses import campaign_allows

TABLE = "campaign_statuses"

# The SQLAlchemy view of the link table (migrations 0012 and 0015 create it); keyed
# by tenant first, like every table, so it distributes by tenant.
CAMPAIGN_STATUSES = Table(
    TABLE,
    metadata,
    Column("customer_id", UUID(as_uuid=True), nullable=False),
    Column("campaign_id", UUID(as_uuid=True), nullable=False),
    Column("status_id", UUID(as_uuid=True), nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("created_by", UUID(as_uuid=True), nullable=False),
    Column("is_deleted", Boolean, nullable=False, server_default=text("false")),
    Column("txid", Xid8(), nullable=False, server_default=text("pg_current_xact_id()")),
    PrimaryKeyConstraint("customer_id", "campaign_id", "status_id"),
)

# Linked statuses that were deleted since drop out: a link never outlives its status.
LIVE_LINKED_SQL = f"""
    SELECT link.status_id::text FROM {TABLE} link
    JOIN {STATUSES.table} status
      ON status.customer_id = link.customer_id AND status.id = link.status_id
     AND NOT status.is_deleted
    WHERE link.customer_id = $1 AND link.campaign_id = $2 AND NOT link.is_deleted
"""  # noqa: S608 (table names come from code; values are parameters)
# A new link, or an unlinked one revived; nothing (not new) when it is already live.
LINK_SQL = f"""
    INSERT INTO {TABLE} AS link (customer_id, campaign_id, status_id, created, created_by)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (customer_id, campaign_id, status_id) DO UPDATE
       SET is_deleted = false, created = excluded.created, created_by = excluded.created_by
     WHERE link.is_deleted
    RETURNING true
"""  # noqa: S608
UNLINK_SQL = f"""
    UPDATE {TABLE} SET is_deleted = true
    WHERE customer_id = $1 AND campaign_id = $2 AND status_id = $3 AND NOT is_deleted
    RETURNING true
"""  # noqa: S608


def feed_view(campaign_at: int) -> FeedView:
    """The change feed of the campaign (parameter ``campaign_at``)'s statuses.

    Every status of the tenant is an item. Which of them are the campaign's depends
    on all its links and on whether its linked statuses still exist, so the
    campaign's *links version* is the greatest ``txid`` of its link rows (live or
    unlinked) and of the statuses they name; an item's position is the greater of
    its own ``txid`` and that version. Any link, unlink or deletion of a linked
    status thus moves every item past every token issued before: the whole set comes
    again (exact, not minimal). An item is a tombstone when the status is deleted, or
    when the campaign has live links and none is to this status.
    """
    campaign = f"${campaign_at}::uuid"
    # ORDER BY ... LIMIT 1 rather than max(): PostgreSQL 15 has no max() for xid8.
    version = f"""
        SELECT greatest(link.txid, linked.txid) FROM {TABLE} link
        LEFT JOIN {STATUSES.table} linked
          ON linked.customer_id = link.customer_id AND linked.id = link.status_id
        WHERE link.customer_id = $1 AND link.campaign_id = {campaign}
        ORDER BY 1 DESC LIMIT 1
    """  # noqa: S608
    narrowed = f"EXISTS ({LIVE_LINKED_SQL.replace('$2', campaign)})"
    source = f"""(
        SELECT s.id, s.customer_id, s.security_group_id, s.data, s.created, s.modified,
               s.created_by, s.modified_by, s.etag,
               s.is_deleted OR (campaign.narrowed AND live.status_id IS NULL) AS is_deleted,
               greatest(s.txid, campaign.version) AS txid
        FROM {STATUSES.table} s
        CROSS JOIN (SELECT ({version}) AS version, {narrowed} AS narrowed) AS campaign
        LEFT JOIN {TABLE} live
          ON live.customer_id = s.customer_id AND live.campaign_id = {campaign}
         AND live.status_id = s.id AND NOT live.is_deleted
        WHERE s.customer_id = $1
    ) AS {STATUSES.table}"""  # noqa: S608
    return FeedView(source, document_json_sql(STATUSES.sql.resource))


async def linked_status_ids(
    conn: asyncpg.Connection, customer_id: uuid.UUID, campaign_id: uuid.UUID | str
) -> frozenset[str]:
    """The ids of the campaign's linked statuses that still exist (empty: none linked)."""
    rows = await conn.fetch(LIVE_LINKED_SQL, customer_id, _uuid(campaign_id))
    return frozenset(row[0] for row in rows)


async def link(
    conn: asyncpg.Connection,
    customer_id: uuid.UUID,
    campaign_id: uuid.UUID,
    status_id: uuid.UUID,
    by: uuid.UUID,
    at: datetime,
) -> bool:
    """Link the status; True when the link is new or revived after an unlink
    (ON CONFLICT: racing PUTs make one)."""
    created: bool | None = await conn.fetchval(
        LINK_SQL,
        customer_id,
        campaign_id,
        status_id,
        at,
        by,
    )
    return bool(created)


async def unlink(
    conn: asyncpg.Connection, customer_id: uuid.UUID, campaign_id: uuid.UUID, status_id: uuid.UUID
) -> bool:
    """Unlink (a soft delete: the feed must learn of it); False when not linked."""
    removed: bool | None = await conn.fetchval(
        UNLINK_SQL,
        customer_id,
        campaign_id,
        status_id,
    )
    return bool(removed)


async def require_allowed(
    conn: asyncpg.Connection,
    customer_id: uuid.UUID,
    campaign_id: uuid.UUID | str,
    status_id: str | None,
    field: str = "/data/statusId",
) -> None:
    """A door record may only take one of its campaign's statuses (400 naming ``field``)."""
    if status_id is None:
        return
    linked = await linked_status_ids(conn, customer_id, campaign_id)
    if not campaign_allows(linked, status_id):
        raise invalid_field(field, not_allowed_message(campaign_id, status_id))


def not_allowed_message(campaign_id: uuid.UUID | str, status_id: str) -> str:
    return (
        f"status {status_id} is not one of campaign {campaign_id}'s statuses "
        f"(GET /v1/campaigns/{campaign_id}/statuses lists them)"
    )


def _uuid(value: uuid.UUID | str) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(value)
