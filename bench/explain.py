"""EXPLAIN ANALYZE of the statements polis-api runs on the benchmark's hot paths.

The list statements are built by the server's own code (``parse_list_request`` and
``list_sql``), so the plans are those of the very SQL the server sends.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
from common import BULK_CAMPAIGN, MEMBER_LIST, TENANT, campaign_id, derived_uuid
from starlette.datastructures import QueryParams

from polis_api.config import Settings
from polis_api.documents import repository
from polis_api.documents.listing import parse_list_request
from polis_api.documents.resource import Resource
from polis_api.resources.door_records import DOOR_RECORDS
from polis_api.resources.interactions import INTERACTIONS
from polis_api.resources.lists import LIST_MEMBERS

SETTINGS = Settings(jwt_secret="x" * 32)
CUSTOMER = uuid.UUID(TENANT)


@dataclass
class Plan:
    name: str
    table: str
    sql: str
    args: list[Any]
    analyze: bool = True
    # Text that must appear in an "Index Cond" for an index to serve the condition: an
    # index scan that only filters rows as it walks them in id order does not count.
    keys: tuple[str, ...] = ()


def _list(
    name: str, resource: Resource, query: str, scope: dict[str, str] | None = None, **kw: Any
) -> Plan:
    listing = parse_list_request(QueryParams(query), resource.filterable, SETTINGS, CUSTOMER, scope)
    # The statement the server sends for one page (ids first, where it does that).
    build = getattr(repository, "page_sql", repository.list_sql)
    sql, args = build(resource.sql, listing.query)
    return Plan(name, resource.sql.table, sql, args, **kw)


def plans(deep_skip: int, since: str, sample: dict[str, str]) -> list[Plan]:
    campaign = campaign_id(0)
    doors = {"/data/campaignId": campaign}
    modified = f'filter=/meta/modified gt "{since}"'
    by_campaign = f"filter[/data/campaignId]={campaign}&limit=50"
    chid = sample["pair"]
    return [
        Plan(
            "GET interaction by id",
            "interactions",
            INTERACTIONS.sql.get,
            [CUSTOMER, uuid.UUID(sample["interaction"])],
            keys=("id =",),
        ),
        _list("list-50, first page", INTERACTIONS, by_campaign, keys=("'campaignId'",)),
        _list(
            f"list-50, deep page (skip {deep_skip})",
            INTERACTIONS,
            f"{by_campaign}&skip={deep_skip}",
            keys=("'campaignId'",),
        ),
        _list(
            "filter /data/contactId",
            INTERACTIONS,
            f"filter[/data/contactId]={sample['contact']}",
            keys=("'contactId'",),
        ),
        _list(
            "filter /data/contactHouseholdId",
            INTERACTIONS,
            f"filter[/data/contactHouseholdId]={chid}",
            keys=("'contactHouseholdId'",),
        ),
        _list(
            "filter /data/householdId",
            INTERACTIONS,
            f"filter[/data/householdId]={sample['household']}",
            keys=("'householdId'",),
        ),
        _list(
            "filter /meta/modified gt", INTERACTIONS, f"{modified}&limit=50", keys=("modified >",)
        ),
        _list(
            "filter /meta/created gt",
            INTERACTIONS,
            f'filter=/meta/created gt "{since}"&limit=50',
            keys=("created >",),
        ),
        _list(
            "campaign's door records (map), first 100",
            DOOR_RECORDS,
            "",
            doors,
            keys=("'campaignId'",),
        ),
        _list(
            "delta sync of a campaign's doors",
            DOOR_RECORDS,
            modified,
            doors,
            keys=("'campaignId'", "modified >"),
        ),
        _list(
            "a list's members with contact and household, page of 1000",
            LIST_MEMBERS,
            "limit=1000",
            {"/data/listId": MEMBER_LIST},
            keys=("'listId'",),
        ),
        Plan(
            "door of (campaign, contact-household), FOR UPDATE",
            "contact_household_campaigns",
            DOOR_RECORDS.sql.get_for_write_by_natural_key,
            [CUSTOMER, campaign_id(BULK_CAMPAIGN), chid],
            analyze=False,  # FOR UPDATE: planning only
            keys=("'campaignId'", "'contactHouseholdId'"),
        ),
        Plan(
            "contact-household of (contact, household)",
            "contact_households",
            "SELECT id, data FROM contact_households WHERE customer_id = $1 AND NOT is_deleted "
            "AND (data ->> 'contactId') = $2 AND (data ->> 'householdId') = $3 "
            "ORDER BY created, id LIMIT 1",
            [CUSTOMER, sample["contact"], sample["household"]],
            keys=("'contactId'", "'householdId'"),
        ),
    ]


@dataclass
class PlanResult:
    name: str
    indexes: list[str]
    sequential: bool
    sort: bool
    ms: float | None
    text: str
    unserved: list[str]  # conditions that no "Index Cond" carries

    @property
    def uses_index(self) -> bool:
        return bool(self.indexes) and not self.sequential and not self.unserved


async def explain(conn: asyncpg.Connection, plan: Plan) -> PlanResult:
    options = "ANALYZE, BUFFERS" if plan.analyze else "COSTS"
    rows = await conn.fetch(f"EXPLAIN ({options}) {plan.sql}", *plan.args)
    text = "\n".join(row[0] for row in rows)
    conditions = re.findall(r"Index Cond: (.*)", text)
    took = re.search(r"Execution Time: ([\d.]+) ms", text)
    return PlanResult(
        name=plan.name,
        indexes=_index_names(text),
        sequential=f"Seq Scan on {plan.table}" in text,
        sort=bool(re.search(r"^\s*(->\s*)?(Incremental )?Sort\b", text, re.M)),
        ms=float(took.group(1)) if took else None,
        text=text,
        unserved=[key for key in plan.keys if not any(key in c for c in conditions)],
    )


def _index_names(text: str) -> list[str]:
    names = re.findall(r"Index (?:Only )?Scan(?: Backward)? using (\S+)", text)
    names += re.findall(r"Bitmap Index Scan on (\S+)", text)
    return sorted(set(names))


async def explain_all(url: str, deep_skip: int, since: str) -> list[PlanResult]:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT id::text, data ->> 'contactId', data ->> 'householdId', "
            "data ->> 'contactHouseholdId' FROM interactions WHERE customer_id = $1 AND id = $2",
            CUSTOMER,
            uuid.UUID(derived_uuid("interaction", 0)),  # campaign 0's first (dataset.py)
        )
        sample = dict(zip(("interaction", "contact", "household", "pair"), row, strict=True))
        return [await explain(conn, plan) for plan in plans(deep_skip, since, sample)]
    finally:
        await conn.close()
