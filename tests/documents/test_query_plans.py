"""Every allowed filter, a campaign's door list, its delta sync and the change feed
are index-served.

The queries are the ones the server itself compiles (``parse_list_request`` and
``page_sql``), explained with real values against a tenant with tens of thousands
of rows, after ANALYZE: a sequential scan of the table would be a performance bug
that only shows at scale.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from starlette.datastructures import QueryParams

from polis_api.config import Settings
from polis_api.documents.feed import BEGINNING
from polis_api.documents.listing import parse_list_request
from polis_api.documents.repository import changes_sql, page_sql, snapshot_horizon
from polis_api.documents.resource import Resource
from polis_api.resources.door_records import DOOR_RECORDS
from polis_api.resources.households import HOUSEHOLDS
from polis_api.resources.interactions import INTERACTIONS

INTERACTIONS_ROWS = 30_000
DOORS_ROWS = 20_000
HOUSEHOLD_ROWS = 20_000
RECENT = "2026-11-01T00:00:00.000Z"


@dataclass(frozen=True)
class Dataset:
    customer_id: uuid.UUID
    campaign_id: str
    contact_id: str
    contact_household_id: str
    household_id: str


# Rows spread over 30 days before RECENT, so "changed since RECENT" is nearly nothing.
_INSERT_INTERACTIONS = """
INSERT INTO interactions (customer_id, id, security_group_id, data, created, modified,
                          created_by, modified_by, etag)
SELECT $1, gen_random_uuid(), $1,
       jsonb_build_object(
         'campaignId', (SELECT ($2::uuid[])[1 + n % 50]),
         'contactId', md5('contact' || (n % 5000))::uuid,
         'contactHouseholdId', md5('pair' || (n % 8000))::uuid,
         'householdId', md5('household' || (n % 6000))::uuid,
         'timestamp', '2026-10-01T00:00:00.000Z', 'unavailable', false),
       ts, ts, $1, $1, 'x'
FROM generate_series(1, $3) AS n,
     LATERAL (SELECT timestamptz '2026-10-01' + (n % 43200) * interval '1 minute' AS ts) AS t
"""
_INSERT_DOORS = """
INSERT INTO contact_household_campaigns (customer_id, id, security_group_id, data, created,
                                         modified, created_by, modified_by, etag)
SELECT $1, gen_random_uuid(), $1,
       jsonb_build_object('campaignId', (SELECT ($2::uuid[])[1 + n % 20]),
                          'contactHouseholdId', gen_random_uuid(), 'state', 'not-contacted-normal'),
       ts, ts, $1, $1, 'x'
FROM generate_series(1, $3) AS n,
     LATERAL (SELECT timestamptz '2026-10-01' + (n % 43200) * interval '1 minute' AS ts) AS t
"""
_INSERT_HOUSEHOLDS = """
INSERT INTO households (customer_id, id, security_group_id, data, created, modified,
                        created_by, modified_by, etag)
SELECT $1, gen_random_uuid(), $1,
       jsonb_build_object('externalId', 'voter-' || n, 'unitNum', (n % 300)::text),
       now(), now(), $1, $1, 'x'
