"""A campaign's statuses: the links and every SQL statement about them (SPEC §10).

A link is a row of ``campaign_statuses`` keyed ``(customer_id, campaign_id,
status_id)``, not a document: it has no data to edit, so no etag. A campaign's
statuses are its linked statuses that still exist; when there are none, every
status of its tenant (``workflow.campaign_statuses.campaign_allows``).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
from sqlalchemy import Column, DateTime, PrimaryKeyConstraint, Table
from sqlalchemy.dialects.postgresql import UUID

from polis_api.documents.schema import metadata
from polis_api.errors import invalid_field
from polis_api.resources.statuses import STATUSES
from polis_api.workflow.campaign_statuses import campaign_allows

TABLE = "campaign_statuses"

# The SQLAlchemy view of the link table (migration 0012 creates it); keyed by tenant
# first, like every table, so it distributes by tenant.
CAMPAIGN_STATUSES = Table(
    TABLE,
    metadata,
    Column("customer_id", UUID(as_uuid=True), nullable=False),
    Column("campaign_id", UUID(as_uuid=True), nullable=False),
    Column("status_id", UUID(as_uuid=True), nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("created_by", UUID(as_uuid=True), nullable=False),
    PrimaryKeyConstraint("customer_id", "campaign_id", "status_id"),
)

# Linked statuses that were deleted since drop out: a link never outlives its status.
LIVE_LINKED_SQL = f"""
    SELECT link.status_id::text FROM {TABLE} link
    JOIN {STATUSES.table} status
      ON status.customer_id = link.customer_id AND status.id = link.status_id
     AND NOT status.is_deleted
    WHERE link.customer_id = $1 AND link.campaign_id = $2
"""  # noqa: S608 (table names come from code; values are parameters)
LINK_SQL = f"""
    INSERT INTO {TABLE} (customer_id, campaign_id, status_id, created, created_by)
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true
"""  # noqa: S608
UNLINK_SQL = f"""
    DELETE FROM {TABLE} WHERE customer_id = $1 AND campaign_id = $2 AND status_id = $3
    RETURNING true
"""  # noqa: S608


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
    """Link the status; True when the link is new (ON CONFLICT: racing PUTs make one)."""
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
    """Remove the link; False when there was none."""
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
