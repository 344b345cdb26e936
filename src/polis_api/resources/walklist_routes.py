"""Making walk lists and their leases: POST /v1/walklists, .../renew, .../release.

A create chooses its doors in one of three ways (a turf's free doors, the ``size``
free doors nearest a place, or explicit ``doors``), orders them into a walk, and
reserves each one on its door record, all in one transaction. Two creates never get
the same door: choosing by place locks candidate rows with FOR UPDATE SKIP LOCKED
(a door another create is taking is passed over), and explicit doors are locked in
contact-household order and refused with 409 when another live lease holds them.

No ``from __future__ import annotations``: FastAPI reads these signatures at runtime.
"""

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response

from polis_api.auth import Principal, require
from polis_api.config import Settings
from polis_api.deps import WriteConnection
from polis_api.documents import repository as repo
from polis_api.documents import service
from polis_api.documents.envelope import CreateBody, StoredDocument, utc_now_ms
from polis_api.documents.repository import Rendered
from polis_api.documents.resource import WriteContext
from polis_api.documents.responses import DocumentOut, document_response, problem_responses
from polis_api.documents.validation import dump_data, validate_data
from polis_api.errors import Conflict, FieldError, ValidationFailed, invalid_field
from polis_api.resources import door_places
from polis_api.resources import references as refs
from polis_api.resources.turfs import TURFS
from polis_api.resources.walklists import (
    CLOSED,
    OPEN,
    WALKLISTS,
    WalkListData,
    set_reservations,
    write_reservations,
)
from polis_api.workflow.polygons import check_polygon
from polis_api.workflow.walk_order import walk_order

CanInsert = Annotated[Principal, Depends(require(WALKLISTS.permission("insert")))]
CanModify = Annotated[Principal, Depends(require(WALKLISTS.permission("modify")))]

router = APIRouter(prefix=WALKLISTS.prefix, tags=[WALKLISTS.label])
Out = DocumentOut[WalkListData]

EXAMPLES = {
    "near": {
        "summary": "The 25 free doors nearest a canvasser",
        "value": {
            "data": {
                "campaignId": "61fbfbaa-5de8-4d17-ac2b-c47f2376265a",
                "name": "Saturday morning, Maria",
                "assigneeId": "0c5d7a8e-3b1f-4e2a-9c4d-5e6f7a8b9c0d",
                "near": {"lat": 33.7748, "lng": -84.2963},
                "size": 25,
            }
        },
    },
    "turf": {
        "summary": "Every free door of a turf",
        "value": {
            "data": {
                "campaignId": "61fbfbaa-5de8-4d17-ac2b-c47f2376265a",
                "name": "Oakhurst north",
                "assigneeId": "0c5d7a8e-3b1f-4e2a-9c4d-5e6f7a8b9c0d",
                "turfId": "7d0e1f2a-3b4c-4d5e-8f6a-7b8c9d0e1f2a",
            }
        },
    },
}


@router.post(
    "",
    status_code=201,
    summary="Make a walk list and reserve its doors",
    description=(
        "Give exactly one of `turfId` (the turf's free doors), `near` with `size` (the "
        "`size` free doors nearest that place) or `doors` (contact-household ids that have "
        "a door record in the campaign). The server orders the doors into a walk (nearest "
        "neighbour), reserves each door record (`reservation: {reserved, walklistId, "
        "expiresAt}`) for POLIS_RESERVATION_HOURS and sets `expiresAt`. A door under "
        "another live reservation is never taken: by place it is passed over, named in "
        "`doors` it is a 409 listing the held doors. At most POLIS_MAX_WALKLIST_DOORS doors."
    ),
    responses={201: {"model": Out}, **problem_responses(400, 401, 403, 409, 413, 415)},
)
async def create_walklist(
    request: Request,
    principal: CanInsert,
    conn: WriteConnection,
    body: Annotated[CreateBody[WalkListData], Body(openapi_examples=EXAMPLES)],
) -> Response:
    service.check_envelope(body, principal)
    settings: Settings = request.app.state.settings
    ctx = WriteContext(conn, principal, utc_now_ms())
    data = dump_data(body.data)
    await refs.require_campaign(conn, principal, data["campaignId"], "/data/campaignId")
    if data.get("status", OPEN) != OPEN:
        raise invalid_field("/data/status", "a walk list is made open")
    doors, start = await _choose_doors(ctx, data, settings)
    walklist_id = body.id or uuid.uuid4()
    expires_at = ctx.now + _lease(settings)
    await write_reservations(ctx, doors, walklist_id, expires_at)
    places = [(door.contact_household_id, _place(door)) for door in doors]
    data = {
        **data,
        "status": OPEN,
        "doors": walk_order(places, start),
        "expiresAt": expires_at,
    }
    rendered, created = await service.create_from_data(
        ctx,
        WALKLISTS,
        validate_data(WalkListData, data),
        doc_id=walklist_id,
        security_group_id=body.securityGroupId,
    )
    return document_response(rendered, 201 if created else 200)


