"""A campaign's review: GET /v1/campaigns/{id}/review ranks canvassers by the share of
their knocks that carry a quality flag; POST .../review/rollback takes a canvasser's
knocks of a window back (docs/quality.md).

No ``from __future__ import annotations``: FastAPI reads these signatures at runtime.
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from polis_api import jsoncodec
from polis_api.auth import Principal, require
from polis_api.config import Settings
from polis_api.deps import ReadConnection, WriteConnection
from polis_api.documents.envelope import Timestamp, format_timestamp, utc_now_ms
from polis_api.documents.resource import WriteContext
from polis_api.documents.responses import problem_responses
from polis_api.errors import FieldError, ValidationFailed
from polis_api.resources import references as refs
from polis_api.resources import review_sql
from polis_api.resources.campaigns import CAMPAIGNS
from polis_api.resources.door_records import DOOR_RECORDS
from polis_api.resources.interactions import INTERACTIONS
from polis_api.resources.rollback import Rollback, roll_back
from polis_api.workflow.quality import flagged_share

router = APIRouter(tags=["campaigns"])
DEFAULT_LIMIT = 100


async def _reader(
    principal: Annotated[Principal, Depends(require(CAMPAIGNS.permission("read")))],
) -> Principal:
    principal.require(INTERACTIONS.permission("read"))
    return principal


async def _rollbacker(
    principal: Annotated[Principal, Depends(require(INTERACTIONS.permission("destroy")))],
) -> Principal:
    # Deleting knocks and moving doors: an organiser's (admin's) call, never a canvasser's.
    principal.require(DOOR_RECORDS.permission("modify"))
    return principal


CanRead = Annotated[Principal, Depends(_reader)]
CanRollBack = Annotated[Principal, Depends(_rollbacker)]


class CanvasserReview(BaseModel):
    userId: str = Field(description="The canvasser: the `sub` that recorded the knocks.")
    interactions: int
    flagged: int = Field(description="Interactions with at least one quality flag.")
    flaggedShare: float = Field(description="flagged / interactions (0 to 1).")
    flags: dict[str, int] = Field(description="Each flag raised, with how many carry it.")


class ReviewMeta(BaseModel):
    asOf: str


class ReviewOut(BaseModel):
    data: list[CanvasserReview]
    meta: ReviewMeta


@router.get(
    "/v1/campaigns/{id}/review",
    summary="Canvassers ranked by the share of their knocks that carry a quality flag",
    description=(
        "One entry per canvasser who recorded live interactions in the campaign (in the "
        "`from`/`to` window of the interactions' `timestamp`, from inclusive, to "
        "exclusive), ordered by `flaggedShare` descending, then `flagged` descending, "
        "then `userId`. `limit` (at most POLIS_MAX_REVIEW_CANVASSERS) and `skip` page it. "
        "See docs/quality.md."
    ),
    responses={200: {"model": ReviewOut}, **problem_responses(400, 401, 403, 404)},
)
async def campaign_review(
    id: uuid.UUID,
    request: Request,
    principal: CanRead,
    conn: ReadConnection,
    from_: Annotated[
        str | None, Query(alias="from", description="Only knocks at or after this time.")
    ] = None,
    to: Annotated[str | None, Query(description="Only knocks before this time.")] = None,
    limit: Annotated[int, Query(description="Canvassers per answer.")] = DEFAULT_LIMIT,
    skip: Annotated[
        int, Query(ge=0, le=2_147_483_647, description="Canvassers to pass over first.")
    ] = 0,
) -> Response:
    settings: Settings = request.app.state.settings
    _check_limit(limit, settings.max_review_canvassers)
    window = _window(_moment("from", from_), _moment("to", to))
    await refs.require_campaign(conn, principal, id)
    as_of = format_timestamp(utc_now_ms())
    rows = await review_sql.ranking(
        conn, principal.customer_id, id, window, (limit, skip), INTERACTIONS.visible_to(principal)
    )
    body = jsoncodec.dumps({"data": ranking_data(rows), "meta": {"asOf": as_of}})
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})


class RollbackRequest(BaseModel):
    """``{"userId", "from", "to", "dryRun"}``; ``{"data": {...}}`` works too."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    userId: uuid.UUID
    from_: Timestamp = Field(alias="from")
    to: Timestamp
    dryRun: StrictBool = False

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"data"} and isinstance(value["data"], dict):
            return value["data"]
        return value


