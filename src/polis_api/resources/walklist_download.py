"""GET /v1/walklists/{id}/contact-households: the canvasser's download (docs/turfs.md).

One statement renders the walk list's doors in walk order: each door record with its
contact and household embedded at ``data.contact`` and ``data.household`` (reached
through the door's contact-household). ``meta`` carries, once, what a phone needs to
show and record the doors: the campaign, its statuses and the survey of each contact.

With ``since`` the same rows are a change feed: an item's position is the latest
write of its door record, contact-household, contact or household, so a change to
any of them sends the door again; a door the list no longer holds (its reservation
names no walk list, or another one: the list was released, or another list took the
door after the lease ran out) or a deleted door record comes as a tombstone.

No ``from __future__ import annotations``: FastAPI reads these signatures at runtime.
"""

import json
import uuid
from collections.abc import Callable, Iterable
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Request, Response

from polis_api import jsoncodec
from polis_api.auth import Principal, require
from polis_api.documents import service
from polis_api.documents.listing import parse_list_request
from polis_api.documents.repository import FeedView, document_json_sql
from polis_api.documents.responses import json_response, problem_responses
from polis_api.resources import campaign_status_links as links
from polis_api.resources.campaigns import CAMPAIGNS
from polis_api.resources.contact_households import CONTACT_HOUSEHOLDS
from polis_api.resources.contacts import CONTACTS
from polis_api.resources.door_records import DOOR_RECORDS
from polis_api.resources.households import HOUSEHOLDS
from polis_api.resources.segments import SEGMENTS
from polis_api.resources.statuses import STATUSES
from polis_api.resources.surveys import SURVEYS
from polis_api.resources.walklists import WALKLISTS
from polis_api.workflow.segments import criteria_match

CanRead = Annotated[Principal, Depends(require(WALKLISTS.permission("read")))]

router = APIRouter(tags=[WALKLISTS.label])

# A token that records interactions but cannot manage walk lists is a canvasser's:
# it downloads only the lists assigned to it. Viewers and admins read every list.
_RECORDS_DOORS = "insert@interactions"
_MANAGES_WALKLISTS = "modify@walklists"


def _embedded(resource: str, alias: str) -> str:
    rendered = document_json_sql(resource, row=f"{alias}.")
    return f"CASE WHEN {alias}.id IS NULL THEN NULL ELSE to_jsonb({rendered}) END"


def _by_id(table: str, alias: str, doc_id: str) -> str:
    """The tenant's row of ``table`` with this id (deleted or not), looked up per door."""
    return (
        f"LEFT JOIN LATERAL (SELECT * FROM {table} WHERE customer_id = $1 "  # noqa: S608
        f"AND id = {doc_id} LIMIT 1) AS {alias} ON true"
    )


