"""Routes of a list's members (docs/lists.md): put one on, take one off, add many, list them.

Every membership change holds the list's row lock (FOR UPDATE) from before it
writes until its transaction ends, so changes to one list queue: the list's
``contactsCount`` is recounted under that lock and is exact however many run at
once, and lists_doors can rely on it (see its docstring).

No ``from __future__ import annotations``: FastAPI reads these signatures at runtime.
"""

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request, Response
from pydantic import BaseModel, ConfigDict

from polis_api.auth import Principal, require
from polis_api.deps import WriteConnection
from polis_api.documents import repository as repo
from polis_api.documents import service
from polis_api.documents.bulk_results import ItemBulkBody, ItemResultsOut, write_items
from polis_api.documents.envelope import DataModel, StoredDocument, utc_now_ms
from polis_api.documents.listing import LIST_PARAMETERS
from polis_api.documents.repository import Rendered
from polis_api.documents.resource import WriteContext
from polis_api.documents.responses import (
    CSV_CONTENT,
    DocumentOut,
    PageOut,
    check_bulk_size,
    document_response,
    json_response,
    problem_responses,
)
from polis_api.documents.router import (
    LIST_DESCRIPTION,
    EtagHeader,
    IfMatch,
    list_response,
    precondition,
)
from polis_api.errors import NotFound
from polis_api.resources import list_doors
from polis_api.resources import references as refs
from polis_api.resources.lists import LIST_MEMBERS, LISTS, ListMemberData

MEMBER = "/v1/lists/{listId}/contacts/{contactId}/households/{householdId}"
MEMBERS = "/v1/lists/{listId}/contact-households"

CanRead = Annotated[Principal, Depends(require(LISTS.permission("read")))]
CanModify = Annotated[Principal, Depends(require(LISTS.permission("modify")))]

router = APIRouter(tags=["list members"])
Out = DocumentOut[ListMemberData]
HeldList = tuple[StoredDocument, str]


class MemberPair(DataModel):
    contactId: uuid.UUID
    householdId: uuid.UUID


class MemberItem(BaseModel):
    """One item of the bulk add: ``{"data": {"contactId", "householdId"}}``."""

    model_config = ConfigDict(extra="forbid")
    data: MemberPair


@router.put(
    MEMBER,
    summary="Put an associated contact-household on the list (201 new, 200 already on it)",
    responses={
        201: {"model": Out},
        200: {"model": Out, "description": "Already on the list; the member is returned"},
        **problem_responses(400, 401, 403, 404),
    },
)
async def put_member(
    listId: uuid.UUID,
    contactId: uuid.UUID,
    householdId: uuid.UUID,
    principal: CanModify,
    conn: WriteConnection,
) -> Response:
    ctx = WriteContext(conn, principal, utc_now_ms())
    held = await _lock_list(ctx, listId)
    rendered, created, pair = await _add(ctx, listId, contactId, householdId)
    if created:
        await _members_changed(ctx, held, [pair])
    return document_response(rendered, 201 if created else 200)


@router.delete(
    MEMBER,
    status_code=204,
    summary="Take the contact-household off the list (soft delete; needs the member's etag)",
    responses=problem_responses(400, 401, 403, 404, 412, 428),
)
async def delete_member(
    listId: uuid.UUID,
    contactId: uuid.UUID,
    householdId: uuid.UUID,
    principal: CanModify,
    conn: WriteConnection,
    if_match: IfMatch = None,
    etag: EtagHeader = None,
) -> Response:
    ctx = WriteContext(conn, principal, utc_now_ms())
    held = await _lock_list(ctx, listId)
    key = {"listId": str(listId), "contactId": str(contactId), "householdId": str(householdId)}
    found = await repo.find_first(conn, LIST_MEMBERS.sql, principal.customer_id, key)
    if found is None:
        raise NotFound(f"Contact {contactId} with household {householdId} is not on list {listId}.")
    member_id = found[0]
    await service.delete_document(
        conn, LIST_MEMBERS, principal, member_id, precondition(if_match, etag)
    )
    await _members_changed(ctx, held, [])
    return Response(status_code=204)


