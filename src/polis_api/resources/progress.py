"""GET /v1/campaigns/{id}/progress: the organiser's counts (docs/progress.md).

The handler resolves which doors count (the whole campaign, a turf, a walk list, a
restricted caller's assigned doors), asks ``progress_sql`` for the counted facts and
``workflow.progress`` for the numbers. The ETag is the answer's own digest, so it
changes exactly when a number does.

No ``from __future__ import annotations``: FastAPI reads these signatures at runtime.
"""

import uuid
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from polis_api import jsoncodec
from polis_api.auth import Principal, require
from polis_api.deps import ReadConnection
from polis_api.documents.envelope import format_timestamp, utc_now_ms
from polis_api.documents.etag import compute_etag
from polis_api.documents.repository import Rendered
from polis_api.documents.responses import current_or_not_modified, problem_responses
from polis_api.errors import FieldError, ValidationFailed
from polis_api.resources import references as refs
from polis_api.resources.campaigns import CAMPAIGNS
from polis_api.resources.door_records import DOOR_RECORDS
from polis_api.resources.interactions import INTERACTIONS
from polis_api.resources.progress_sql import DoorScope, count_facts, shows_unassigned
from polis_api.resources.turfs import TURFS
from polis_api.resources.walklists import WALKLISTS
from polis_api.workflow.polygons import check_polygon
from polis_api.workflow.progress import progress

router = APIRouter(tags=["campaigns"])


async def _reader(
    principal: Annotated[Principal, Depends(require(CAMPAIGNS.permission("read")))],
) -> Principal:
    # Progress counts a campaign's door records and interactions: reading it needs
    # what reading them needs.
    for permission in (DOOR_RECORDS.permission("read"), INTERACTIONS.permission("read")):
        principal.require(permission)
    return principal


CanRead = Annotated[Principal, Depends(_reader)]


class Canvasser(BaseModel):
    userId: str
    interactions: int
    contacted: int
    successful: int


class Day(BaseModel):
    date: str = Field(description="UTC date of the interactions' `timestamp`.")
    interactions: int
    contacted: int


class ProgressData(BaseModel):
    doors: int
    contacted: int
    contactRate: float
    successful: int
    byState: dict[str, int]
    byStatus: dict[str, int]
    byDay: list[Day]
    byCanvasser: list[Canvasser]
    surveys: dict[str, dict[str, int]]


class ProgressMeta(BaseModel):
    asOf: str


class ProgressOut(BaseModel):
    data: ProgressData
    meta: ProgressMeta


@router.get(
    "/v1/campaigns/{id}/progress",
    summary="How far the campaign has got: doors by state, knocks by day and canvasser",
    description=(
        "Counts of the campaign's live door records and interactions, exact at the "
        "moment of the answer (docs/progress.md). `turfId` and/or `walklistId` count "
        "only the doors of that turf / walk list. Send the `ETag` back as "
        "`If-None-Match` to get a 304 while no number changed."
    ),
    responses={200: {"model": ProgressOut}, **problem_responses(400, 401, 403, 404)},
)
async def campaign_progress(
    id: uuid.UUID,
    request: Request,
    principal: CanRead,
    conn: ReadConnection,
    turfId: Annotated[str | None, Query(description="Only this turf's doors.")] = None,
    walklistId: Annotated[str | None, Query(description="Only this walk list's doors.")] = None,
) -> Response:
    await refs.require_campaign(conn, principal, id)
    scope = await _door_scope(conn, principal, str(id), turfId, walklistId)
    as_of = format_timestamp(utc_now_ms())
    data = progress(await count_facts(conn, principal.customer_id, str(id), scope))
    return _answer(data, as_of, request.headers.get("if-none-match"))


def _answer(data: dict[str, Any], as_of: str, if_none_match: str | None) -> Response:
    # The digest of the numbers alone: asOf moves on every call, the numbers do not.
    etag = compute_etag(data)
    body = jsoncodec.dumps({"data": data, "meta": {"asOf": as_of}})
    response = current_or_not_modified(Rendered(body, etag), if_none_match)
    # Always revalidate: the numbers change with every knock.
    response.headers["Cache-Control"] = "private, no-cache"
    return response


async def _door_scope(
    conn: asyncpg.Connection,
    principal: Principal,
    campaign_id: str,
    turf_id: str | None,
    walklist_id: str | None,
) -> DoorScope:
    scope = DoorScope()
    if turf_id is not None:
        _, turf = await _part_of(conn, principal, campaign_id, "turfId", turf_id)
        # Stored boundaries were checked on write; no bound applies to reading one back.
        boundary = turf["boundary"]
        scope = scope.in_turf(check_polygon(boundary, max_positions=len(str(boundary))))
    if walklist_id is not None:
        walklist, _ = await _part_of(conn, principal, campaign_id, "walklistId", walklist_id)
        scope = scope.on_walklist(walklist)
    if principal.assigned_only and not await shows_unassigned(conn, principal.customer_id):
        scope = scope.assigned_to(principal.user_id)
    return scope


async def _part_of(
    conn: asyncpg.Connection, principal: Principal, campaign_id: str, name: str, value: str
) -> tuple[uuid.UUID, dict[str, Any]]:
    """The id and data of the turf or walk list ``value`` names; a 400 naming the
    parameter if it is not an id of the tenant's, or belongs to another campaign."""
    resource = TURFS if name == "turfId" else WALKLISTS
    try:
        doc_id = uuid.UUID(value.strip())
    except ValueError:
        raise _bad(name, f"'{value}' is not a {resource.label} id (a UUID)") from None
    data = await refs.require_document(conn, resource, principal, doc_id, field=name)
    if str(data.get("campaignId")) != campaign_id:
        raise _bad(name, f"{resource.label} {doc_id} belongs to another campaign")
    return doc_id, data


def _bad(name: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{name}: {message}.", errors=[FieldError(path=name, message=message)])
