"""Lists make a campaign's doors (docs/lists.md).

Every live member of a live list that a campaign names in ``data.lists`` has a door
record in that campaign. Two writes can break that, and both end here, inside their
own transaction: attaching lists to a campaign, and adding members to a list. Each
finds the missing doors in one statement and inserts them in one more (set-based,
whatever the list's size); doors already there keep their state.

Why nothing is missed when an attach and an add run at once: an add holds the list's
row lock (FOR UPDATE) from before it writes members until it commits, and an attach
takes a share lock on the lists it names before looking for members. Whichever comes
second waits for the first to commit, and its next statement (READ COMMITTED: a new
snapshot) sees the other's rows. The unique index on (campaign, contact-household)
with ON CONFLICT DO NOTHING keeps a door from being created twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

from polis_api.documents import repository as repo
from polis_api.documents.envelope import StoredDocument
from polis_api.documents.resource import WriteContext
from polis_api.documents.validation import validate_data
from polis_api.resources.door_records import DOOR_RECORDS, DoorRecordData
from polis_api.resources.lists import LIST_MEMBERS, LISTS
from polis_api.workflow.door import new_record

# The campaigns table (resources/campaigns.py imports this module, so not its name).
_CAMPAIGNS_TABLE = "campaigns"

# (campaign, contact-household) pairs on an attached, existing list without a live
# door; with several lists the strongest type wins. ``{scope}`` narrows the campaigns
# or the members; table names come from the declarations, values are parameters.
_MISSING_DOORS = f"""
SELECT c.id::text AS campaign_id,
       m.data ->> 'contactHouseholdId' AS contact_household_id,
       (array_agg(l.type ORDER BY CASE l.type WHEN 'do-not-knock' THEN 0
                                  WHEN 'high-priority' THEN 1 ELSE 2 END))[1] AS type
FROM {_CAMPAIGNS_TABLE} AS c
CROSS JOIN LATERAL (
  SELECT entry ->> 'listId' AS list_id, coalesce(entry ->> 'type', 'normal') AS type
  FROM jsonb_array_elements(CASE WHEN jsonb_typeof(c.data -> 'lists') = 'array'
                            THEN c.data -> 'lists' ELSE '[]'::jsonb END) AS entry
) AS l
JOIN {LISTS.table} AS li
  ON li.customer_id = c.customer_id AND li.id::text = l.list_id AND NOT li.is_deleted
JOIN {LIST_MEMBERS.table} AS m
  ON m.customer_id = c.customer_id AND (m.data ->> 'listId') = l.list_id AND NOT m.is_deleted
WHERE c.customer_id = $1 AND NOT c.is_deleted AND {{scope}}
  AND NOT EXISTS (
    SELECT 1 FROM {DOOR_RECORDS.table} AS d
    WHERE d.customer_id = c.customer_id AND NOT d.is_deleted
      AND (d.data ->> 'campaignId') = c.id::text
      AND (d.data ->> 'contactHouseholdId') = (m.data ->> 'contactHouseholdId'))
GROUP BY c.id, m.data ->> 'contactHouseholdId'
"""  # noqa: S608
_FOR_CAMPAIGN = _MISSING_DOORS.format(scope="c.id = $2")
_FOR_MEMBERS = _MISSING_DOORS.format(scope="(m.data ->> 'contactHouseholdId') = ANY($2::text[])")


async def doors_for_campaign(
    ctx: WriteContext, campaign_id: uuid.UUID, list_ids: Sequence[str]
) -> int:
    """After a campaign was written naming ``list_ids``: create its missing doors."""
    # Share locks, in id order (no deadlock between two attaches): wait for any add
    # to these lists to commit, and keep new adds out until this transaction ends.
    await ctx.conn.execute(
        f"SELECT 1 FROM {LISTS.table} WHERE customer_id = $1 AND id = ANY($2::uuid[]) "  # noqa: S608
        "ORDER BY id FOR SHARE",
        ctx.principal.customer_id,
        sorted({uuid.UUID(list_id) for list_id in list_ids}),
    )
    rows = await ctx.conn.fetch(_FOR_CAMPAIGN, ctx.principal.customer_id, campaign_id)
    return await _insert_doors(ctx, rows)


async def doors_for_members(ctx: WriteContext, contact_household_ids: Sequence[str]) -> int:
    """After members were added (under their list's row lock): create missing doors in
    every campaign that names a list they are on."""
    if not contact_household_ids:
        return 0
    ids = sorted(set(contact_household_ids))
    rows = await ctx.conn.fetch(_FOR_MEMBERS, ctx.principal.customer_id, ids)
    return await _insert_doors(ctx, rows)


async def _insert_doors(ctx: WriteContext, rows: Sequence[asyncpg.Record]) -> int:
    """One INSERT for every new door; the etags are the ones a single create computes."""
    by = ctx.principal.user_id
    documents = [
        StoredDocument(
            id=uuid.uuid4(),
            customer_id=ctx.principal.customer_id,
            security_group_id=ctx.principal.security_group_id,
            data=validate_data(
                DoorRecordData,
                new_record(row["campaign_id"], row["contact_household_id"], row["type"]),
            ),
            created=ctx.now,
            modified=ctx.now,
            created_by=by,
            modified_by=by,
        )
        for row in rows
    ]
    inserted = await repo.insert_many_new(ctx.conn, DOOR_RECORDS.sql, documents)
    return len(inserted)