FROM generate_series(1, $2) AS n
"""


@pytest.fixture(scope="module")
async def dataset(app: Any) -> AsyncIterator[Dataset]:
    pool: asyncpg.Pool = app.state.pool
    customer_id = uuid.uuid4()
    campaigns = [uuid.uuid4() for _ in range(50)]
    async with pool.acquire() as conn:
        await conn.execute(_INSERT_INTERACTIONS, customer_id, campaigns, INTERACTIONS_ROWS)
        await conn.execute(_INSERT_DOORS, customer_id, campaigns, DOORS_ROWS)
        await conn.execute(_INSERT_HOUSEHOLDS, customer_id, HOUSEHOLD_ROWS)
        for table in ("interactions", "contact_household_campaigns", "households"):
            await conn.execute(f"VACUUM ANALYZE {table}")
    yield Dataset(
        customer_id=customer_id,
        campaign_id=str(campaigns[7]),
        contact_id=str(uuid.UUID(hex=_md5("contact42"))),
        contact_household_id=str(uuid.UUID(hex=_md5("pair42"))),
        household_id=str(uuid.UUID(hex=_md5("household42"))),
    )


def _md5(text: str) -> str:
    import hashlib

    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


async def _plan(
    app: Any, settings: Settings, resource: Resource, query: str, data: Dataset, **scope: str
) -> dict[str, Any]:
    listing = parse_list_request(
        QueryParams(query), resource.filterable, settings, data.customer_id, scope or None
    )
    text, args = page_sql(resource.sql, listing.query)
    async with app.state.pool.acquire() as conn:
        explained = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {text}", *args)
    plan: dict[str, Any] = (json.loads(explained) if isinstance(explained, str) else explained)[0][
        "Plan"
    ]
    return plan


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(node for child in plan.get("Plans", []) for node in _nodes(child))]


def _assert_index_served(plan: dict[str, Any], table: str) -> None:
    nodes = _nodes(plan)
    scans = [n for n in nodes if n.get("Relation Name") == table]
    assert scans, plan
    assert not [n for n in scans if n["Node Type"] == "Seq Scan"], json.dumps(plan, indent=1)
    assert any("Index" in n["Node Type"] for n in scans), json.dumps(plan, indent=1)


@pytest.mark.parametrize(
    "query",
    [
        "filter[/data/campaignId]={campaign_id}",
        'filter=/data/contactId eq "{contact_id}"',
        'filter=/data/contactHouseholdId eq "{contact_household_id}"',
        "filter[/data/householdId]={household_id}",
        f'filter=/meta/modified gt "{RECENT}"',
        f'filter=/meta/created gt "{RECENT}"',
        "filter[/data/campaignId]={campaign_id}&skip=400&limit=50",
    ],
)
async def test_every_allowed_interaction_filter_uses_an_index(
    app: Any, settings: Settings, dataset: Dataset, query: str
) -> None:
    plan = await _plan(app, settings, INTERACTIONS, query.format(**vars(dataset)), dataset)

    _assert_index_served(plan, "interactions")


@pytest.mark.parametrize(
    "query", ["limit=100", f'filter=/meta/modified gt "{RECENT}"', 'filter=/data/state eq "x"']
)
async def test_a_campaigns_door_list_and_delta_sync_use_an_index(
    app: Any, settings: Settings, dataset: Dataset, query: str
) -> None:
    plan = await _plan(
        app, settings, DOOR_RECORDS, query, dataset, **{"/data/campaignId": dataset.campaign_id}
    )

    _assert_index_served(plan, "contact_household_campaigns")


@pytest.mark.parametrize(
    "query",
    [
        "filter[/data/externalId]=voter-1234",
        'filter=/data/unitNum eq "42"',
        f'filter=/meta/modified gt "{RECENT}"',
    ],
)
async def test_household_filters_use_an_index(
    app: Any, settings: Settings, dataset: Dataset, query: str
) -> None:
    plan = await _plan(app, settings, HOUSEHOLDS, query, dataset)

    _assert_index_served(plan, "households")


async def _feed_plan(
    app: Any, settings: Settings, resource: Resource, query: str, data: Dataset, **scope: str
) -> dict[str, Any]:
    listing = parse_list_request(
        QueryParams(query), resource.filterable, settings, data.customer_id, scope or None
    )
    assert listing.feed
    after = listing.since.after if listing.since is not None else BEGINNING
    async with app.state.pool.acquire() as conn:
        horizon = await snapshot_horizon(conn)
        text, args = changes_sql(resource.sql, listing.query, after, horizon.oldest_running, 101)
        explained = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {text}", *args)
    plan: dict[str, Any] = (json.loads(explained) if isinstance(explained, str) else explained)[0][
        "Plan"
    ]
    return plan


@pytest.mark.parametrize(
    ("resource", "table", "query"),
    [
        (INTERACTIONS, "interactions", "since="),
        (HOUSEHOLDS, "households", "since=&limit=500"),
        (DOOR_RECORDS, "contact_household_campaigns", "since="),
    ],
)
async def test_the_change_feed_walks_the_txid_index(
    app: Any, settings: Settings, dataset: Dataset, resource: Resource, table: str, query: str
) -> None:
    plan = await _feed_plan(app, settings, resource, query, dataset)

    _assert_walks(plan, table, f"ix_{table}_txid")


@pytest.mark.parametrize(
    ("resource", "table", "scope", "query"),
    [
        (INTERACTIONS, "interactions", {}, "since=&filter[/data/campaignId]={campaign_id}"),
        (DOOR_RECORDS, "contact_household_campaigns", {"/data/campaignId": ""}, "since="),
    ],
)
async def test_a_campaigns_change_feed_walks_its_campaign_index(
    app: Any,
    settings: Settings,
    dataset: Dataset,
    resource: Resource,
    table: str,
    scope: dict[str, str],
    query: str,
) -> None:
    scope = {path: dataset.campaign_id for path in scope}
    plan = await _feed_plan(
        app, settings, resource, query.format(**vars(dataset)), dataset, **scope
    )

    _assert_walks(plan, table, f"ix_{table}_campaign_txid")


def _assert_walks(plan: dict[str, Any], table: str, index: str) -> None:
    scans = [n for n in _nodes(plan) if n.get("Relation Name") == table]
    assert [n.get("Index Name") for n in scans] == [index], json.dumps(plan, indent=1)
    # In (txid, id) order straight from the index: no sort of the tenant's rows.
    assert not [n for n in _nodes(plan) if n["Node Type"] == "Sort"], json.dumps(plan, indent=1)
