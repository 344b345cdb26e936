"""A campaign's status links get a change-feed position and a soft delete.

``GET /v1/campaigns/{campaignId}/statuses?since=`` must learn of every link and
unlink (docs/statuses.md). Each link row therefore records the transaction that
last wrote it (``txid``, stamped by the same trigger function as the document
tables) and an unlink only marks it ``is_deleted``: the row stays, so the
campaign's link version (the greatest ``txid`` over all its rows) never forgets
an unlink. Linking the same status again revives the row.

Existing rows get position 1 ("before anything since") and stay live.

``GET /v2/contacts/{id}/households?since=`` reads every association row of one
contact, dissociated ones included; the contact index covers live rows only, so
the feed gets an index of its own under ``contactId`` (tombstones included).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "campaign_statuses"
FUNCTION = "polis_stamp_txid"  # created by the change-feed migration (0007)
CONTACT_FEED_INDEX = "ix_contact_households_contact_txid"


def upgrade() -> None:
    op.execute(f"ALTER TABLE {TABLE} ADD COLUMN is_deleted boolean NOT NULL DEFAULT false")
    # A constant default first: existing rows need no rewrite of the table.
    op.execute(f"ALTER TABLE {TABLE} ADD COLUMN txid xid8 NOT NULL DEFAULT '1'")
    op.execute(f"ALTER TABLE {TABLE} ALTER COLUMN txid SET DEFAULT pg_current_xact_id()")
    op.execute(
        f"CREATE TRIGGER {TABLE}_txid BEFORE INSERT OR UPDATE ON {TABLE} "
        f"FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()"
    )
    op.execute(
        f"CREATE INDEX {CONTACT_FEED_INDEX} ON contact_households "
        "(customer_id, (data ->> 'contactId'), txid, id)"
    )


def downgrade() -> None:
    op.execute(f"DROP INDEX {CONTACT_FEED_INDEX}")
    # Unlinked rows were deleted before this revision: remove them again.
    op.execute("DELETE FROM campaign_statuses WHERE is_deleted")
    op.execute(f"DROP TRIGGER {TABLE}_txid ON {TABLE}")
    op.execute(f"ALTER TABLE {TABLE} DROP COLUMN txid")
    op.execute(f"ALTER TABLE {TABLE} DROP COLUMN is_deleted")
