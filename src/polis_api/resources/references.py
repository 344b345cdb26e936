"""Checks that a document's references name documents of the same tenant (SPEC §2).

A reference in a body that points nowhere is a 400 naming the field; a path
parameter that points nowhere is a 404 (the caller decides which by using
``require_*`` with or without a field path).
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from polis_api.auth import Principal
from polis_api.documents import repository as repo
from polis_api.documents.resource import Resource
from polis_api.errors import NotFound, invalid_field
from polis_api.resources.campaigns import CAMPAIGNS
from polis_api.resources.contact_households import CONTACT_HOUSEHOLDS
from polis_api.resources.households import HOUSEHOLDS
from polis_api.resources.statuses import STATUSES
from polis_api.workflow.door import StatusInfo


async def _data_or_fail(
    conn: asyncpg.Connection,
    resource: Resource,
    principal: Principal,
    doc_id: Any,
    field: str | None,
) -> dict[str, Any]:
    try:
        parsed = doc_id if isinstance(doc_id, uuid.UUID) else uuid.UUID(str(doc_id))
    except ValueError:
        parsed = None
    data = (
        await repo.fetch_data(conn, resource.sql, principal.customer_id, parsed)
        if parsed is not None
        else None
    )
    if data is not None:
        return data
    if field is None:
        raise NotFound(f"No {resource.label} with id {doc_id}.")
    raise invalid_field(field, f"no {resource.label} with id {doc_id} in your tenant")


async def require_campaign(
    conn: asyncpg.Connection, principal: Principal, campaign_id: Any, field: str | None = None
) -> dict[str, Any]:
    return await _data_or_fail(conn, CAMPAIGNS, principal, campaign_id, field)


async def require_household(
    conn: asyncpg.Connection, principal: Principal, household_id: Any, field: str | None = None
) -> dict[str, Any]:
    return await _data_or_fail(conn, HOUSEHOLDS, principal, household_id, field)


async def require_contact_household(
    conn: asyncpg.Connection, principal: Principal, doc_id: Any, field: str | None = None
) -> dict[str, Any]:
    return await _data_or_fail(conn, CONTACT_HOUSEHOLDS, principal, doc_id, field)


async def contact_household_id(
    conn: asyncpg.Connection, principal: Principal, contact_id: uuid.UUID, household_id: uuid.UUID
) -> str | None:
    """The id of the live association between a contact and a household, if any."""
    found = await repo.find_first(
        conn,
        CONTACT_HOUSEHOLDS.sql,
        principal.customer_id,
        {"contactId": str(contact_id), "householdId": str(household_id)},
    )
    return str(found[0]) if found is not None else None


async def require_status(
    conn: asyncpg.Connection, principal: Principal, status_id: Any, field: str = "/data/statusId"
) -> StatusInfo:
    data = await _data_or_fail(conn, STATUSES, principal, status_id, field)
    return StatusInfo(id=str(status_id), contact_state=str(data["contactState"]))


async def optional_status(
    conn: asyncpg.Connection, principal: Principal, status_id: Any, field: str = "/data/statusId"
) -> StatusInfo | None:
    if status_id is None:
        return None
    return await require_status(conn, principal, status_id, field)


async def default_status_id(
    conn: asyncpg.Connection, principal: Principal, state: str
) -> str | None:
    """The tenant's default status for a state: the oldest, so Polis' list order wins."""
    found = await repo.find_first(
        conn,
        STATUSES.sql,
        principal.customer_id,
        {"contactState": state, "defaultStatus": "true"},
    )
    return str(found[0]) if found is not None else None
