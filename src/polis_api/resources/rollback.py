"""Taking back a canvasser's knocks: POST /v1/campaigns/{id}/review/rollback
(docs/quality.md, Rollback).

One transaction: the canvasser's live interactions of the campaign in the window are
soft-deleted (tombstones in the change feed, like any delete), and each door that
followed one of them is put back, by the door rules of workflow/door.py, to its
latest remaining interaction, or to never contacted when none remains.

Locks: the interactions first (id order), then the door records (in the natural-key
order the outbox bulk uses, see ``lock_order`` on interactions). A PATCH of an
interaction also locks the interaction before its door, and a knock locks only its
door, so none of them can wait on the rollback while it waits on them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from polis_api.documents import repository as repo
from polis_api.documents.envelope import StoredDocument
from polis_api.documents.resource import WriteContext
from polis_api.documents.validation import validate_data
from polis_api.errors import FieldError, ValidationFailed
from polis_api.resources import review_sql
from polis_api.resources.door_records import DOOR_RECORDS, DoorRecordData
from polis_api.resources.interactions import INTERACTIONS
from polis_api.workflow.door import (
    apply_interaction,
    forget_interactions,
    last_interaction_timestamp,
    state_for_interaction,
)


@dataclass(frozen=True, slots=True)
class Rollback:
    campaign_id: uuid.UUID
    user_id: uuid.UUID
    window: review_sql.Window
    dry_run: bool


@dataclass(frozen=True, slots=True)
class Outcome:
    interactions: int
    doors: int


async def roll_back(ctx: WriteContext, rollback: Rollback, most: int) -> Outcome:
    """Delete the knocks and put their doors back; with ``dry_run``, only count."""
    customer_id = ctx.principal.customer_id
    leaving = await review_sql.canvasser_interactions(
        ctx.conn,
        customer_id,
        rollback.campaign_id,
        rollback.user_id,
        rollback.window,
        most + 1,
        lock=not rollback.dry_run,
    )
    if len(leaving) > most:
        raise ValidationFailed(
            f"The window holds more than {most} of this canvasser's interactions "
            "(POLIS_MAX_ROLLBACK_INTERACTIONS); nothing was changed. Roll back a "
            "shorter window, one after the other.",
            errors=[FieldError("/to", f"more than {most} interactions in [from, to)")],
        )
    doors = await _doors_put_back(ctx, rollback, leaving)
    if not rollback.dry_run:
        by, at = ctx.principal.user_id, ctx.now
        await repo.update_many(
            ctx.conn, INTERACTIONS.sql, [doc.deleted(by=by, at=at) for doc in leaving]
        )
        await repo.update_many(ctx.conn, DOOR_RECORDS.sql, doors)
    return Outcome(interactions=len(leaving), doors=len(doors))


async def _doors_put_back(
    ctx: WriteContext, rollback: Rollback, leaving: list[StoredDocument]
) -> list[StoredDocument]:
    """The new revisions of the doors that followed one of ``leaving``.

    A door that follows another interaction (a later knock, another canvasser's)
    already shows its latest remaining one, and is left alone.
    """
    campaign = str(rollback.campaign_id)
    pairs = sorted({str(doc.data["contactHouseholdId"]) for doc in leaving})
    records = await repo.fetch_many_by_natural_key(
        ctx.conn,
        DOOR_RECORDS.sql,
        ctx.principal.customer_id,
        [(campaign, pair) for pair in pairs],
        lock=not rollback.dry_run,
    )
    gone = {str(doc.id) for doc in leaving}
    followed = {
        key[1]: record for key, (record, _) in records.items() if _followed_id(record.data) in gone
    }
    if not followed:
        return []
    latest = await review_sql.latest_remaining(
        ctx.conn,
        ctx.principal.customer_id,
        rollback.campaign_id,
        sorted(followed),
        [doc.id for doc in leaving],
    )
    known = await review_sql.statuses(ctx.conn, ctx.principal.customer_id, _status_ids(latest))
    revised = []
    for pair, record in sorted(followed.items()):
        data = _put_back(record.data, latest.get(pair), known)
        valid = validate_data(DoorRecordData, data)
        revised.append(record.revised(data=valid, by=ctx.principal.user_id, at=ctx.now))
    return revised


def _followed_id(record: dict[str, Any]) -> str | None:
    last = record.get("lastInteraction")
    if not isinstance(last, dict) or last_interaction_timestamp(record) is None:
        return None
    followed = last.get("interactionId")
    return None if followed is None else str(followed)


def _status_ids(latest: dict[str, tuple[uuid.UUID, dict[str, Any]]]) -> set[uuid.UUID]:
    named = (data.get("statusId") for _, data in latest.values())
    return {uuid.UUID(str(status)) for status in named if status is not None}


def _put_back(
    record: dict[str, Any],
    remaining: tuple[uuid.UUID, dict[str, Any]] | None,
    known: review_sql.Statuses,
) -> dict[str, Any]:
    """The door as its latest remaining interaction leaves it (the rules a new knock
    follows), or as if never contacted."""
    if remaining is None:
        return forget_interactions(record)
    interaction_id, interaction = remaining
    status = known.named.get(str(interaction.get("statusId")))
    if status is None:
        # Its status was deleted since: the door takes the state the knock itself says.
        interaction = {key: value for key, value in interaction.items() if key != "statusId"}
    unavailable = bool(interaction.get("unavailable"))
    state = state_for_interaction(
        unavailable=unavailable,
        unavailable_reason=interaction.get("unavailableReason") if unavailable else None,
        successful=interaction.get("successful"),
        status=status,
    )
    default = None if status is not None else known.defaults.get(state)
    return apply_interaction(
        record, interaction, status, default, interaction_id=str(interaction_id)
    )
