"""The door-record bulk endpoint, set-based (docs/api.md, Bulk routes).

A canvassing app uploads thousands of door statuses at once, so every step is one
statement whatever the size: check the items (campaign, contact-household pairs,
statuses), lock the existing records in key order, apply the pure door rules in
Python, then insert the new records and update the old ones in one statement each.
All or nothing: the caller's transaction holds it together.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg

from polis_api.documents import repository as repo
from polis_api.documents import service
from polis_api.documents.envelope import StoredDocument
from polis_api.documents.repository import Rendered
from polis_api.documents.resource import WriteContext
from polis_api.errors import Conflict, FieldError, ValidationFailed
from polis_api.filtering.to_sql import Params
from polis_api.resources import campaign_status_links as links
from polis_api.resources import references as refs
from polis_api.resources.contact_households import CONTACT_HOUSEHOLDS
from polis_api.resources.door_records import DOOR_RECORDS, SERVER_OWNED, apply_put
from polis_api.resources.statuses import STATUSES
from polis_api.workflow.campaign_statuses import campaign_allows
from polis_api.workflow.door import DoorRuleError, StatusInfo, check_list_type, new_record


@dataclass(frozen=True, slots=True)
class BulkItem:
    """One item as the route parsed it: the record's fields and the door it names."""

    data: dict[str, Any]
    contact_id: uuid.UUID
    household_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class DoorChange:
    pair: str  # the contact-household id
    changes: dict[str, Any]
    status: StatusInfo | None


async def plan(ctx: WriteContext, items: list[BulkItem]) -> tuple[str, list[DoorChange]]:
    """Check every item before writing any; each bad item is named by its index."""
    errors: list[FieldError] = []
    campaign_id = _one_campaign(items, errors)
    if campaign_id is not None:
        await refs.require_campaign(ctx.conn, ctx.principal, campaign_id, "/data/0/data/campaignId")
    keys = [(str(item.contact_id), str(item.household_id)) for item in items]
    pairs = await _pairs(ctx, keys)
    await _require_visible(ctx, pairs.values())
    statuses = await _statuses(ctx, items)
    allowed = await _campaign_statuses(ctx, campaign_id)
    changes = []
    for index, (item, key) in enumerate(zip(items, keys, strict=True)):
        pair = pairs.get(key)
        change = _checked(index, item, pair, statuses, errors)
        if change is not None and not campaign_allows(allowed, change.changes.get("statusId")):
            message = links.not_allowed_message(campaign_id or "", change.changes["statusId"])
            errors.append(FieldError(f"/data/{index}/data/statusId", message))
            change = None
        if change is not None:
            changes.append(change)
    if errors or campaign_id is None:
        bad = len({error.path.split("/")[2] for error in errors})
        raise ValidationFailed(f"{bad} item(s) are invalid; nothing was written.", errors=errors)
    return campaign_id, changes


def _one_campaign(items: list[BulkItem], errors: list[FieldError]) -> str | None:
    # In Polis every item names the same campaign; the first one named sets it.
    campaign_id = next((i.data.get("campaignId") for i in items if i.data.get("campaignId")), None)
    for index, item in enumerate(items):
        if item.data.get("campaignId") is None:
            errors.append(FieldError(f"/data/{index}/data/campaignId", "is required"))
        elif item.data["campaignId"] != campaign_id:
            message = f"every item must name the same campaign ({campaign_id})"
            errors.append(FieldError(f"/data/{index}/data/campaignId", message))
    return campaign_id


