"""Surveys with every past version, and segments that choose a survey for a contact.

``survey_versions`` keeps each write of a survey (keyed by tenant, survey and
version number). A segment's ``precedence`` is unique among the live segments of
one campaign: a partial unique index says so, and a deleted segment frees its
place.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = "WHERE NOT is_deleted"
TXID_FUNCTION = "polis_stamp_txid"  # created by 0007


def create_document_table(name: str, indexes: dict[str, str], feeds_by: dict[str, str]) -> None:
    """A frozen copy of documents.schema.document_table as of this revision."""
    op.execute(
        f"""
        CREATE TABLE {name} (
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
          CONSTRAINT pk_{name} PRIMARY KEY (customer_id, id)
        )
        """
    )
    op.execute(
        f"CREATE TRIGGER {name}_txid BEFORE INSERT OR UPDATE ON {name} "
        f"FOR EACH ROW EXECUTE FUNCTION {TXID_FUNCTION}()"
    )
    # The change feed's index covers deleted rows: tombstones must be found.
    op.execute(f"CREATE INDEX ix_{name}_txid ON {name} (customer_id, txid, id)")
    op.execute(f"CREATE INDEX ix_{name}_modified ON {name} (customer_id, modified, id) {LIVE}")
    op.execute(f"CREATE INDEX ix_{name}_created ON {name} (customer_id, created, id) {LIVE}")
    for suffix, expressions in indexes.items():
        op.execute(f"CREATE INDEX ix_{name}_{suffix} ON {name} ({expressions}) {LIVE}")
    for suffix, field in feeds_by.items():
        op.execute(
            f"CREATE INDEX ix_{name}_{suffix}_txid ON {name} "
            f"(customer_id, (data ->> '{field}'), txid, id)"
        )


def upgrade() -> None:
    create_document_table(
        "surveys",
        {"campaign": "customer_id, (data ->> 'campaignId'), id"},
        {"campaign": "campaignId"},
    )
    op.execute(
        """
        CREATE TABLE survey_versions (
          customer_id uuid NOT NULL,
          survey_id uuid NOT NULL,
          version integer NOT NULL,
          security_group_id uuid NOT NULL,
          data jsonb NOT NULL,
          created timestamptz NOT NULL,
          modified timestamptz NOT NULL,
          created_by uuid NOT NULL,
          modified_by uuid NOT NULL,
          etag text NOT NULL,
          CONSTRAINT pk_survey_versions PRIMARY KEY (customer_id, survey_id, version)
        )
        """
    )
    create_document_table(
        "segments",
        {
            "campaign": "customer_id, (data ->> 'campaignId'), id",
            "survey": "customer_id, (data ->> 'surveyId'), id",
        },
        {"campaign": "campaignId"},
    )
    # Partial: a deleted segment frees its precedence for a new one.
    op.execute(
        "CREATE UNIQUE INDEX uq_segments_precedence ON segments "
        f"(customer_id, (data ->> 'campaignId'), (data ->> 'precedence')) {LIVE}"
    )


def downgrade() -> None:
    for name in ("segments", "survey_versions", "surveys"):
        op.execute(f"DROP TABLE {name}")
