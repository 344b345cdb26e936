"""Citus readiness (SPEC §7, docs/scaling.md): the schema and the statements distribute by tenant.

Citus shards a distributed table by one column and needs that column in every
primary key, unique index and foreign key, and a statement that names it to run on
one node. Two checks:

- the migrated schema, read from pg_catalog: every table is either a tenant table
  whose keys all lead with ``customer_id``, or one of the few known global tables;
- the statements actually issued: a representative run of API calls (every resource
  created, read, listed, synced, patched and deleted; doors, knocks, lists, walk lists,
  bulk, idempotent retries) against an app whose connections log every statement, and
  each statement that reads or writes a tenant table must constrain ``customer_id``.

The second check is textual (a tenant table named after FROM, JOIN, INTO or UPDATE
means ``customer_id`` must appear in the statement): it proves what the run exercised,
not routes it did not call, and it cannot tell which table of a join a predicate
binds. COPY is not logged by asyncpg; the bulk paths here use INSERT ... SELECT.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from polis_api import db
from polis_api.config import Settings
from polis_api.resources.registry import RESOURCES
from tests.builders import campaign, create, if_match
from tests.canvassing import door, put_door, record_interaction
from tests.conftest import Tenant
from tests.geo_builders import new_walklist, turf
from tests.list_builders import new_list, new_pair, put_on

# Tables without customer_id, and why each may stay that way on Citus.
GLOBAL_TABLES = {
    "alembic_version": "the schema's revision; a local table on the coordinator",
    "rate_limits": "per-identity budgets keyed by a hash; a local table on the coordinator",
}
# Tenant-keyed, but one shared catalogue read by every tenant: a Citus reference table.
REFERENCE_TABLES = {"status_groups"}

TABLES = """
SELECT c.relname,
       bool_or(a.attname = 'customer_id') AS tenant
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
GROUP BY c.relname
"""
# Every unique index (primary keys included) with its first key column (NULL when the
# first key is an expression).
UNIQUE_INDEXES = """
SELECT t.relname AS table_name, i.relname AS index_name, x.indisprimary AS is_primary,
       first_key.attname AS first_column
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
LEFT JOIN pg_attribute first_key ON first_key.attrelid = t.oid AND first_key.attnum = x.indkey[0]
WHERE n.nspname = 'public' AND x.indisunique
"""
# Foreign keys, with each side's columns in constraint order.
FOREIGN_KEYS = """
SELECT c.conname, src.relname AS source, dst.relname AS target,
       ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(num, pos)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num
             ORDER BY k.pos)::text[] AS source_columns,
       ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(num, pos)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.num
             ORDER BY k.pos)::text[] AS target_columns
FROM pg_constraint c
JOIN pg_class src ON src.oid = c.conrelid
JOIN pg_class dst ON dst.oid = c.confrelid
WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
"""
EXCLUSION_CONSTRAINTS = """
SELECT c.conname, t.relname,
       ARRAY(SELECT a.attname FROM unnest(c.conkey) k(num)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num)::text[] AS cols
FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
WHERE c.contype = 'x' AND c.connamespace = 'public'::regnamespace
"""


@pytest.fixture(scope="module")
async def catalog(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def _tenant_tables(conn: asyncpg.Connection) -> set[str]:
    return {row["relname"] for row in await conn.fetch(TABLES) if row["tenant"]}


async def test_every_table_is_a_tenant_table_or_a_known_global_one(
    catalog: asyncpg.Connection,
) -> None:
    rows = await catalog.fetch(TABLES)

    untenanted = {row["relname"] for row in rows if not row["tenant"]}

    assert untenanted == set(GLOBAL_TABLES), "a new table without customer_id: see docs/scaling.md"
    assert await _tenant_tables(catalog) >= REFERENCE_TABLES


async def test_every_primary_key_and_unique_index_of_a_tenant_table_leads_with_customer_id(
    catalog: asyncpg.Connection,
) -> None:
    tenant_tables = await _tenant_tables(catalog)
    indexes = [r for r in await catalog.fetch(UNIQUE_INDEXES) if r["table_name"] in tenant_tables]

    wrong = [
        f"{r['table_name']}.{r['index_name']} starts with {r['first_column'] or 'an expression'}"
        for r in indexes
        if r["first_column"] != "customer_id"
    ]

    assert not wrong, wrong
    with_primary_key = {r["table_name"] for r in indexes if r["is_primary"]}
    assert with_primary_key == tenant_tables, tenant_tables - with_primary_key


async def test_no_foreign_key_or_exclusion_constraint_crosses_tenants(
    catalog: asyncpg.Connection,
) -> None:
    tenant_tables = await _tenant_tables(catalog)

    crossing = [
        row["conname"]
        for row in await catalog.fetch(FOREIGN_KEYS)
        if row["source"] in tenant_tables
        and row["target"] not in REFERENCE_TABLES
        # the same position on both sides: a row may only point into its own tenant
        and ("customer_id", "customer_id")
        not in zip(row["source_columns"], row["target_columns"], strict=True)
    ]
    exclusions = [
        row["conname"]
        for row in await catalog.fetch(EXCLUSION_CONSTRAINTS)
        if row["relname"] in tenant_tables and "customer_id" not in row["cols"]
    ]

    assert not crossing, crossing
    assert not exclusions, exclusions


# --- every statement a representative run issues ----------------------------------------

TABLE_AFTER_KEYWORD = re.compile(
    r"\b(?:FROM|JOIN|INTO|UPDATE)\s+(?:ONLY\s+)?(?:public\.)?\"?([a-z_]+)\"?", re.IGNORECASE
)


@pytest.fixture
async def logged(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, list[str]]]:
    """A fresh app whose every database connection records the statements it runs."""
    from polis_api.app import create_app

    statements: list[str] = []
    init = db._init_connection

    async def recording(conn: asyncpg.Connection) -> None:
        await init(conn)
        conn.add_query_logger(lambda query: statements.append(query.query))

    monkeypatch.setattr(db, "_init_connection", recording)
    app = create_app(settings.model_copy(update={"pool_max_size": 4}))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://polis.test") as http:
            yield http, statements


async def _every_document_route(http: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """Create, read, list, sync, patch and delete each resource that has the routes."""
    for resource in RESOURCES:
        if "list" in resource.routes:
            listed = await http.get(resource.prefix, params={"count": "true"}, headers=headers)
            assert listed.status_code == 200, (resource.name, listed.text)
            synced = await http.get(resource.prefix, params={"since": ""}, headers=headers)
            assert synced.status_code == 200, (resource.name, synced.text)
        if "create" not in resource.routes or resource.create_example is None:
            continue
        # Examples name documents of their own (a campaign, a contact) that this tenant
        # lacks: a 400 that checked them is a run of the reference checks.
        created = await http.post(resource.prefix, json=resource.create_example, headers=headers)
        assert created.status_code in (201, 400), (resource.name, created.text)
        if created.status_code != 201:
            continue
        document: dict[str, Any] = created.json()
        path = f"{resource.prefix}/{document['id']}"
        assert (await http.get(path, headers=headers)).status_code == 200
        if resource.patch_example is not None:
            patched = await http.patch(
                path,
                json=resource.patch_example,
                headers={**headers, **if_match(document), "Content-Type": "application/json"},
            )
            assert patched.status_code in (200, 400), (resource.name, patched.text)
            if patched.status_code == 200:
                document = patched.json()
        deleted = await http.delete(path, headers={**headers, **if_match(document)})
        assert deleted.status_code in (200, 204), (resource.name, deleted.text)


async def _a_canvass(http: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """Doors, knocks, lists, turfs and walk lists, bulk and an idempotent retry."""
    at = await door(http, headers)
    await put_door(http, headers, at, {"type": "normal"})
    await record_interaction(http, headers, at)
    assert (await http.get(at.path, headers=headers)).status_code == 200
    campaign_statuses = await http.get(f"/v1/campaigns/{at.campaign_id}/statuses", headers=headers)
    assert campaign_statuses.status_code in (200, 404), campaign_statuses.text

    pair = await new_pair(http, headers)
    households = await http.get(f"/v2/contacts/{pair.contact_id}/households", headers=headers)
    assert households.status_code == 200, households.text
    list_id = await new_list(http, headers)
    await put_on(http, headers, list_id, pair)
    members = await http.get(f"/v1/lists/{list_id}/contact-households", headers=headers)
    assert members.status_code == 200, members.text

    area = await create(http, "/v1/turfs", turf(at.campaign_id), headers)
    await new_walklist(http, headers, at.campaign_id, turfId=area["id"])
    walklists = await http.get("/v1/walklists", params={"since": ""}, headers=headers)
    assert walklists.status_code == 200

    bulk = {"data": [{"data": {"address": {"number": str(n), "city": "X"}}} for n in (1, 2)]}
    assert (await http.post("/v2/households/bulk", json=bulk, headers=headers)).is_success

    key = {**headers, "Idempotency-Key": str(uuid.uuid4())}
    body = campaign(name="Again")
    for _ in range(2):
        assert (await http.post("/v1/campaigns", json=body, headers=key)).status_code == 201
    assert (await http.get("/v1/status-groups", headers=headers)).status_code == 200


async def test_every_statement_on_a_tenant_table_is_scoped_by_customer_id(
    logged: tuple[httpx.AsyncClient, list[str]], catalog: asyncpg.Connection, tenant: Tenant
) -> None:
    http, statements = logged
    headers = tenant.headers("admin")
    tenant_tables = await _tenant_tables(catalog)

    await _every_document_route(http, headers)
    await _a_canvass(http, headers)

    touched: set[str] = set()
    unscoped = []
    for statement in set(statements):
        tables = {name.lower() for name in TABLE_AFTER_KEYWORD.findall(statement)}
        tables &= tenant_tables
        touched |= tables
        if tables and "customer_id" not in statement:
            unscoped.append(statement)
    assert not unscoped, unscoped
    # The run reached (nearly) every tenant table, so the check says something.
    assert len(touched) >= len(tenant_tables) - 2, tenant_tables - touched
