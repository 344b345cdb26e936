"""Status groups (a catalogue every tenant shares) and a campaign's chosen statuses.

``status_groups`` is a document table like the others (so reads, filters and the
change feed need nothing new), holding one fixed set of ten rows under the nil
customer id, which is no tenant's. In a Citus deployment it is a *reference table*
(``SELECT create_reference_table('status_groups')``): copied whole to every node,
so joining it with any tenant's rows stays local. Its rows are seeded here with
fixed ids and never written by the API.

``campaign_statuses`` links a tenant's statuses to a campaign. It is a plain link
table, not a document: a link has no data of its own to change, so it has no etag
and no revision history. Keyed ``(customer_id, campaign_id, status_id)``, so it
distributes by tenant with everything else.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "status_groups"
NIL = "00000000-0000-0000-0000-000000000000"
SEEDED = datetime(2026, 11, 29, tzinfo=UTC)
SEEDED_TEXT = "2026-11-29T00:00:00.000Z"

# (id, name, icon, pin colour, statusType, contactState); the icon colour is white.
GROUPS: tuple[tuple[str, str, str, str, str, str], ...] = (
    (
        "6fec493a-5a6d-4e82-86dd-322847042fd7",
        "Successful",
        "thumbs-up",
        "#27AE60",
        "successful",
        "contacted-available-successful",
    ),
    (
        "d1148f23-ef9e-4c6d-84ec-3658d3a52699",
        "Not Successful",
        "thumbs-down",
        "#E74C3C",
        "unsuccessful",
        "contacted-available-not-successful",
    ),
    (
        "876a5825-3773-4ce5-8d26-967ab73086a3",
        "Refused",
        "hand",
        "#C0392B",
        "unsuccessful",
        "contacted-unavailable-other",
    ),
    (
        "6d878703-4259-45b7-9ca6-75636cf3354e",
        "Appointment",
        "calendar",
        "#8E44AD",
        "appointment",
        "appointment",
    ),
    (
        "daac7137-ed74-4173-9725-8aaa0be10e9d",
        "Come Back",
        "clock",
        "#F39C12",
        "unavailable",
        "come-back",
    ),
    (
        "e94fdade-ec0b-4e64-8382-0deb19e8c5df",
        "Not Home",
        "home",
        "#F1C40F",
        "unavailable",
        "contacted-unavailable-not-home",
    ),
    (
        "1d1ac906-93fd-4301-919a-bd726cbbc79a",
        "Bad Contact Info",
        "alert",
        "#7F8C8D",
        "unavailable",
        "contacted-unavailable-other",
    ),
    (
        "b5507d78-d1bf-48a4-a445-b4a7355760f6",
        "Default",
        "map-marker",
        "#3498DB",
        "list",
        "not-contacted-normal",
    ),
    (
        "55f066c9-75f2-4cf6-9526-2a60ca1d4b80",
        "High Priority",
        "star",
        "#E67E22",
        "list",
        "not-contacted-high-priority",
    ),
    (
        "0247e808-04d7-4acd-9d83-9b09f73bb1d8",
        "Do Not Knock",
        "minus-circle",
        "#2C3E50",
        "list",
        "not-contacted-do-not-knock",
    ),
)


def _etag(envelope: dict[str, Any]) -> str:
    # A frozen copy of documents.etag.compute_etag over the canonical serialisation.
    body = json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = base64.b64encode(hashlib.sha1(body.encode(), usedforsecurity=False).digest())
    return f"{len(body.encode()):x}-{digest.decode()[:27]}"


def _row(group: tuple[str, str, str, str, str, str]) -> dict[str, Any]:
    group_id, name, icon, pin, status_type, state = group
    data = {
        "name": name,
        "icon": icon,
        "pinColor": pin,
        "iconColor": "#FFFFFF",
        "statusType": status_type,
        "contactState": state,
    }
    envelope = {
        "id": group_id,
        "data": data,
        "meta": {
            "created": SEEDED_TEXT,
            "modified": SEEDED_TEXT,
            "resource": "status-groups",
            "createdBy": NIL,
            "isDeleted": False,
            "modifiedBy": NIL,
        },
        "customerId": NIL,
        "securityGroupId": NIL,
    }
    return {
        "customer_id": NIL,
        "id": group_id,
        "security_group_id": NIL,
        "data": data,
        "created": SEEDED,
        "modified": SEEDED,
        "created_by": NIL,
        "modified_by": NIL,
        "etag": _etag(envelope),
    }


def upgrade() -> None:
    # The shape of documents.schema.document_table, frozen as of this revision.
    op.execute(
        f"""
        CREATE TABLE {TABLE} (
          customer_id uuid NOT NULL,
          id uuid NOT NULL,
          security_group_id uuid NOT NULL,
          data jsonb NOT NULL,
          created timestamptz NOT NULL,
          modified timestamptz NOT NULL,
          created_by uuid NOT NULL,
          modified_by uuid NOT NULL,
          is_deleted boolean NOT NULL DEFAULT false,
          etag text NOT NULL,
          txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
          CONSTRAINT pk_{TABLE} PRIMARY KEY (customer_id, id)
        )
        """
    )
    # The change feed's trigger and index, as migration 0007 gives every document table.
    op.execute(
        f"CREATE TRIGGER {TABLE}_txid BEFORE INSERT OR UPDATE ON {TABLE} "
        "FOR EACH ROW EXECUTE FUNCTION polis_stamp_txid()"
    )
    op.execute(f"CREATE INDEX ix_{TABLE}_txid ON {TABLE} (customer_id, txid, id)")
    for column in ("modified", "created"):
        op.execute(
            f"CREATE INDEX ix_{TABLE}_{column} ON {TABLE} (customer_id, {column}, id) "
            "WHERE NOT is_deleted"
        )
    seeded = sa.table(
        TABLE,
        sa.column("customer_id", UUID(as_uuid=False)),
        sa.column("id", UUID(as_uuid=False)),
        sa.column("security_group_id", UUID(as_uuid=False)),
        sa.column("data", JSONB),
        sa.column("created", sa.DateTime(timezone=True)),
        sa.column("modified", sa.DateTime(timezone=True)),
        sa.column("created_by", UUID(as_uuid=False)),
        sa.column("modified_by", UUID(as_uuid=False)),
        sa.column("etag", sa.Text),
    )
    op.bulk_insert(seeded, [_row(group) for group in GROUPS])

    op.create_table(
        "campaign_statuses",
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("campaign_id", UUID(as_uuid=True), nullable=False),
        sa.Column("status_id", UUID(as_uuid=True), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", UUID(as_uuid=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "customer_id", "campaign_id", "status_id", name="pk_campaign_statuses"
        ),
    )


def downgrade() -> None:
    op.drop_table("campaign_statuses")
    op.drop_table(TABLE)
