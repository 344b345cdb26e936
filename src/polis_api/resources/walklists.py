"""Walk lists — /v1/walklists: a canvasser's doors, in walk order, held for a while
(docs/turfs.md).

A walk list is created by ``walklist_routes`` (it chooses and reserves the doors);
PATCH and DELETE are the standard ones, and these hooks keep the doors right: the
fields that say which doors are held, and until when, are the server's; closing or
deleting a list frees its doors in the same transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StrictInt

from polis_api.documents import repository as repo
from polis_api.documents.envelope import DataModel, StoredDocument, Timestamp
from polis_api.documents.resource import DocumentHooks, Resource, WriteContext
from polis_api.documents.validation import validate_data
from polis_api.errors import invalid_field
from polis_api.resources import door_places
from polis_api.resources.common import NonEmptyText
from polis_api.resources.door_records import DOOR_RECORDS, DoorRecordData

OPEN: Literal["open"] = "open"
CLOSED: Literal["closed"] = "closed"


class Near(DataModel):
    lat: Annotated[float, Field(strict=True, ge=-90, le=90)]
    lng: Annotated[float, Field(strict=True, ge=-180, le=180)]


class WalkListData(DataModel):
    campaignId: uuid.UUID
    name: NonEmptyText
    assigneeId: uuid.UUID = Field(description="The `sub` of the user who walks the list.")
    turfId: uuid.UUID | None = Field(
        default=None, description="Create from a turf: the turf's free doors."
    )
    near: Near | None = Field(
        default=None, description="Create from a place: the `size` nearest free doors."
    )
    size: StrictInt | None = Field(
        default=None, ge=1, description="With `near`: how many doors (POLIS_MAX_WALKLIST_DOORS)."
    )
    doors: list[uuid.UUID] | None = Field(
        default=None,
        description="Contact-household ids in walk order. On create: the doors to hold "
        "(reordered into a walk); otherwise set by the server.",
    )
    status: Literal["open", "closed"] = OPEN
    expiresAt: Timestamp | None = Field(
        default=None, description="Read-only: when the reservations run out (renew extends)."
    )


# What the server decides at create, renew and release; a PATCH may not change them.
FIXED_ON_PATCH = ("campaignId", "turfId", "near", "size", "doors", "expiresAt")


class WalkListHooks(DocumentHooks):
    server_fields = frozenset({"doors", "expiresAt"})

    async def prepare(
        self, ctx: WriteContext, data: dict[str, Any], previous: dict[str, Any] | None
    ) -> dict[str, Any]:
        if previous is None:
            return data  # walklist_routes built it
        for field in FIXED_ON_PATCH:
            if data.get(field) != previous.get(field):
                raise invalid_field(
                    f"/data/{field}",
                    "is set when the walk list is made; use renew or release, or make a "
                    "new walk list",
                )
        if previous.get("status") == CLOSED and data.get("status") == OPEN:
            raise invalid_field(
                "/data/status", "a closed walk list stays closed: its doors may be taken"
            )
        return data

    async def after_write(self, ctx: WriteContext, document: StoredDocument) -> None:
        if document.is_deleted or document.data.get("status") == CLOSED:
            await free_doors(ctx, document)


async def free_doors(ctx: WriteContext, walklist: StoredDocument) -> int:
    """Write ``reserved: false`` on every door this walk list still holds."""
    return await set_reservations(ctx, walklist, None)


async def set_reservations(
    ctx: WriteContext, walklist: StoredDocument, expires_at: datetime | None
) -> int:
    """Hold (until ``expires_at``) or, with None, free the doors the list still holds.

    A door whose lease ran out and that another list took since is that list's now,
    and is left alone.
    """
    doors = await door_places.lock_doors(
        ctx.conn,
        ctx.principal.customer_id,
        str(walklist.data["campaignId"]),
        walklist.data.get("doors") or [],
    )
    mine = [door for door in doors.values() if door.held_by == str(walklist.id)]
    await write_reservations(ctx, mine, walklist.id, expires_at)
    return len(mine)


async def write_reservations(
    ctx: WriteContext,
    doors: list[door_places.PlacedDoor],
    walklist_id: uuid.UUID,
    expires_at: datetime | None,
) -> None:
    """New revisions of the (locked) door records: new etag, modified and txid, as any
    door write; one statement for all of them."""
    reservation: dict[str, Any] = (
        {"reserved": False}
        if expires_at is None
        else {"reserved": True, "walklistId": str(walklist_id), "expiresAt": expires_at}
    )
    revised = [
        door.record.revised(
            data=validate_data(DoorRecordData, {**door.record.data, "reservation": reservation}),
            by=ctx.principal.user_id,
            at=ctx.now,
        )
        for door in doors
    ]
    await repo.update_many(ctx.conn, DOOR_RECORDS.sql, revised)


WALKLISTS = Resource(
    name="walklists",
    title="walk list",
    prefix="/v1/walklists",
    table="walklists",
    data_model=WalkListData,
    hooks=WalkListHooks(),
    # Create is walklist_routes' own (it reserves the doors).
    routes=frozenset({"retrieve", "patch", "delete", "list"}),
    patch_example=[{"op": "replace", "path": "/status", "value": "closed"}],
)
