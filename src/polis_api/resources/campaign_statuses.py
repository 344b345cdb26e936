"""Routes of a campaign's statuses (docs/statuses.md): link, unlink, list.

No ``from __future__ import annotations``: FastAPI reads these signatures at runtime.
"""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from polis_api.auth import Principal, require
from polis_api.deps import WriteConnection
from polis_api.documents import service
from polis_api.documents.envelope import utc_now_ms
from polis_api.documents.listing import LIST_PARAMETERS, parse_list_request
from polis_api.documents.responses import (
    CSV_CONTENT,
    DocumentOut,
    PageOut,
    document_response,
    problem_responses,
)
from polis_api.documents.router import list_representation, list_response, listed_response
from polis_api.errors import NotFound
from polis_api.filtering.ast import ArrayLiteral, Compare, Literal, Node, Path
from polis_api.resources import campaign_status_links as links
from polis_api.resources import references as refs
from polis_api.resources.statuses import STATUSES, StatusData

STATUSES_OF_CAMPAIGN = "/v1/campaigns/{campaignId}/statuses"
LINK = STATUSES_OF_CAMPAIGN + "/{statusId}"

# Reading lists status documents; linking changes how a campaign is set up, so it
# takes the campaign permission an admin holds (canvassers and viewers do not).
CanRead = Annotated[Principal, Depends(require("read@statuses"))]
CanLink = Annotated[Principal, Depends(require("modify@campaigns"))]

router = APIRouter(tags=["campaign statuses"])


@router.put(
    LINK,
    summary="Link a status to a campaign (idempotent: 201 new, 200 existing)",
    description=(
        "Answers with the status document. Once a campaign has linked statuses, its door "
        "records may only take those; interactions naming another are stored and flagged "
        "`status-mismatch`. A link has no etag: it holds no data to change."
    ),
    responses={
        201: {"model": DocumentOut[StatusData]},
        200: {"model": DocumentOut[StatusData]},
        **problem_responses(400, 401, 403, 404),
    },
)
async def link_status(
    campaignId: uuid.UUID, statusId: uuid.UUID, principal: CanLink, conn: WriteConnection
) -> Response:
    await refs.require_campaign(conn, principal, campaignId)
    status = await service.get_document(conn, STATUSES, principal, statusId)
    created = await links.link(
        conn, principal.customer_id, campaignId, statusId, principal.user_id, utc_now_ms()
    )
    return document_response(status, 201 if created else 200)


@router.delete(
    LINK,
    status_code=204,
    summary="Unlink a status from a campaign",
    description=(
        "No precondition: a link has no etag. 404 when the status is not linked. When the "
        "last link goes, the campaign allows every status of the tenant again."
    ),
    responses=problem_responses(400, 401, 403, 404),
)
async def unlink_status(
    campaignId: uuid.UUID, statusId: uuid.UUID, principal: CanLink, conn: WriteConnection
) -> Response:
    await refs.require_campaign(conn, principal, campaignId)
    if not await links.unlink(conn, principal.customer_id, campaignId, statusId):
        raise NotFound(f"Status {statusId} is not linked to campaign {campaignId}.")
    return Response(status_code=204)


@router.get(
    STATUSES_OF_CAMPAIGN,
    summary="List a campaign's statuses (every status of the tenant when none is linked)",
    description=(
        "Status documents, with the list parameters of every list. With `since`, the "
        "change feed over every status of the tenant: a status that is not (or no longer) "
        "one of the campaign's comes as a tombstone (`meta.isDeleted` true). Linking or "
        "unlinking a status, or deleting a linked one, sends the whole set again."
    ),
    openapi_extra={"parameters": LIST_PARAMETERS},
    responses={
        200: {"model": PageOut[StatusData], **CSV_CONTENT},
        **problem_responses(400, 401, 403, 404, 406, 410),
    },
)
async def list_campaign_statuses(
    campaignId: uuid.UUID, request: Request, principal: CanRead
) -> Response:
    principal.require("read@campaigns")
    listing = parse_list_request(
        request.query_params,
        STATUSES.field_policy,
        request.app.state.settings,
        STATUSES.owner(principal),
        representation=list_representation(request, STATUSES),
    )
    async with request.app.state.pool.acquire() as conn:
        await refs.require_campaign(conn, principal, campaignId)
        if listing.feed:
            listed = await service.view_feed_page(
                conn, links.feed_view, listing, campaignId, resource=STATUSES
            )
            return listed_response(request, STATUSES.name, listing, listed)
        linked = await links.linked_status_ids(conn, principal.customer_id, campaignId)
    return await list_response(request, STATUSES, principal, scope_filter=_one_of(linked))


def _one_of(status_ids: frozenset[str]) -> Node | None:
    """``/id in [...]``; None (no restriction) when the campaign links no status."""
    if not status_ids:
        return None
    ids = tuple(Literal(status_id, 0) for status_id in sorted(status_ids))
    return Compare(Path(("id",), 0), "in", ArrayLiteral(ids, 0))
