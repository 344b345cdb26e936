"""bbox and near are served by the households' GiST indexes (docs/geography.md), on
households and on a campaign's doors.

As in test_query_plans: the very SQL the server compiles, explained with real values
against a tenant with tens of thousands of rows after ANALYZE.
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
from polis_api.documents.listing import parse_list_request
from polis_api.documents.repository import page_sql
from polis_api.documents.representations import GEOJSON, JSON, Representation
from polis_api.documents.resource import Resource
from polis_api.resources.door_records import DOOR_RECORDS
from polis_api.resources.households import HOUSEHOLDS
from polis_api.resources.walklist_download import download_view

ROWS = 20_000
CAMPAIGNS = 20

# A 200 x 100 grid of households, 0.005° apart, around Decatur, GA; each with one
# contact-household and one door record in one of the campaigns.
_INSERT = """
INSERT INTO households (customer_id, id, security_group_id, data, created, modified,
                        created_by, modified_by, etag)
SELECT $1::uuid, md5($1::text || 'h' || n)::uuid, $1,
       jsonb_build_object('address', jsonb_build_object('coords', jsonb_build_object(
         'lat', 33.5 + (n % 200) * 0.005, 'lng', -84.5 + (n / 200) * 0.005))),
       now(), now(), $1, $1, 'x'
FROM generate_series(1, $2) AS n;
"""
_PAIRS = """
INSERT INTO contact_households (customer_id, id, security_group_id, data, created, modified,
                                created_by, modified_by, etag)
SELECT $1::uuid, md5($1::text || 'ch' || n)::uuid, $1,
       jsonb_build_object('contactId', gen_random_uuid(),
                          'householdId', md5($1::text || 'h' || n)::uuid),
       now(), now(), $1, $1, 'x'
FROM generate_series(1, $2) AS n;
"""
_DOORS = """
INSERT INTO contact_household_campaigns (customer_id, id, security_group_id, data, created,
                                         modified, created_by, modified_by, etag)
SELECT $1::uuid, gen_random_uuid(), $1,
       jsonb_build_object('campaignId', ($3::uuid[])[1 + n % $4],
                          'contactHouseholdId', md5($1::text || 'ch' || n)::uuid,
                          'state', 'not-contacted-normal'),
       now(), now(), $1, $1, 'x'
