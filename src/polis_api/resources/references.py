"""Checks that a document's references name documents of the same tenant.

A reference in a body that points nowhere is a 400 naming the field; a path
parameter that points nowhere is a 404 (the caller decides which by using
``require_*`` with or without a field path).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from polis_api.auth import Principal
from polis_api.documents import repository as repo
from polis_api.documents.resource import Resource
from polis_api.errors import NotFound, invalid_field
from polis_api.resources import campaign_status_links, canvasser_knocks, survey_versions
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


async def require_document(
    conn: asyncpg.Connection,
    resource: Resource,
    principal: Principal,
    doc_id: Any,
    field: str | None = None,
) -> dict[str, Any]:
    """The data of a live ``resource`` document of the caller's tenant: else a 400
    naming ``field`` (a body reference) or a 404 (a path parameter, no field)."""
    return await _data_or_fail(conn, resource, principal, doc_id, field)


async def require_campaign(
    conn: asyncpg.Connection, principal: Principal, campaign_id: Any, field: str | None = None
) -> dict[str, Any]:
    return await _data_or_fail(conn, CAMPAIGNS, principal, campaign_id, field)


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


# Table names come from the resource declarations; every value is a parameter.
_INTERACTION_REFERENCES = f"""
        SELECT
          EXISTS (SELECT 1 FROM {CAMPAIGNS.table} WHERE customer_id = $1 AND id = $2
                  AND NOT is_deleted) AS campaign_exists,
          (SELECT data FROM {CONTACT_HOUSEHOLDS.table} WHERE customer_id = $1 AND id = $3
                  AND NOT is_deleted) AS contact_household,
          (SELECT data FROM {HOUSEHOLDS.table} WHERE customer_id = $1 AND id = $4
                  AND NOT is_deleted) AS household,
          (SELECT data ->> 'contactState' FROM {STATUSES.table} WHERE customer_id = $1
                  AND id = $5 AND NOT is_deleted) AS status_state,
          (SELECT json_object_agg(state, id) FROM (
             SELECT DISTINCT ON (data ->> 'contactState') data ->> 'contactState' AS state, id
             FROM {STATUSES.table} WHERE customer_id = $1 AND NOT is_deleted
               AND (data ->> 'defaultStatus') = 'true'
             ORDER BY data ->> 'contactState', created, id) AS first_defaults
          ) AS default_statuses,
          ARRAY({campaign_status_links.LIVE_LINKED_SQL}) AS campaign_status_ids,
          (SELECT json_build_object('questions', questions, 'latest', latest)
           FROM ({survey_versions.script_sql("$1", "$6", "$7")}) AS script) AS survey_script,
          {canvasser_knocks.try_lock_sql("$1::text", "$8::text")} AS canvasser_locked
        """  # noqa: S608


@dataclass(frozen=True, slots=True)
class InteractionReferences:
    """Everything recording an interaction needs to know about the tenant's documents."""

    campaign_exists: bool
    contact_household: dict[str, Any] | None
    household: dict[str, Any] | None
    status: StatusInfo | None
    status_missing: bool
    default_statuses: dict[str, str]  # contactState -> the default status id
    campaign_status_ids: frozenset[str]  # the campaign's linked statuses (none: all allowed)
    # The answered survey: {"questions": [...] or None, "latest": n}; None: no such survey.
    survey_script: dict[str, Any] | None
    canvasser_locked: bool  # whether the canvasser's lock was free and is now held


async def interaction_references(
    conn: asyncpg.Connection, principal: Principal, data: dict[str, Any], canvasser: uuid.UUID
) -> InteractionReferences:
    """One round trip for every look-up an interaction needs (the write hot path),
    which also tries to take ``canvasser``'s lock (canvasser_knocks.py).

    The default statuses come along for the door update: the first in Polis' list
    order (the oldest) wins for each state.
    """
    status_id = data.get("statusId")
    survey = data["survey"]
    row = await conn.fetchrow(
        _INTERACTION_REFERENCES,
        principal.customer_id,
        uuid.UUID(data["campaignId"]),
        uuid.UUID(data["contactHouseholdId"]),
        uuid.UUID(data["householdId"]),
        uuid.UUID(status_id) if status_id is not None else None,
        uuid.UUID(str(survey["surveyId"])),
        survey.get("version"),
        str(canvasser),
    )
    state = row["status_state"]
    return InteractionReferences(
        campaign_exists=row["campaign_exists"],
        contact_household=row["contact_household"],
        household=row["household"],
        status=StatusInfo(id=str(status_id), contact_state=state) if state is not None else None,
        status_missing=status_id is not None and state is None,
        default_statuses=row["default_statuses"] or {},
        campaign_status_ids=frozenset(row["campaign_status_ids"]),
        survey_script=row["survey_script"],
        canvasser_locked=row["canvasser_locked"],
    )
