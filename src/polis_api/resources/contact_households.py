"""Contact-households: who lives behind which door (docs/api.md,
Contact-households).

No ``from __future__ import annotations``: FastAPI reads these signatures at runtime.
"""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from polis_api.auth import Principal, require
from polis_api.deps import WriteConnection
from polis_api.documents import repository as repo
from polis_api.documents import service
from polis_api.documents.envelope import DataModel, utc_now_ms
from polis_api.documents.resource import DocumentHooks, Resource, WriteContext
from polis_api.documents.responses import DocumentOut, document_response, problem_responses
from polis_api.documents.router import EtagHeader, IfMatch, precondition
from polis_api.errors import NotFound, invalid_field
from polis_api.filtering.to_sql import FieldPolicy
from polis_api.resources.assigned import ASSIGNED_DOOR
from polis_api.resources.households import HOUSEHOLDS


class ContactHouseholdData(DataModel):
    contactId: uuid.UUID
    householdId: uuid.UUID


class ContactHouseholdHooks(DocumentHooks):
    async def prepare(
        self, ctx: WriteContext, data: dict[str, Any], previous: dict[str, Any] | None
    ) -> dict[str, Any]:
        household = await repo.fetch_data(
            ctx.conn, HOUSEHOLDS.sql, ctx.principal.customer_id, uuid.UUID(data["householdId"])
        )
        if household is None:
            raise invalid_field("/data/householdId", "no household with this id in your tenant")
        return data


CONTACT_HOUSEHOLDS = Resource(
    name="contact-households",
    prefix="/v1/contact-households",
    table="contact_households",
    visibility=ASSIGNED_DOOR,
    data_model=ContactHouseholdData,
    hooks=ContactHouseholdHooks(),
    natural_key=("contactId", "householdId"),
    routes=frozenset({"retrieve", "list"}),
    bulk_path="/v2/contacts/households/bulk",
    filterable=FieldPolicy(
        allowed_data_paths=frozenset({"/data/contactId", "/data/householdId"}),
        allowed_columns=frozenset({"/id", "/meta/created", "/meta/modified"}),
    ),
    title="contact household",
)

PAIR = "/v2/contacts/{contactId}/households/{householdId}"
router = APIRouter(tags=[CONTACT_HOUSEHOLDS.label])


@router.put(
    PAIR,
    summary="Associate a contact with a household (idempotent: 201 new, 200 existing)",
    responses={
        201: {"model": DocumentOut[ContactHouseholdData]},
        200: {"model": DocumentOut[ContactHouseholdData]},
        **problem_responses(400, 401, 403, 404),
    },
)
async def associate(
    contactId: uuid.UUID,
    householdId: uuid.UUID,
    principal: Annotated[Principal, Depends(require("insert@contact-households"))],
    conn: WriteConnection,
) -> Response:
    if await repo.fetch_data(conn, HOUSEHOLDS.sql, principal.customer_id, householdId) is None:
        raise NotFound(f"No household with id {householdId}.")
    ctx = WriteContext(conn, principal, utc_now_ms())
    data = {"contactId": str(contactId), "householdId": str(householdId)}
    rendered, created = await service.create_from_data(ctx, CONTACT_HOUSEHOLDS, data)
    return document_response(rendered, 201 if created else 200)


@router.delete(
    PAIR,
    status_code=204,
    summary="Remove the association (soft delete; needs the etag)",
    responses=problem_responses(400, 401, 403, 404, 412, 428),
)
async def dissociate(
    contactId: uuid.UUID,
    householdId: uuid.UUID,
    principal: Annotated[Principal, Depends(require("destroy@contact-households"))],
    conn: WriteConnection,
    if_match: IfMatch = None,
    etag: EtagHeader = None,
) -> Response:
    found = await repo.find_first(
        conn,
        CONTACT_HOUSEHOLDS.sql,
        principal.customer_id,
        {"contactId": str(contactId), "householdId": str(householdId)},
    )
    if found is None:
        raise NotFound(f"Contact {contactId} is not associated with household {householdId}.")
    await service.delete_document(
        conn, CONTACT_HOUSEHOLDS, principal, found[0], precondition(if_match, etag)
    )
    return Response(status_code=204)
