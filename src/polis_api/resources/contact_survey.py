"""Which survey a contact gets in a campaign: the first matching segment's.

Segments are tried in precedence order and their criteria evaluated in Python over
the contact's document (workflow/segments.py): a campaign has a handful of
segments, each clause may compare a typed contact field with Polis' string values,
and one pure function is easier to test than SQL compiled per clause. Segments
whose survey has been deleted are passed over.
"""

from __future__ import annotations

import json
import uuid

import asyncpg

from polis_api.auth import Principal
from polis_api.documents import repository as repo
from polis_api.documents.repository import Rendered
from polis_api.documents.service import get_document
from polis_api.errors import NotFound
from polis_api.resources import references as refs
from polis_api.resources.contacts import CONTACTS
from polis_api.resources.segments import SEGMENTS
from polis_api.resources.surveys import SURVEYS
from polis_api.workflow.segments import criteria_match

_SEGMENTS_IN_ORDER = f"""
    SELECT g.data -> 'criteria' AS criteria, (g.data ->> 'surveyId')::uuid AS survey_id
    FROM {SEGMENTS.table} AS g
    WHERE g.customer_id = $1 AND (g.data ->> 'campaignId') = $2 AND NOT g.is_deleted
      AND EXISTS (SELECT 1 FROM {SURVEYS.table} AS s WHERE s.customer_id = $1
                  AND s.id = (g.data ->> 'surveyId')::uuid AND NOT s.is_deleted)
    ORDER BY (g.data ->> 'precedence')::integer, g.id
"""  # noqa: S608


async def survey_for_contact(
    conn: asyncpg.Connection, principal: Principal, campaign_id: uuid.UUID, contact_id: uuid.UUID
) -> Rendered:
    """The survey document; 404 for an unknown campaign or contact, or no match."""
    await refs.require_campaign(conn, principal, campaign_id)
    contact = await repo.fetch_rendered(conn, CONTACTS.sql, principal.customer_id, contact_id)
    if contact is None:
        raise NotFound(f"No contact with id {contact_id}.")
    document = json.loads(contact.body)
    for segment in await conn.fetch(_SEGMENTS_IN_ORDER, principal.customer_id, str(campaign_id)):
        if criteria_match(document, segment["criteria"]):
            return await get_document(conn, SURVEYS, principal, segment["survey_id"])
    raise NotFound(f"No segment of campaign {campaign_id} matches contact {contact_id}.")
