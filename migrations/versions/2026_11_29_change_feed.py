"""The change feed (since=): every document row carries a commit-ordered position.

``txid`` is the id of the transaction that last wrote the row. A feed reads only
rows whose ``txid`` is below the oldest transaction still running, so nothing can
later appear behind a client's cursor; timestamps cannot promise that, because a
transaction may commit long after it read the clock.

The column is set by a trigger on insert and update, so every write path (single,
set-based bulk, door updates, soft deletes) moves the row without knowing it. The
index covers deleted rows too: tombstones must be found.

Rows that exist before this migration get position 1: "before anything since".

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen: the document tables as of this revision (later tables add their own).
TABLES = (
    "campaigns",
    "statuses",
    "households",
    "contact_households",
    "contact_household_campaigns",
    "interactions",
)

# A phone follows one campaign's doors and interactions: their feed walks an index
# by campaign, in change order (deleted rows included, like the main feed index).
CAMPAIGN_FEED_TABLES = ("contact_household_campaigns", "interactions")

FUNCTION = "polis_stamp_txid"


def upgrade() -> None:
    op.execute(
        f"CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN NEW.txid := pg_current_xact_id(); RETURN NEW; END $$"
    )
    for table in TABLES:
        # A constant default first: existing rows need no rewrite of the table.
        op.execute(f"ALTER TABLE {table} ADD COLUMN txid xid8 NOT NULL DEFAULT '1'")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN txid SET DEFAULT pg_current_xact_id()")
        op.execute(
            f"CREATE TRIGGER {table}_txid BEFORE INSERT OR UPDATE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()"
        )
        op.execute(f"CREATE INDEX ix_{table}_txid ON {table} (customer_id, txid, id)")
    for table in CAMPAIGN_FEED_TABLES:
        op.execute(
            f"CREATE INDEX ix_{table}_campaign_txid ON {table} "
            "(customer_id, (data ->> 'campaignId'), txid, id)"
        )


def downgrade() -> None:
    for table in CAMPAIGN_FEED_TABLES:
        op.execute(f"DROP INDEX ix_{table}_campaign_txid")
    for table in TABLES:
        op.execute(f"DROP TRIGGER {table}_txid ON {table}")
        op.execute(f"ALTER TABLE {table} DROP COLUMN txid")
    op.execute(f"DROP FUNCTION {FUNCTION}()")