@router.post(
    MEMBERS,
    status_code=207,
    summary="Put many contact-households on the list, each item on its own",
    description=(
        'Items are `{"data": {"contactId", "householdId"}}`, each written in its own '
        "savepoint: 201 put on the list, 200 already on it, or the problem the single PUT "
        "would answer (404 for a pair that is not associated). At most "
        "POLIS_MAX_BULK_ITEMS items (else 413). An unknown list is a 404 for the call."
    ),
    responses={
        207: {"model": ItemResultsOut[ListMemberData], "description": "One answer per item"},
        **problem_responses(400, 401, 403, 404, 413, 415),
    },
)
async def add_members(
    listId: uuid.UUID,
    request: Request,
    principal: CanModify,
    conn: WriteConnection,
    body: Annotated[
        ItemBulkBody,
        Body(
            openapi_examples={
                "pairs": {
                    "summary": "Two contact-households",
                    "value": {
                        "data": [
                            {
                                "data": {
                                    "contactId": "5f0e5b8e-8a43-4f0b-9a3e-6f1f1c2d3e4f",
                                    "householdId": "0b7c2a8e-6d1f-4e2a-8b3c-9d4e5f6a7b8c",
                                }
                            }
                        ]
                    },
                }
            }
        ),
    ],
) -> Response:
    check_bulk_size(len(body.data), request.app.state.settings.max_bulk_items)
    ctx = WriteContext(conn, principal, utc_now_ms())
    held = await _lock_list(ctx, listId)
    added: list[str] = []

    async def add_one(item: MemberItem) -> tuple[Rendered, bool]:
        rendered, created, pair = await _add(
            ctx, listId, item.data.contactId, item.data.householdId
        )
        if created:
            added.append(pair)
        return rendered, created

    answer = await write_items(conn, MemberItem, body.data, add_one)
    await _members_changed(ctx, held, added)
    return json_response(answer, 207)


@router.get(
    MEMBERS,
    summary="The list's members, each with its contact and household embedded",
    description=(
        "Each member carries the full contact and household documents at `data.contact` "
        "and `data.household`; filter and sort reach into them, e.g. "
        '`filter=/data/household/data/address/city eq "Springfield"` or '
        "`sort=/data/contact/data/profile/name/anglican/surname`. With `since`, a change "
        "to a member's contact or household brings the member again.\n\n" + LIST_DESCRIPTION
    ),
    openapi_extra={"parameters": LIST_PARAMETERS},
    responses={
        200: {"model": PageOut[ListMemberData], **CSV_CONTENT},
        **problem_responses(400, 401, 403, 404, 406, 410),
    },
)
async def list_members(listId: uuid.UUID, request: Request, principal: CanRead) -> Response:
    await service.get_document(request.app.state.pool, LISTS, principal, listId)
    return await list_response(
        request, LIST_MEMBERS, principal, scope={"/data/listId": str(listId)}
    )


async def _lock_list(ctx: WriteContext, list_id: uuid.UUID) -> HeldList:
    """The list, locked until the transaction ends; 404 when the tenant has no such list."""
    found = await repo.fetch_for_write(ctx.conn, LISTS.sql, ctx.principal.customer_id, list_id)
    if found is None:
        raise service.not_found(LISTS, list_id)
    return found


async def _add(
    ctx: WriteContext, list_id: uuid.UUID, contact_id: uuid.UUID, household_id: uuid.UUID
) -> tuple[Rendered, bool, str]:
    """Put one pair on the (locked) list: the member, whether it is new, and the
    contact-household id."""
    pair = await refs.contact_household_id(ctx.conn, ctx.principal, contact_id, household_id)
    if pair is None:
        raise NotFound(f"Contact {contact_id} is not associated with household {household_id}.")
    await _require_embedded(ctx, {"contactId": contact_id, "householdId": household_id})
    data = {
        "listId": str(list_id),
        "contactId": str(contact_id),
        "householdId": str(household_id),
        "contactHouseholdId": pair,
    }
    rendered, created = await service.create_from_data(ctx, LIST_MEMBERS, data)
    return rendered, created, pair


async def _require_embedded(ctx: WriteContext, ids: dict[str, uuid.UUID]) -> None:
    """A member is only made of documents the tenant has: each one it embeds must exist."""
    for embed in LIST_MEMBERS.embeds:
        sql = repo.statements(embed.table, embed.resource)
        doc_id = ids[embed.by]
        if await repo.fetch_data(ctx.conn, sql, ctx.principal.customer_id, doc_id) is None:
            raise NotFound(f"No {embed.at} with id {doc_id}.")


async def _members_changed(ctx: WriteContext, held: HeldList, added: list[str]) -> None:
    """Recount the list and give the added contact-households their doors."""
    current, etag = held
    count = await repo.count_live_by(
        ctx.conn, LIST_MEMBERS.sql, ctx.principal.customer_id, {"listId": str(current.id)}
    )
    if current.data.get("contactsCount") != count:
        revised = current.revised(
            data={**current.data, "contactsCount": count}, by=ctx.principal.user_id, at=ctx.now
        )
        await service.write_revision(ctx, LISTS, revised, etag)
    await list_doors.doors_for_members(ctx, added)
