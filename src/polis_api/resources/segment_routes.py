"""Routes of segments beyond the standard ones: the swap of two precedences.

No ``from __future__ import annotations``: FastAPI reads these signatures at runtime.
"""

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from polis_api.auth import Principal, require
from polis_api.deps import WriteConnection
from polis_api.documents.responses import PageOut, json_response, page_body, problem_responses
from polis_api.resources.segment_swap import SegmentRef, swap_precedences
from polis_api.resources.segments import SegmentData

router = APIRouter(tags=["segment"])
CanModify = Annotated[Principal, Depends(require("modify@segments"))]


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
