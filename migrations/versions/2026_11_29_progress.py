"""Campaign progress tallies (docs/progress.md): counts kept by the database itself.

Counting 500k door records and their interactions on every dashboard refresh takes
seconds (bench/progress.py), so every write of a door record or an interaction adds
its contribution to ``progress_tallies`` in the same transaction, from a trigger:
the single routes, the bulk routes, door moves, soft deletes and any future writer
(a rollback) are all covered without knowing it.

A trigger only ever INSERTs a row of signed deltas (the old row's facts at -1, the
new row's at +1, netted): writers never update a shared counter row, so they never
wait for each other or deadlock on one. A reader sums the rows of its campaign; the
reader compacts them now and then (resources/progress_sql.py).

What a row counts is decided once, here, by ``progress_door_facts`` and
``progress_knock_facts``; the endpoint's exact path for a turf or a walk list runs the
very same functions over the live documents, so both paths count the same way.

Revision ID: 0017_progress
Revises: 0016
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0017_progress"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The key of a fact; a fact of one kind leaves the other kinds' columns null.
FACT_COLUMNS = (
    "customer_id uuid, campaign_id text, kind text, day date, user_id uuid, "
    "state text, status_id text, outcome text, question_id text, option_id text"
)
FACT_NAMES = (
    "customer_id, campaign_id, kind, day, user_id, state, status_id, outcome, "
    "question_id, option_id"
)

# One fact per live door record: its state and status.
DOOR_FACTS = """
CREATE FUNCTION progress_door_facts(d contact_household_campaigns)
RETURNS TABLE (FACT_COLUMNS) LANGUAGE sql STABLE AS $$
  SELECT d.customer_id, d.data ->> 'campaignId', 'door', NULL::date, NULL::uuid,
         d.data ->> 'state', d.data ->> 'statusId', NULL, NULL, NULL
  WHERE NOT d.is_deleted AND d.data ->> 'campaignId' IS NOT NULL
$$
""".replace("FACT_COLUMNS", FACT_COLUMNS)

# Per live interaction: one fact for its day (UTC; stored timestamps are always
# ...Z), one for its author, one per distinct option it answers. The outcome is what
# the knock says without a status; a status, when named, decides at read time.
KNOCK_FACTS = """
CREATE FUNCTION progress_knock_facts(i interactions)
RETURNS TABLE (FACT_COLUMNS) LANGUAGE sql STABLE AS $$
  SELECT i.customer_id, i.data ->> 'campaignId', k.kind,
         CASE WHEN k.kind = 'day' THEN left(i.data ->> 'timestamp', 10)::date END,
         CASE WHEN k.kind = 'canvasser' THEN i.created_by END,
         NULL, i.data ->> 'statusId',
         CASE WHEN (i.data ->> 'unavailable')::boolean THEN 'unavailable'
              WHEN (i.data ->> 'successful')::boolean THEN 'successful'
              ELSE 'unsuccessful' END,
         NULL, NULL
  FROM (VALUES ('day'), ('canvasser')) AS k(kind)
  WHERE NOT i.is_deleted AND i.data ->> 'campaignId' IS NOT NULL
  UNION ALL
  SELECT i.customer_id, i.data ->> 'campaignId', 'answer', NULL, NULL, NULL, NULL, NULL,
         r.key, named.option_id
  FROM jsonb_each(CASE WHEN jsonb_typeof(i.data #> '{survey,responses}') = 'object'
                       THEN i.data #> '{survey,responses}' ELSE '{}'::jsonb END) AS r(key, value),
  LATERAL (
    SELECT r.value ->> 'optionId' AS option_id WHERE jsonb_typeof(r.value) = 'object'
    UNION
    SELECT jsonb_array_elements_text(
      CASE WHEN jsonb_typeof(r.value -> 'optionIds') = 'array'
           THEN r.value -> 'optionIds' ELSE '[]'::jsonb END)
    WHERE jsonb_typeof(r.value) = 'object'
  ) AS named
  WHERE NOT i.is_deleted AND i.data ->> 'campaignId' IS NOT NULL
    AND named.option_id IS NOT NULL
$$
""".replace("FACT_COLUMNS", FACT_COLUMNS)

# Once per statement, over its transition tables: a set-based UPDATE of a thousand
# rows (a rollback) writes one netted delta per changed key, not a thousand. The
# rows a statement removes count -1, the rows it leaves +1; a key nothing counted
# changed nets to no row at all.
TALLY_TRIGGER = """
CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO progress_tallies ({names}, n)
    SELECT {names}, count(*) FROM (SELECT f.* FROM new_rows AS r, LATERAL {facts}(r) AS f) AS f
    GROUP BY {names};
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO progress_tallies ({names}, n)
    SELECT {names}, -count(*) FROM (SELECT f.* FROM old_rows AS r, LATERAL {facts}(r) AS f) AS f
    GROUP BY {names};
  ELSE
    INSERT INTO progress_tallies ({names}, n)
    SELECT {names}, sum(delta) FROM (
      SELECT f.*, -1 AS delta FROM old_rows AS r, LATERAL {facts}(r) AS f
      UNION ALL
      SELECT f.*, 1 AS delta FROM new_rows AS r, LATERAL {facts}(r) AS f
    ) AS change
    GROUP BY {names}
    HAVING sum(delta) <> 0;
  END IF;
  RETURN NULL;
END $$
"""

# PostgreSQL takes transition tables only on single-event triggers: one per event.
EVENTS = {
    "insert": "NEW TABLE AS new_rows",
    "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "delete": "OLD TABLE AS old_rows",
}

TRIGGERS = {
    "contact_household_campaigns": ("progress_tally_doors", "progress_door_facts"),
    "interactions": ("progress_tally_knocks", "progress_knock_facts"),
}


def upgrade() -> None:
    # No primary key: rows are anonymous deltas, only ever summed per campaign.
    op.execute(f"CREATE TABLE progress_tallies ({FACT_COLUMNS}, n bigint NOT NULL)")
    op.execute("ALTER TABLE progress_tallies ALTER COLUMN customer_id SET NOT NULL")
    # Every read is one campaign's rows.
    op.execute(
        "CREATE INDEX ix_progress_tallies_campaign ON progress_tallies (customer_id, campaign_id)"
    )
    op.execute(DOOR_FACTS)
    op.execute(KNOCK_FACTS)
    for table, (function, facts) in TRIGGERS.items():
        op.execute(TALLY_TRIGGER.format(function=function, names=FACT_NAMES, facts=facts))
        for event, tables in EVENTS.items():
            op.execute(
                f"CREATE TRIGGER {table}_progress_{event} AFTER {event.upper()} ON {table} "
                f"REFERENCING {tables} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )
        # What is already stored, counted once.
        op.execute(
            f"INSERT INTO progress_tallies ({FACT_NAMES}, n) "  # noqa: S608
            f"SELECT {FACT_NAMES}, count(*) FROM (SELECT f.* FROM {table} AS row, "
            f"LATERAL {facts}(row) AS f) AS facts GROUP BY {FACT_NAMES}"
        )


def downgrade() -> None:
    for table, (function, _facts) in TRIGGERS.items():
        for event in EVENTS:
            op.execute(f"DROP TRIGGER {table}_progress_{event} ON {table}")
        op.execute(f"DROP FUNCTION {function}()")
    op.execute("DROP FUNCTION progress_knock_facts(interactions)")
    op.execute("DROP FUNCTION progress_door_facts(contact_household_campaigns)")
    op.execute("DROP TABLE progress_tallies")