class RollbackCounts(BaseModel):
    interactions: int = Field(description="Interactions deleted (or that would be).")
    doors: int = Field(description="Door records put back (or that would be).")
    dryRun: bool


class RollbackOut(BaseModel):
    data: RollbackCounts


ROLLBACK_EXAMPLE = {
    "userId": "0c5d7a8e-3b1f-4e2a-9c4d-5e6f7a8b9c0d",
    "from": "2026-11-28T14:00:00.000Z",
    "to": "2026-11-28T16:00:00.000Z",
    "dryRun": True,
}
ROLLBACK_EXAMPLES = {"dry run": {"summary": "Count first", "value": ROLLBACK_EXAMPLE}}


@router.post(
    "/v1/campaigns/{id}/review/rollback",
    summary="Take back a canvasser's knocks of a time window, and put their doors back",
    description=(
        "Soft-deletes the canvasser's live interactions of the campaign whose `timestamp` "
        "is in [`from`, `to`) and puts each door that followed one of them back to its "
        "latest remaining interaction (or to never contacted), in one transaction. "
        "`dryRun: true` changes nothing and answers the same counts. At most "
        "POLIS_MAX_ROLLBACK_INTERACTIONS interactions per call. See docs/quality.md."
    ),
    responses={200: {"model": RollbackOut}, **problem_responses(400, 401, 403, 404, 413, 415)},
)
async def campaign_review_rollback(
    id: uuid.UUID,
    request: Request,
    principal: CanRollBack,
    conn: WriteConnection,
    body: Annotated[
        RollbackRequest, Body(openapi_examples={"dry run": {"value": ROLLBACK_EXAMPLE}})
    ],
) -> Response:
    settings: Settings = request.app.state.settings
    if body.from_ >= body.to:
        raise _bad("/to", "must be later than from")
    await refs.require_campaign(conn, principal, id)
    window = _window(body.from_, body.to)
    ctx = WriteContext(conn, principal, utc_now_ms())
    rollback = Rollback(id, body.userId, window, body.dryRun)
    outcome = await roll_back(ctx, rollback, settings.max_rollback_interactions)
    counts = {"interactions": outcome.interactions, "doors": outcome.doors, "dryRun": body.dryRun}
    return Response(jsoncodec.dumps({"data": counts}), media_type="application/json")


def _check_limit(limit: int, most: int) -> None:
    if not 1 <= limit <= most:
        raise _bad("limit", f"must be between 1 and {most} (POLIS_MAX_REVIEW_CANVASSERS)")


def _moment(name: str, text: str | None) -> datetime | None:
    """A query parameter's ISO 8601 time; without an offset it is UTC."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        message = f"'{text}' is not an ISO 8601 time such as 2026-11-28T14:00:00.000Z"
        raise _bad(name, message) from None


def _window(start: datetime | None, end: datetime | None) -> review_sql.Window:
    if start is not None and end is not None and start >= end:
        raise _bad("to", "must be later than from")
    return review_sql.Window(
        None if start is None else format_timestamp(start),
        None if end is None else format_timestamp(end),
    )


def _bad(name: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{name}: {message}.", errors=[FieldError(path=name, message=message)])


def ranking_data(rows: Sequence[review_sql.CanvasserCounts]) -> list[dict[str, Any]]:
    """The review's ``data``: one object per canvasser, in the ranking's order."""
    return [
        {
            "userId": row.user_id,
            "interactions": row.interactions,
            "flagged": row.flagged,
            "flaggedShare": flagged_share(row.flagged, row.interactions),
            "flags": row.flags,
        }
        for row in rows
    ]