@router.post(
    "/{id}/renew",
    summary="Extend the walk list's lease on its doors",
    description=(
        "Sets `expiresAt` POLIS_RESERVATION_HOURS from now on the walk list and on every "
        "door it still holds (an expired door another list took meanwhile stays with that "
        "list). A closed walk list cannot be renewed (409)."
    ),
    responses={200: {"model": Out}, **problem_responses(400, 401, 403, 404, 409)},
)
async def renew(
    id: uuid.UUID, request: Request, principal: CanModify, conn: WriteConnection
) -> Response:
    ctx = WriteContext(conn, principal, utc_now_ms())
    walklist, etag = await _lock(ctx, id)
    if walklist.data.get("status") != OPEN:
        raise Conflict(f"Walk list {id} is closed; make a new one.")
    expires_at = ctx.now + _lease(request.app.state.settings)
    await set_reservations(ctx, walklist, expires_at)
    data = validate_data(WalkListData, {**walklist.data, "expiresAt": expires_at})
    revised = walklist.revised(data=data, by=principal.user_id, at=ctx.now)
    return document_response(await service.write_revision(ctx, WALKLISTS, revised, etag))


@router.post(
    "/{id}/release",
    summary="Free the walk list's doors and close it",
    description=(
        "Every door the walk list still holds gets `reservation.reserved: false`, and the "
        "list's status becomes `closed` (as a PATCH of the status would). Releasing a "
        "closed list changes nothing."
    ),
    responses={200: {"model": Out}, **problem_responses(400, 401, 403, 404)},
)
async def release(id: uuid.UUID, principal: CanModify, conn: WriteConnection) -> Response:
    ctx = WriteContext(conn, principal, utc_now_ms())
    walklist, etag = await _lock(ctx, id)
    if walklist.data.get("status") == CLOSED:
        return document_response(await service.get_document(conn, WALKLISTS, principal, id))
    revised = walklist.revised(
        data={**walklist.data, "status": CLOSED}, by=principal.user_id, at=ctx.now
    )
    # The hook's after_write frees the doors, as for a PATCH to closed.
    rendered: Rendered = await service.write_revision(ctx, WALKLISTS, revised, etag)
    return document_response(rendered)


async def _lock(ctx: WriteContext, walklist_id: uuid.UUID) -> tuple[StoredDocument, str]:
    found = await repo.fetch_for_write(
        ctx.conn, WALKLISTS.sql, ctx.principal.customer_id, walklist_id
    )
    if found is None:
        raise service.not_found(WALKLISTS, walklist_id)
    return found


def _lease(settings: Settings) -> timedelta:
    return timedelta(hours=settings.reservation_hours)


def _place(door: door_places.PlacedDoor) -> tuple[float, float] | None:
    return None if door.lng is None or door.lat is None else (door.lng, door.lat)


# --- choosing the doors --------------------------------------------------------------

Start = tuple[float, float] | None


