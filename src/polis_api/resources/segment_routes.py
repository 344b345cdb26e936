"""Routes of segments beyond the standard ones: the swap of two precedences, and the
survey a contact gets in a campaign.

No ``from __future__ import annotations``: FastAPI reads these signatures at runtime.
"""

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from polis_api.auth import Principal, require
from polis_api.deps import ReadConnection, WriteConnection
from polis_api.documents.responses import (
    DocumentOut,
    PageOut,
    document_response,
    json_response,
    page_body,
    problem_responses,
)
from polis_api.errors import MethodNotAllowed
from polis_api.resources.contact_survey import survey_for_contact
from polis_api.resources.segment_swap import SegmentRef, swap_precedences
from polis_api.resources.segments import SegmentData
from polis_api.resources.surveys import SurveyData

router = APIRouter(tags=["segment"])
CanModify = Annotated[Principal, Depends(require("modify@segments"))]
CanReadSurveys = Annotated[Principal, Depends(require("read@surveys"))]


class SwapItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: uuid.UUID
    etag: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class SwapSegments(BaseModel):
    model_config = ConfigDict(extra="forbid")
    segments: Annotated[list[SwapItem], Field(min_length=2, max_length=2)]


class SwapBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: SwapSegments


SWAP_EXAMPLE = {
    "data": {
        "segments": [
            {"id": "5b0e7c1c-8f5e-4d8e-9a49-0f2b1f3a9d01", "etag": "1a2b3c-etag-of-the-first"},
            {"id": "5b0e7c1c-8f5e-4d8e-9a49-0f2b1f3a9d02", "etag": "4d5e6f-etag-of-the-second"},
        ]
    }
}


@router.post(
    "/v1/segments/swap-precedences",
    summary="Swap the precedences of two segments of one campaign, atomically",
    description="Each segment is named with its current etag; a stale etag is a 412 and "
    "nothing changes. The answer is both segments, in the order named, with new etags.",
    responses={
        200: {"model": PageOut[SegmentData]},
        **problem_responses(400, 401, 403, 404, 412, 413, 415),
    },
)
async def swap(
    principal: CanModify,
    conn: WriteConnection,
    body: Annotated[
        SwapBody,
        Body(openapi_examples={"swap": {"summary": "Two segments", "value": SWAP_EXAMPLE}}),
    ],
) -> Response:
    first, second = (SegmentRef(item.id, item.etag) for item in body.data.segments)
    return json_response(page_body(await swap_precedences(conn, principal, first, second)))


@router.api_route(
    "/v1/segments/swap-precedences",
    methods=["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"],
    include_in_schema=False,
)
async def swap_other_methods(request: Request) -> Response:
    # Without this, PATCH or DELETE would reach /v1/segments/{id} and fail on the id.
    raise MethodNotAllowed(
        f"{request.method} is not allowed on {request.url.path}; use POST.",
        headers={"Allow": "POST"},
    )


@router.get(
    "/v1/campaigns/{campaignId}/contacts/{contactId}/survey",
    summary="The survey a contact gets in a campaign",
    description="The survey of the campaign's first segment, by precedence, whose criteria "
    "the contact matches; 404 when none does (or the campaign or contact is unknown).",
    dependencies=[Depends(require("read@segments")), Depends(require("read@contacts"))],
    responses={200: {"model": DocumentOut[SurveyData]}, **problem_responses(400, 401, 403, 404)},
)
async def contact_survey(
    campaignId: uuid.UUID, contactId: uuid.UUID, principal: CanReadSurveys, conn: ReadConnection
) -> Response:
    return document_response(await survey_for_contact(conn, principal, campaignId, contactId))
