"""Data quality (docs/quality.md): a canvasser's knocks in time order, and flags by value.

- ``ix_interactions_canvasser_time``: one canvasser's live knocks by ``timestamp``
  (the burst check reads the few around a new knock; a rollback reads a window).
- ``ix_interactions_canvasser_located``: the same, only knocks with a place (the speed
  check reads the nearest one before and after a new knock, however many knocks
  without a place lie between).
- ``ix_interactions_quality_flags``: ``/data/qualityFlags eq "burst"`` is a jsonb
  containment (``@>``), which a GIN index serves. It does not lead with
  ``customer_id`` (like the contacts' trigram indexes): a GIN index with the tenant as
  a ``btree_gin`` column costs the planner a pass over every entry of the tenant, so it
  was never chosen; flagged knocks are few, and the tenant is checked on the rows
  found. (It is not unique, so sharding by tenant needs nothing of it.)

Timestamps are stored in one fixed-width UTC form (``2018-07-17T18:40:53.526Z``), so
their text order is their time order.

Revision ID: 0017_quality
Revises: 0016
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0017_quality"
down_revision: str | None = "0017_progress"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = "WHERE NOT is_deleted"
LOCATED = (
    "AND (data -> 'location' ->> 'lat') IS NOT NULL AND (data -> 'location' ->> 'lng') IS NOT NULL"
)


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_interactions_canvasser_time ON interactions "
        f"(customer_id, created_by, (data ->> 'timestamp')) {LIVE}"
    )
    op.execute(
        "CREATE INDEX ix_interactions_canvasser_located ON interactions "
        f"(customer_id, created_by, (data ->> 'timestamp')) {LIVE} {LOCATED}"
    )
    op.execute(
        "CREATE INDEX ix_interactions_quality_flags ON interactions "
        f"USING gin ((data -> 'qualityFlags') jsonb_path_ops) {LIVE}"
    )


def downgrade() -> None:
    for name in ("quality_flags", "canvasser_located", "canvasser_time"):
        op.execute(f"DROP INDEX ix_interactions_{name}")
