"""Routes of the door records (docs/api.md, Door records).

No ``from __future__ import annotations``: FastAPI reads these signatures at runtime.
"""

import uuid
from collections.abc import Callable
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Body, Depends, Request, Response
from pydantic import BaseModel, ConfigDict

from polis_api.auth import Principal, require
from polis_api.deps import ReadConnection, WriteConnection
from polis_api.documents.bulk_results import CollectionPaused
from polis_api.documents.envelope import PatchBody, utc_now_ms
from polis_api.documents.patch import apply_patch, parse_operations
from polis_api.documents.resource import WriteContext
from polis_api.documents.responses import (
    CSV_CONTENT,
    DocumentOut,
    PageOut,
    check_bulk_size,
    document_response,
    json_response,
    page_body,
    problem_responses,
)
from polis_api.documents.router import (
    EtagHeader,
    IfMatch,
    list_parameters,
    list_response,
    precondition,
)
from polis_api.documents.service import require_visible, required_etags
from polis_api.documents.validation import dump_data
from polis_api.errors import (
    FieldError,
    NotFound,
    ValidationFailed,
    invalid_field,
)
from polis_api.resources import campaign_status_links as links
from polis_api.resources import door_bulk
from polis_api.resources import references as refs
from polis_api.resources.contact_households import CONTACT_HOUSEHOLDS
from polis_api.resources.door_records import (
    DOOR_RECORDS,
    SERVER_OWNED,
    Change,
    DoorRecordData,
    apply_put,
    find_record,
    update_door,
)
from polis_api.workflow.door import DoorRuleError, StatusInfo, apply_status

DOOR = "/v1/campaigns/{campaignId}/contacts/{contactId}/households/{householdId}"
# Polis' own spelling of the same door: seed clients call ".../status".
DOOR_STATUS = DOOR + "/status"

CanRead = Annotated[Principal, Depends(require("read@contact-household-campaigns"))]
CanInsert = Annotated[Principal, Depends(require("insert@contact-household-campaigns"))]
CanModify = Annotated[Principal, Depends(require("modify@contact-household-campaigns"))]

router = APIRouter(tags=["contact household campaign records"])
Out = DocumentOut[DoorRecordData]


class PutBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: DoorRecordData


class BulkParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    contactId: uuid.UUID
    householdId: uuid.UUID


class BulkItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: DoorRecordData
    params: BulkParams


class BulkBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: list[BulkItem]


Handler = Callable[..., Any]


def door_route(method: str, **options: Any) -> Callable[[Handler], Handler]:
    """Serve ``handler`` at both spellings of a door's path, each its own OpenAPI operation.

    FastAPI derives an operationId from the handler's name and the path, so the two
    operations stay distinct without a second copy of the handler.
    """

    def register(handler: Handler) -> Handler:
        router.add_api_route(DOOR, handler, methods=[method], **options)
        summary = f"{options['summary']} (Polis' /status spelling)"
        router.add_api_route(
            DOOR_STATUS, handler, methods=[method], **{**options, "summary": summary}
        )
        return handler

    return register


async def _door_pair(
    conn: asyncpg.Connection,
    principal: Principal,
    campaign_id: uuid.UUID,
    contact_id: uuid.UUID,
    household_id: uuid.UUID,
) -> str:
    """The contact-household id behind a door path; 404 if the campaign or pair is unknown."""
    await refs.require_campaign(conn, principal, campaign_id)
    pair = await refs.contact_household_id(conn, principal, contact_id, household_id)
    if pair is None:
        raise NotFound(f"Contact {contact_id} is not associated with household {household_id}.")
    await require_visible(conn, CONTACT_HOUSEHOLDS, principal, uuid.UUID(pair))
    return pair


def _put_change(body: dict[str, Any], status: StatusInfo | None) -> Change:
    async def change(record: dict[str, Any]) -> dict[str, Any]:
        return apply_put(record, body, status)

    return change


def _rule_error(exc: DoorRuleError, path: str = "/data/statusId") -> ValidationFailed:
    return ValidationFailed(str(exc), errors=[FieldError(path=path, message=str(exc))])


async def _checked_put_body(
    conn: asyncpg.Connection, principal: Principal, campaign_id: uuid.UUID, data: DoorRecordData
) -> tuple[dict[str, Any], StatusInfo | None]:
    body = {k: v for k, v in dump_data(data).items() if k not in SERVER_OWNED}
    given_campaign = body.pop("campaignId", None)
    if given_campaign is not None and given_campaign != str(campaign_id):
        raise invalid_field("/data/campaignId", "must be the campaign in the path")
    status = await refs.optional_status(conn, principal, body.get("statusId"))
    await links.require_allowed(conn, principal.customer_id, campaign_id, body.get("statusId"))
    return body, status


@door_route(
    "GET",
    summary="Get a door's record in a campaign",
    responses={200: {"model": Out}, **problem_responses(400, 401, 403, 404)},
)
async def get_record(
    campaignId: uuid.UUID,
    contactId: uuid.UUID,
    householdId: uuid.UUID,
    principal: CanRead,
    conn: ReadConnection,
) -> Response:
    pair = await _door_pair(conn, principal, campaignId, contactId, householdId)
    found = await find_record(conn, principal.customer_id, str(campaignId), pair)
    if found is None:
        raise NotFound(f"Campaign {campaignId} has no record for this contact and household yet.")
    return document_response(found)