async def _choose_doors(
    ctx: WriteContext, data: dict[str, Any], settings: Settings
) -> tuple[list[door_places.PlacedDoor], Start]:
    """The locked, free doors the new list gets, and where its walk starts."""
    given = [field for field in ("doors", "near", "turfId") if data.get(field) is not None]
    if len(given) != 1:
        raise ValidationFailed(
            "Give exactly one of /data/doors, /data/near (with /data/size) or /data/turfId "
            f"to choose the walk list's doors; got {len(given) or 'none'}.",
            errors=[FieldError(path=f"/data/{field}", message="choose one") for field in given],
        )
    if data.get("size") is not None and given != ["near"]:
        raise invalid_field("/data/size", "goes with /data/near")
    limit = settings.max_walklist_doors
    campaign_id = str(data["campaignId"])
    if given == ["doors"]:
        return await _explicit_doors(ctx, campaign_id, data["doors"], limit), None
    if given == ["near"]:
        return await _nearest_doors(ctx, campaign_id, data, limit)
    return await _turf_doors(ctx, campaign_id, data["turfId"], limit)


async def _explicit_doors(
    ctx: WriteContext, campaign_id: str, doors: list[str], limit: int
) -> list[door_places.PlacedDoor]:
    if not doors:
        raise invalid_field("/data/doors", "must name at least one door")
    if len(doors) > limit:
        raise invalid_field(
            "/data/doors",
            f"holds {len(doors)} doors; at most {limit} are allowed (POLIS_MAX_WALKLIST_DOORS)",
        )
    repeated = sorted({door for door in doors if doors.count(door) > 1})
    if repeated:
        raise invalid_field("/data/doors", f"names {', '.join(repeated)} more than once")
    found = await door_places.lock_doors(ctx.conn, ctx.principal.customer_id, campaign_id, doors)
    missing = [door for door in doors if door not in found]
    if missing:
        raise ValidationFailed(
            f"{len(missing)} of the doors have no door record in campaign {campaign_id}; "
            "a walk list holds the campaign's doors (give them a record first: a list "
            f"attached to the campaign, or a PUT of the door): {', '.join(missing)}.",
            errors=[
                FieldError(path=f"/data/doors/{doors.index(door)}", message="not in the campaign")
                for door in missing
            ],
        )
    held = [door for door in doors if found[door].held_at(ctx.now)]
    if held:
        raise Conflict(
            f"{len(held)} of the doors are held by another walk list's live reservation: "
            f"{', '.join(held)}.",
            errors=[
                FieldError(path=f"/data/doors/{doors.index(door)}", message="reserved")
                for door in held
            ],
        )
    return [found[door] for door in doors]


async def _nearest_doors(
    ctx: WriteContext, campaign_id: str, data: dict[str, Any], limit: int
) -> tuple[list[door_places.PlacedDoor], Start]:
    size = data.get("size")
    if size is None:
        raise invalid_field("/data/size", "is required with /data/near")
    if size > limit:
        raise invalid_field(
            "/data/size", f"is {size}; at most {limit} doors are allowed (POLIS_MAX_WALKLIST_DOORS)"
        )
    lng, lat = float(data["near"]["lng"]), float(data["near"]["lat"])
    doors = await door_places.take_nearest_free(
        ctx.conn, ctx.principal.customer_id, campaign_id, lng, lat, size, ctx.now
    )
    return doors, (lng, lat)


async def _turf_doors(
    ctx: WriteContext, campaign_id: str, turf_id: str, limit: int
) -> tuple[list[door_places.PlacedDoor], Start]:
    turf = await refs.require_document(ctx.conn, TURFS, ctx.principal, turf_id, "/data/turfId")
    if str(turf["campaignId"]) != campaign_id:
        raise invalid_field("/data/turfId", "is a turf of another campaign")
    polygon = check_polygon(turf["boundary"], max_positions=len(str(turf["boundary"])))
    doors = await door_places.take_free_in_turf(
        ctx.conn, ctx.principal.customer_id, campaign_id, polygon, limit, ctx.now
    )
    return doors, polygon.outer[0]
