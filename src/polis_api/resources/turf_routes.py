"""GET /v1/turfs/{turfId}/contact-households: the campaign's doors inside a turf.

The list is the campaign's door records with one more clause (their household lies
inside the polygon), so every list parameter works as on any list: filter, sort,
limit/skip, count, streaming for "all", and ``since`` (the change feed of the doors
inside; a door whose household moves out is not announced as a tombstone).

No ``from __future__ import annotations``: FastAPI reads these signatures at runtime.
"""

import uuid
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from polis_api.auth import Principal, require
from polis_api.documents.listing import LIST_PARAMETERS, ListRequest, parse_list_request
from polis_api.documents.responses import CSV_CONTENT, PageOut, problem_responses
from polis_api.documents.router import LIST_DESCRIPTION, answer_list, list_representation
from polis_api.resources import door_places
from polis_api.resources import references as refs
from polis_api.resources.door_records import DOOR_RECORDS, DoorRecordData
from polis_api.resources.turfs import TURFS
from polis_api.workflow.polygons import Polygon, check_polygon

CanRead = Annotated[Principal, Depends(require(TURFS.permission("read")))]

router = APIRouter(tags=["turfs"])


@router.get(
    "/v1/turfs/{turfId}/contact-households",
    summary="The campaign's door records whose household lies inside the turf",
    description=(
        "Door records (contact-household-campaign records) of the turf's campaign whose "
        "household's `address.coords` lie inside the boundary and outside its holes. A "
        "point on the boundary (a hole's edge included) counts as inside; households "
        "without coordinates are never inside. Served by the households' position "
        "index.\n\n" + LIST_DESCRIPTION
    ),
    openapi_extra={"parameters": LIST_PARAMETERS},
    responses={
        200: {"model": PageOut[DoorRecordData], **CSV_CONTENT},
        **problem_responses(400, 401, 403, 404, 406, 410),
    },
)
async def turf_doors(turfId: uuid.UUID, request: Request, principal: CanRead) -> Response:
    settings = request.app.state.settings
    pool = request.app.state.pool
    turf = await refs.require_document(pool, TURFS, principal, turfId)
    # Stored boundaries were checked on write; no bound applies to reading one back.
    polygon = check_polygon(turf["boundary"], max_positions=len(str(turf["boundary"])))
    listing = parse_list_request(
        request.query_params,
        DOOR_RECORDS.field_policy,
        settings,
        principal.customer_id,
        scope={"/data/campaignId": str(turf["campaignId"])},
        visible=DOOR_RECORDS.visible_to(principal),
        representation=list_representation(request, DOOR_RECORDS, geo=False),
    )
    return await answer_list(request, DOOR_RECORDS, principal, _inside(listing, polygon))


def _inside(listing: ListRequest, polygon: Polygon) -> ListRequest:
    query = listing.query
    clause = door_places.in_turf_clause(len(query.params) + 1)
    params = [*query.params, *door_places.polygon_params(polygon)]
    return replace(
        listing, query=replace(query, where=f"{query.where} AND {clause}", params=params)
    )