def download_view(walklist_at: int, *, live_only: bool = False) -> FeedView:
    """The walk list's doors; parameters from ``walklist_at``: the walk list's id, its
    campaign id (text) and its doors (contact-household ids, in walk order).

    Each door is looked up on its own, by key: PostgreSQL cannot tell how few rows a
    list of ids matches and, given plain joins, hashed the whole campaign and every
    contact and household of the tenant (tens of milliseconds at 20 k households,
    seconds at millions). A ``LIMIT 1`` subquery per hop (each key is unique, so it
    changes no answer) keeps the lookups per door and tells the planner so.

    ``live_only`` (the download without ``since``) finds the door's live record
    through its unique index, which holds live records only. The feed needs deleted
    records too, which no index on the door's key holds: it reads the campaign's
    records once."""
    walklist, campaign, doors = (f"${walklist_at + n}" for n in range(3))
    key = (
        f"r.customer_id = $1 AND (r.data ->> 'campaignId') = {campaign}::text "
        "AND (r.data ->> 'contactHouseholdId') = w.door_id::text"
    )
    record = (
        f"CROSS JOIN LATERAL (SELECT * FROM {DOOR_RECORDS.table} AS r "  # noqa: S608
        f"WHERE {key} AND NOT r.is_deleted LIMIT 1) AS r"
        if live_only
        else f"JOIN {DOOR_RECORDS.table} r ON {key}"
    )
    data = (
        "r.data || jsonb_build_object("
        f"'contact', {_embedded(CONTACTS.name, 'c')}, "
        f"'household', {_embedded(HOUSEHOLDS.name, 'h')})"
    )
    held = f"(r.data -> 'reservation' ->> 'walklistId') IS NOT DISTINCT FROM {walklist}::text"
    source = f"""(
        SELECT r.id, r.customer_id, r.security_group_id, {data} AS data, r.created,
               r.modified, r.created_by, r.modified_by, r.etag,
               r.is_deleted OR NOT coalesce({held}, false) AS is_deleted,
               greatest(r.txid, ch.txid, c.txid, h.txid) AS txid,
               w.walk_order, (ch.data ->> 'contactId') AS contact_id
        FROM unnest({doors}::uuid[]) WITH ORDINALITY AS w(door_id, walk_order)
        {record}
        {_by_id(CONTACT_HOUSEHOLDS.table, "ch", "w.door_id")}
        {_by_id(CONTACTS.table, "c", "(ch.data ->> 'contactId')::uuid")}
        {_by_id(HOUSEHOLDS.table, "h", "(ch.data ->> 'householdId')::uuid")}
    ) AS {DOOR_RECORDS.table}"""  # noqa: S608
    return FeedView(source, document_json_sql(DOOR_RECORDS.name))


@router.get(
    WALKLISTS.prefix + "/{id}/contact-households",
    summary="The canvasser's download: the walk list's doors, in walk order",
    description=(
        "Each item is a door record (contact-household-campaign record) the walk list "
        "holds, with its contact at `data.contact` and its household at "
        "`data.household`, in walk order, all in one page (a walk list has at most "
        "POLIS_MAX_WALKLIST_DOORS doors). `meta` holds, once: `campaign` (the campaign "
        "document; its display layout is `meta.fields`), `statuses` (the campaign's "
        "linked statuses, or every status of the tenant when it links none), "
        "`surveys` (the survey documents used) and `surveyByContact` (contact id → the "
        "survey id of the first segment, by precedence, whose criteria match; contacts "
        "no segment matches are absent).\n\n"
        "With `since` (docs/sync.md) the items are a change feed, paged by `limit`: a "
        "door comes again when its record, contact-household, contact or household "
        "changes, and as a tombstone when the list no longer holds it. `meta` then "
        "also carries `next` and `more`.\n\n"
        "A token that records interactions but cannot modify walk lists (a canvasser) "
        "downloads only the walk lists assigned to its `sub`; any other answers 404. "
        "Viewers and admins download every walk list of the tenant."
    ),
    responses=problem_responses(400, 401, 403, 404, 410),
)
async def download(id: uuid.UUID, request: Request, principal: CanRead) -> Response:
    listing = parse_list_request(
        request.query_params,
        DOOR_RECORDS.field_policy,
        request.app.state.settings,
        principal.customer_id,
    )
    async with request.app.state.pool.acquire() as conn, conn.transaction(readonly=True):
        walklist = await _walklist_for(conn, principal, id)
        campaign_id = str(walklist["campaignId"])
        values = (str(id), campaign_id, walklist.get("doors") or [])
        if listing.feed:
            # As below, the page stays as rendered; only its meta gains the campaign's.
            page = await service.view_feed_page(conn, download_view, listing, *values)
            extra = await _meta(
                conn, principal, campaign_id, lambda: _contacts(_live(json.loads(page.body)))
            )
            text = page.with_meta(jsoncodec.dumps({**jsoncodec.loads(page.meta), **extra}))
        else:
            # The doors go out as PostgreSQL rendered them (up to 500 documents, each
            # with two embedded): decoded only when a segment must read the contacts.
            doors = await _in_walk_order(conn, principal, values)
            extra = await _meta(
                conn, principal, campaign_id, lambda: _contacts(map(json.loads, doors))
            )
            text = f'{{"data":[{",".join(doors)}],"meta":{jsoncodec.dumps(extra)}}}'
    return json_response(text)