@door_route(
    "PUT",
    summary="Create or update a door's record",
    responses={
        200: {"model": Out},
        201: {"model": Out},
        **problem_responses(400, 401, 403, 404, 413, 415),
    },
)
async def put_record(
    campaignId: uuid.UUID,
    contactId: uuid.UUID,
    householdId: uuid.UUID,
    principal: CanModify,
    conn: WriteConnection,
    body: Annotated[
        PutBody,
        Body(
            openapi_examples={
                "seed": {
                    "summary": "As the Polis app sends it",
                    "value": {
                        "data": {
                            "availability": {"available": False, "unavailableReason": "Not Home"}
                        }
                    },
                }
            }
        ),
    ],
) -> Response:
    pair = await _door_pair(conn, principal, campaignId, contactId, householdId)
    changes, status = await _checked_put_body(conn, principal, campaignId, body.data)
    ctx = WriteContext(conn, principal, utc_now_ms())
    try:
        written = await update_door(
            ctx, str(campaignId), pair, _put_change(changes, status), list_type=changes.get("type")
        )
    except DoorRuleError as exc:
        raise _rule_error(exc) from exc
    assert written is not None
    rendered, created = written
    return document_response(rendered, 201 if created else 200)


@door_route(
    "PATCH",
    summary="Set a door's status (only /statusId may be patched)",
    responses={200: {"model": Out}, **problem_responses(400, 401, 403, 404, 409, 412, 428)},
)
async def patch_record(
    campaignId: uuid.UUID,
    contactId: uuid.UUID,
    householdId: uuid.UUID,
    principal: CanModify,
    conn: WriteConnection,
    body: Annotated[
        PatchBody,
        Body(
            openapi_examples={
                "seed": {
                    "summary": "As the Polis app sends it",
                    "value": {
                        "data": [
                            {
                                "op": "replace",
                                "path": "/statusId",
                                "value": "53a18d44-54f0-400e-b9cd-dd0bd32ae904",
                            }
                        ]
                    },
                }
            }
        ),
    ],
    if_match: IfMatch = None,
    etag: EtagHeader = None,
) -> Response:
    tags = required_etags(precondition(if_match, etag))
    operations = parse_operations(body.operations())
    _only_status_id(operations)
    pair = await _door_pair(conn, principal, campaignId, contactId, householdId)

    async def change(record: dict[str, Any]) -> dict[str, Any]:
        patched = apply_patch({"statusId": record.get("statusId")}, operations)
        status_id = patched.get("statusId")
        status = await refs.optional_status(conn, principal, status_id)
        await links.require_allowed(conn, principal.customer_id, campaignId, status_id)
        return apply_status(record, status)

    ctx = WriteContext(conn, principal, utc_now_ms())
    written = await update_door(
        ctx, str(campaignId), pair, change, expected_etags=tags, create=False
    )
    if written is None:
        raise NotFound(f"Campaign {campaignId} has no record for this contact and household yet.")
    return document_response(written[0])


def _only_status_id(operations: list[dict[str, Any]]) -> None:
    for index, operation in enumerate(operations):
        for key in ("path", "from"):
            if key in operation and operation[key] != "/statusId":
                raise ValidationFailed(
                    f"Only /statusId may be patched on a door record; got {operation[key]!r}.",
                    errors=[
                        FieldError(
                            path=f"/data/{index}/{key}", message="only /statusId may be patched"
                        )
                    ],
                )


@router.post(
    "/v1/campaigns/contact-households/bulk",
    summary="Create or update many door records of one campaign, all or nothing",
    responses={
        200: {"model": PageOut[DoorRecordData]},
        **problem_responses(400, 401, 403, 404, 413, 415),
    },
)
async def bulk_records(
    request: Request,
    principal: CanModify,
    conn: WriteConnection,
    _: CollectionPaused,
    body: BulkBody,
) -> Response:
    check_bulk_size(len(body.data), request.app.state.settings.max_bulk_items)
    ctx = WriteContext(conn, principal, utc_now_ms())
    items = [
        door_bulk.BulkItem(dump_data(item.data), item.params.contactId, item.params.householdId)
        for item in body.data
    ]
    campaign_id, changes = await door_bulk.plan(ctx, items)
    return json_response(page_body(await door_bulk.write(ctx, campaign_id, changes)))


@router.get(
    "/v1/campaigns/{campaignId}/contact-households",
    summary="List a campaign's door records (the map)",
    openapi_extra={"parameters": list_parameters(DOOR_RECORDS)},
    responses={
        200: {"model": PageOut[DoorRecordData], **CSV_CONTENT},
        **problem_responses(400, 401, 403, 404, 406, 410),
    },
)
async def list_records(campaignId: uuid.UUID, request: Request, principal: CanRead) -> Response:
    async with request.app.state.pool.acquire() as conn:
        await refs.require_campaign(conn, principal, campaignId)
    return await list_response(
        request, DOOR_RECORDS, principal, scope={"/data/campaignId": str(campaignId)}
    )
