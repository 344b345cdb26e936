"""Contact-household-campaign records: the state of each door in a campaign
(docs/api.md, Door records).

The rules live in ``workflow.door`` as pure functions; this module loads what they
need, applies them to the one locked row, and writes it back through the generic
mechanism (so etags, meta and soft delete behave as for every other document).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from pydantic import Field, StrictBool

from polis_api.documents import repository as repo
from polis_api.documents import service
from polis_api.documents.envelope import DataModel, StoredDocument, Timestamp
from polis_api.documents.geo import Geo, GeoProperty, Hop
from polis_api.documents.repository import Rendered
from polis_api.documents.resource import Resource, WriteContext
from polis_api.documents.validation import validate_data
from polis_api.errors import Conflict, PreconditionFailed
from polis_api.resources.assigned import NAMES_ASSIGNED_DOOR
from polis_api.resources.common import Text
from polis_api.workflow.door import StatusInfo, apply_status, new_record
from polis_api.workflow.states import ContactState, ListType


class Availability(DataModel):
    available: StrictBool | None = None
    unavailableReason: Text | None = None


class Reservation(DataModel):
    reserved: StrictBool = False
    walklistId: uuid.UUID | None = None
    # Set by walk lists (docs/turfs.md): past it the door counts as free again.
    expiresAt: Timestamp | None = None


class LastInteraction(DataModel):
    interactionId: uuid.UUID | None = None
    timestamp: Timestamp


class DoorRecordData(DataModel):
    campaignId: uuid.UUID | None = Field(default=None, description="Taken from the path.")
    contactHouseholdId: uuid.UUID | None = Field(
        default=None, description="Looked up from contactId and householdId."
    )
    contacted: StrictBool | None = Field(default=None, description="Follows the state.")
    successful: StrictBool | None = Field(default=None, description="Follows the state.")
    state: ContactState | None = None
    statusId: uuid.UUID | None = None
    type: ListType | None = None
    availability: Availability | None = None
    reservation: Reservation | None = None
    lastInteraction: LastInteraction | None = Field(
        default=None, description="Server-owned: the interaction the door follows."
    )


DOOR_RECORDS = Resource(
    name="contact-household-campaigns",
    prefix="/v1/contact-household-campaigns",
    table="contact_household_campaigns",
    visibility=NAMES_ASSIGNED_DOOR,
    data_model=DoorRecordData,
    natural_key=("campaignId", "contactHouseholdId"),
    routes=frozenset(),
    title="contact household campaign record",
    # A door is where its household is: the record names its contact-household, which
    # names the household (docs/geography.md).
    geo=Geo(
        via=(Hop("contact_households", "contactHouseholdId"), Hop("households", "householdId")),
        properties=(
            GeoProperty("state", "state"),
            GeoProperty("statusId", "statusId"),
            GeoProperty("pinColor", "pinColor", via=Hop("statuses", "statusId")),
        ),
    ),
)

# What a door becomes, given what it is; None means "leave it as it is".
Change = Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]


# Fields the server derives or owns; a PUT or bulk body's values for them are ignored.
SERVER_OWNED = frozenset({"contacted", "successful", "contactHouseholdId", "lastInteraction"})


async def find_record(
    conn: asyncpg.Connection, customer_id: uuid.UUID, campaign_id: str, contact_household_id: str
) -> Rendered | None:
    return await repo.fetch_by_natural_key(
        conn, DOOR_RECORDS.sql, customer_id, [campaign_id, contact_household_id]
    )


async def update_door(
    ctx: WriteContext,
    campaign_id: str,
    contact_household_id: str,
    change: Change,
    *,
    list_type: str | None = None,
    expected_etags: list[str] | None = None,
    create: bool = True,
) -> tuple[Rendered, bool] | None:
    """Apply ``change`` to the door's record under a row lock, creating it if absent.

    Returns the written record and whether it was created, or None when ``change``
    left the door alone (or there is no record and ``create`` is false). The etag
    check happens under the lock, so it and the write are one atomic step. Two
    writers creating the same door at once: one inserts, the other finds the row
    on its second pass and changes it under the lock.
    """
    key = (campaign_id, contact_household_id)
    for _ in range(2):
        found = await repo.fetch_for_write_by_natural_key(
            ctx.conn, DOOR_RECORDS.sql, ctx.principal.customer_id, key
        )
        if found is None and not create:
            return None
        if found is not None:
            revised = await revision_of(ctx, found, change, expected_etags)
            if revised is None:
                return None
            return await service.write_revision(ctx, DOOR_RECORDS, revised, found[1]), False
        data = await change(new_record(campaign_id, contact_household_id, list_type))
        if data is None:
            return None
        rendered, created = await service.create_from_data(
            ctx, DOOR_RECORDS, validate_data(DoorRecordData, data)
        )
        if created:
            return rendered, True
    raise Conflict("The door record changed too often while being written; retry.")


async def revision_of(
    ctx: WriteContext,
    found: tuple[StoredDocument, str],
    change: Change,
    expected_etags: list[str] | None = None,
) -> StoredDocument | None:
    """The door record ``change`` makes of ``found``, checked against the caller's
    etags; None when the change leaves it alone. Written under the row lock, or on
    the condition that the row still has ``found``'s etag."""
    current, etag = found
    if expected_etags is not None and "*" not in expected_etags and etag not in expected_etags:
        raise PreconditionFailed(etag)
    data = await change(current.data)
    if data is None:
        return None
    return current.revised(
        data=validate_data(DoorRecordData, data), by=ctx.principal.user_id, at=ctx.now
    )


def apply_put(
    record: dict[str, Any], changes: dict[str, Any], status: StatusInfo | None
) -> dict[str, Any]:
    """A door record after a PUT (or bulk item) of ``changes``: the rules decide the rest."""
    updated = {**record}
    for key in ("type", "availability", "reservation"):
        if key in changes:
            updated[key] = changes[key]
    if "statusId" in changes or "state" in changes:
        return apply_status(updated, status, explicit_state=changes.get("state"))
    if "type" in changes and not updated.get("contacted") and updated.get("statusId") is None:
        # A never-contacted door without a status shows its list's pin.
        return apply_status(updated, None)
    return updated