def _live(page: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for item in page["data"] if not item["meta"]["isDeleted"]]


def _contacts(doors: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [door["data"]["contact"] for door in doors if door["data"].get("contact")]


async def _walklist_for(
    conn: asyncpg.Connection, principal: Principal, walklist_id: uuid.UUID
) -> dict[str, Any]:
    rendered = await service.get_document(conn, WALKLISTS, principal, walklist_id)
    data: dict[str, Any] = json.loads(rendered.body)["data"]
    canvasser_only = (
        _RECORDS_DOORS in principal.permissions and _MANAGES_WALKLISTS not in principal.permissions
    )
    if canvasser_only and data.get("assigneeId") != str(principal.user_id):
        raise service.not_found(WALKLISTS, walklist_id)
    return data


async def _in_walk_order(
    conn: asyncpg.Connection, principal: Principal, values: tuple[Any, ...]
) -> list[str]:
    """The held doors' documents as JSON texts, in walk order."""
    view = download_view(2, live_only=True)
    rows = await conn.fetch(
        f"SELECT ({view.listed})::text FROM {view.source} "  # noqa: S608
        "WHERE NOT is_deleted ORDER BY walk_order",
        principal.customer_id,
        *values,
    )
    return [row[0] for row in rows]


_SEGMENTS_IN_ORDER = f"""
    SELECT g.data -> 'criteria' AS criteria, s.id AS survey_id
    FROM {SEGMENTS.table} AS g
    JOIN {SURVEYS.table} AS s ON s.customer_id = g.customer_id
     AND s.id = (g.data ->> 'surveyId')::uuid AND NOT s.is_deleted
    WHERE g.customer_id = $1 AND (g.data ->> 'campaignId') = $2 AND NOT g.is_deleted
    ORDER BY (g.data ->> 'precedence')::integer, g.id
"""  # noqa: S608

_STATUSES = f"""
    SELECT ({document_json_sql(STATUSES.name)})::text FROM {STATUSES.table}
    WHERE customer_id = $1 AND NOT is_deleted AND (cardinality($2::uuid[]) = 0 OR id = ANY($2))
    ORDER BY id
"""  # noqa: S608


async def _meta(
    conn: asyncpg.Connection,
    principal: Principal,
    campaign_id: str,
    contacts_of_doors: Callable[[], list[dict[str, Any]]],
) -> dict[str, Any]:
    campaign = json.loads(
        (await service.get_document(conn, CAMPAIGNS, principal, uuid.UUID(campaign_id))).body
    )
    linked = await links.linked_status_ids(conn, principal.customer_id, campaign_id)
    statuses = await conn.fetch(_STATUSES, principal.customer_id, sorted(linked))
    segments = await conn.fetch(_SEGMENTS_IN_ORDER, principal.customer_id, campaign_id)
    survey_by_contact: dict[str, str] = {}
    for contact in contacts_of_doors() if segments else []:
        for segment in segments:
            if criteria_match(contact, segment["criteria"]):
                survey_by_contact[contact["id"]] = str(segment["survey_id"])
                break
    # Rendered as a GET renders them (a survey shows its current version).
    used = [
        json.loads((await service.get_document(conn, SURVEYS, principal, uuid.UUID(s))).body)
        for s in sorted(set(survey_by_contact.values()))
    ]
    return {
        "campaign": campaign,
        "fields": campaign["data"].get("fields"),
        "statuses": [json.loads(row[0]) for row in statuses],
        "surveys": used,
        "surveyByContact": survey_by_contact,
    }