FROM generate_series(1, $2) AS n;
"""


@dataclass(frozen=True)
class Dataset:
    customer_id: uuid.UUID
    campaign_id: str


@pytest.fixture(scope="module")
async def dataset(app: Any) -> AsyncIterator[Dataset]:
    pool: asyncpg.Pool = app.state.pool
    customer_id = uuid.uuid4()
    campaigns = [uuid.uuid4() for _ in range(CAMPAIGNS)]
    async with pool.acquire() as conn:
        await conn.execute(_INSERT, customer_id, ROWS)
        await conn.execute(_PAIRS, customer_id, ROWS)
        await conn.execute(_DOORS, customer_id, ROWS, campaigns, CAMPAIGNS)
        for table in ("households", "contact_households", "contact_household_campaigns"):
            await conn.execute(f"VACUUM ANALYZE {table}")
    yield Dataset(customer_id, str(campaigns[3]))


async def _plan(
    app: Any,
    settings: Settings,
    resource: Resource,
    query: str,
    data: Dataset,
    representation: Representation = JSON,
    **scope: str,
) -> dict[str, Any]:
    listing = parse_list_request(
        QueryParams(query),
        resource.field_policy,
        settings,
        data.customer_id,
        scope or None,
        geo=resource.geo,
        representation=representation,
    )
    text, args = page_sql(resource.sql, listing.query, representation.item(resource.sql))
    async with app.state.pool.acquire() as conn:
        explained = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {text}", *args)
    plan: dict[str, Any] = (json.loads(explained) if isinstance(explained, str) else explained)[0][
        "Plan"
    ]
    return plan


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(node for child in plan.get("Plans", []) for node in _nodes(child))]


def _assert_uses(plan: dict[str, Any], index: str) -> None:
    """``index`` serves the query (either GiST index, for ``"gist"``), and no table is
    read whole."""
    nodes = _nodes(plan)
    wanted = {"ix_households_point", "ix_households_earth"} if index == "gist" else {index}
    assert any(node.get("Index Name") in wanted for node in nodes), json.dumps(plan, indent=1)
    seq = [node.get("Relation Name") for node in nodes if node["Node Type"] == "Seq Scan"]
    assert not seq, json.dumps(plan, indent=1)


@pytest.mark.parametrize(
    ("query", "index"),
    [
        ("bbox=33.6,-84.4,33.62,-84.38", "ix_households_point"),
        ("bbox=33.6,-84.4,33.62,-84.38&sort=/data/address/coords/lat", "ix_households_point"),
        ("bbox=-20,179,-15,-179", "ix_households_point"),
        ("near=33.6,-84.4", "ix_households_earth"),
        ("near=33.6,-84.4&radius=1", "ix_households_earth"),
        ("near=33.6,-84.4&radius=1&bbox=33.5,-84.5,33.7,-84.3", "gist"),
    ],
)
async def test_household_bbox_and_near_use_a_gist_index(
    app: Any, settings: Settings, dataset: Dataset, query: str, index: str
) -> None:
    plan = await _plan(app, settings, HOUSEHOLDS, query, dataset)

    _assert_uses(plan, index)


async def test_nearest_first_walks_the_index_in_distance_order(
    app: Any, settings: Settings, dataset: Dataset
) -> None:
    plan = await _plan(app, settings, HOUSEHOLDS, "near=33.6,-84.4&limit=50", dataset)

    # The page's ids come from the index in distance order (only the page is sorted
    # again, when its documents are rendered).
    scans = [n for n in _nodes(plan) if n.get("Index Name") == "ix_households_earth"]
    assert scans and "Order By" in scans[0], json.dumps(plan, indent=1)


async def test_geojson_of_a_bbox_uses_the_point_index(
    app: Any, settings: Settings, dataset: Dataset
) -> None:
    query = "bbox=33.6,-84.4,33.62,-84.38"
    plan = await _plan(app, settings, HOUSEHOLDS, query, dataset, GEOJSON)

    _assert_uses(plan, "ix_households_point")


@pytest.mark.parametrize(
    ("query", "index"),
    [
        ("bbox=33.6,-84.4,33.61,-84.39", "ix_households_point"),
        ("near=33.6,-84.4&radius=0.5", "ix_households_earth"),
    ],
)
async def test_a_campaigns_doors_reach_their_households_through_the_gist_index(
    app: Any, settings: Settings, dataset: Dataset, query: str, index: str
) -> None:
    scope = {"/data/campaignId": dataset.campaign_id}
    plan = await _plan(app, settings, DOOR_RECORDS, query, dataset, **scope)

    _assert_uses(plan, index)


async def test_the_walk_list_download_reads_its_doors_by_key_not_the_tenant(
    app: Any, dataset: Dataset
) -> None:
    """500 doors out of a campaign of 1,000 and a tenant of 20,000 households: each
    door, its contact-household, contact and household by key, and nothing read whole
    (with plain joins PostgreSQL hashed every household of the tenant)."""
    view = download_view(2, live_only=True)
    statement = f"SELECT ({view.listed})::text FROM {view.source} WHERE NOT is_deleted"
    async with app.state.pool.acquire() as conn:
        doors = await conn.fetchval(
            "SELECT array_agg(d) FROM (SELECT (data ->> 'contactHouseholdId')::uuid AS d "
            "FROM contact_household_campaigns WHERE customer_id = $1 "
            "AND (data ->> 'campaignId') = $2 LIMIT 500) AS picked",
            dataset.customer_id,
            dataset.campaign_id,
        )
        args = [dataset.customer_id, str(uuid.uuid4()), dataset.campaign_id, doors]
        explained = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {statement}", *args)
    plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]

    assert len(doors) == 500
    nodes = _nodes(plan)
    used = {node.get("Index Name") for node in nodes}
    assert {"uq_contact_household_campaigns_door", "pk_households"} <= used, used
    # The dataset's tables are large; the contacts table of a test run may hold a
    # handful of rows, which PostgreSQL rightly reads whole.
    big = {"households", "contact_households", "contact_household_campaigns"}
    read_whole = {n.get("Relation Name") for n in nodes if n["Node Type"] == "Seq Scan"}
    assert not read_whole & big, json.dumps(plan, indent=1)


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ("contact_households", "householdId"),
        ("contact_households", "contactId"),
        ("contact_household_campaigns", "contactHouseholdId"),
    ],
)
async def test_the_planner_knows_a_reference_names_few_rows(
    app: Any, dataset: Dataset, table: str, field: str
) -> None:
    """The statistics of migration 0017: without them PostgreSQL guessed that one
    value matches 0.5 % of the table (100 rows here, 1,000 at 200 k) and hashed the
    whole table rather than look a door's household up (docs/geography.md)."""
    statement = (
        f"SELECT id FROM {table} WHERE customer_id = $1 AND NOT is_deleted "
        f"AND (data ->> '{field}') = $2"
    )
    async with app.state.pool.acquire() as conn:
        await conn.execute(f"ANALYZE {table}")
        explained = await conn.fetchval(
            f"EXPLAIN (FORMAT JSON) {statement}", dataset.customer_id, str(uuid.uuid4())
        )
    plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]

    assert plan["Plan Rows"] <= 5, json.dumps(plan, indent=1)