async def _pairs(ctx: WriteContext, keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The contact-household id of each (contactId, householdId) that is associated."""
    found = await repo.ids_by_natural_key(
        ctx.conn, CONTACT_HOUSEHOLDS.sql, ctx.principal.customer_id, sorted(set(keys))
    )
    return {(key[0], key[1]): str(pair) for key, pair in found.items()}


async def _require_visible(ctx: WriteContext, pairs: Iterable[str]) -> None:
    """A door the caller may not read (docs/visibility.md) may not be written either:
    the call answers 404 as the door's GET does, and writes nothing."""
    visible = CONTACT_HOUSEHOLDS.visible_to(ctx.principal)
    if visible is None:
        return
    wanted = sorted(set(pairs))
    bound = Params([ctx.principal.customer_id, wanted])
    rows = await ctx.conn.fetch(
        f"SELECT id::text FROM {CONTACT_HOUSEHOLDS.table} "  # noqa: S608
        f"WHERE customer_id = $1 AND id = ANY($2::uuid[]) AND {visible.where(bound)}",
        *bound.values,
    )
    hidden = sorted(set(wanted) - {row[0] for row in rows})
    if hidden:
        raise service.not_found(CONTACT_HOUSEHOLDS, uuid.UUID(hidden[0]))


async def _statuses(ctx: WriteContext, items: list[BulkItem]) -> dict[str, StatusInfo]:
    named = {item.data["statusId"] for item in items if item.data.get("statusId")}
    found = await repo.fetch_data_many(
        ctx.conn, STATUSES.sql, ctx.principal.customer_id, map(uuid.UUID, named)
    )
    return {str(i): StatusInfo(str(i), str(data["contactState"])) for i, data in found.items()}


async def _campaign_statuses(ctx: WriteContext, campaign_id: str | None) -> frozenset[str]:
    if campaign_id is None:
        return frozenset()
    return await links.linked_status_ids(ctx.conn, ctx.principal.customer_id, campaign_id)


# What an item's data holds besides the changes: fields the server owns, the campaign.
_NOT_CHANGES = SERVER_OWNED | {"campaignId"}


def _checked(
    index: int,
    item: BulkItem,
    pair: str | None,
    statuses: dict[str, StatusInfo],
    errors: list[FieldError],
) -> DoorChange | None:
    changes = {k: v for k, v in item.data.items() if k not in _NOT_CHANGES}
    status_id = changes.get("statusId")
    status = statuses.get(status_id) if status_id is not None else None
    before = len(errors)
    if pair is None:
        message = f"contact {item.contact_id} is not associated with household {item.household_id}"
        errors.append(FieldError(f"/data/{index}/params", message))
    if status_id is not None and status is None:
        message = f"no status with id {status_id} in your tenant"
        errors.append(FieldError(f"/data/{index}/data/statusId", message))
    if status is not None and changes.get("state") not in (None, status.contact_state):
        message = f"status {status.id} has contactState {status.contact_state}"
        errors.append(FieldError(f"/data/{index}/data/state", message))
    try:
        check_list_type(changes.get("type"))
    except DoorRuleError as exc:
        errors.append(FieldError(f"/data/{index}/data/type", str(exc)))
    if len(errors) > before or pair is None:
        return None
    return DoorChange(pair, changes, status)


# A bulk that loses a race to create a door tries again this often before answering 409.
_ATTEMPTS = 3


class _LostRace(Exception):
    """A concurrent request created some of the same doors after we looked."""


async def write(ctx: WriteContext, campaign_id: str, plan: list[DoorChange]) -> list[Rendered]:
    """Apply the changes in input order (repeats of a door build on each other).

    Two bulks creating the same new doors race on the unique index: the loser's insert
    waits for the winner's commit and then fails. Its attempt is undone (a savepoint)
    and made again, now finding the winner's doors and updating them, so both
    requests succeed, one after the other.
    """
    for _ in range(_ATTEMPTS):
        try:
            async with ctx.conn.transaction():
                return await _write_once(ctx, campaign_id, plan)
        except _LostRace:
            continue
    raise Conflict(
        "Other requests kept creating these door records at the same moment; "
        "nothing was written. Retry the request.",
        headers={"Retry-After": "1"},
    )


async def _write_once(
    ctx: WriteContext, campaign_id: str, plan: list[DoorChange]
) -> list[Rendered]:
    keys = sorted({(campaign_id, change.pair) for change in plan})
    existing = await repo.fetch_many_by_natural_key(
        ctx.conn, DOOR_RECORDS.sql, ctx.principal.customer_id, keys, lock=True
    )
    records = {key[1]: found[0].data for key, found in existing.items()}
    for change in plan:
        record = records.get(change.pair) or new_record(
            campaign_id, change.pair, change.changes.get("type")
        )
        records[change.pair] = apply_put(record, change.changes, change.status)
    documents = _documents(ctx, campaign_id, records, existing)
    etags = {pair: doc.etag(DOOR_RECORDS.name) for pair, doc in documents.items()}
    # New doors in key order, as the existing ones were locked: two bulks creating the
    # same doors wait for each other on the unique index instead of deadlocking.
    new_pairs = sorted(pair for pair in records if (campaign_id, pair) not in existing)
    try:
        bodies = await repo.insert_many_rendered(
            ctx.conn,
            DOOR_RECORDS.sql,
            [documents[pair] for pair in new_pairs],
            [etags[pair] for pair in new_pairs],
            skip_taken=False,  # a door taken meanwhile fails the attempt: no per-row checks
        )
    except asyncpg.UniqueViolationError as exc:
        raise _LostRace from exc
    old_pairs = [pair for pair in records if (campaign_id, pair) in existing]
    updated = await repo.update_many_rendered(
        ctx.conn,
        DOOR_RECORDS.sql,
        [documents[pair] for pair in old_pairs],
        [etags[pair] for pair in old_pairs],
    )
    bodies.update(updated)
    # Each item answers with its door as the call left it (repeats share the last state).
    return [Rendered(bodies[documents[c.pair].id], etags[c.pair]) for c in plan]


def _documents(
    ctx: WriteContext,
    campaign_id: str,
    records: dict[str, dict[str, Any]],
    existing: dict[tuple[str, ...], tuple[StoredDocument, str]],
) -> dict[str, StoredDocument]:
    by = ctx.principal.user_id
    documents = {}
    for pair, data in records.items():
        found = existing.get((campaign_id, pair))
        documents[pair] = (
            found[0].revised(data=data, by=by, at=ctx.now)
            if found is not None
            else StoredDocument(
                id=uuid.uuid4(),
                customer_id=ctx.principal.customer_id,
                security_group_id=ctx.principal.security_group_id,
                data=data,
                created=ctx.now,
                modified=ctx.now,
                created_by=by,
                modified_by=by,
            )
        )
    return documents
