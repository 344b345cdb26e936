"""Name search, externalId, household and a contact's notes are index-served (EXPLAIN)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from polis_api.config import Settings
from polis_api.resources.contacts import CONTACTS
from polis_api.resources.notes import NOTES
from tests.documents.test_query_plans import Dataset, _assert_index_served, _nodes, _plan

ROWS = 20_000

_INSERT_CONTACTS = """
INSERT INTO contacts (customer_id, id, security_group_id, data, created, modified,
                      created_by, modified_by, etag)
SELECT $1, gen_random_uuid(), $1,
       jsonb_build_object(
         'externalId', 'voter-' || n,
         'primaryHouseholdId', md5('household' || (n % 6000))::uuid,
         'profile', jsonb_build_object('name', jsonb_build_object('anglican',
           jsonb_build_object('given', 'Given' || md5(n::text), 'surname', md5('s' || n))))),
       now(), now(), $1, $1, 'x'
FROM generate_series(1, $2) AS n
"""
_INSERT_NOTES = """
INSERT INTO notes (customer_id, id, security_group_id, data, created, modified,
                   created_by, modified_by, etag)
SELECT $1, gen_random_uuid(), $1,
       jsonb_build_object('contactId', md5('contact' || (n % 5000))::uuid, 'text', 'x'),
       now(), now(), $1, $1, 'x'
FROM generate_series(1, $2) AS n
"""


@pytest.fixture(scope="module")
async def contacts_dataset(app: Any) -> AsyncIterator[Dataset]:
    pool: asyncpg.Pool = app.state.pool
    customer_id = uuid.uuid4()
    async with pool.acquire() as conn:
        await conn.execute(_INSERT_CONTACTS, customer_id, ROWS)
        await conn.execute(_INSERT_NOTES, customer_id, ROWS)
        for table in ("contacts", "notes"):
            await conn.execute(f"VACUUM ANALYZE {table}")
    yield Dataset(customer_id, "", str(uuid.uuid4()), "", str(uuid.uuid4()))


@pytest.mark.parametrize(
    ("query", "index"),
    [
        ('filter=/data/profile/name/anglican/surname like "*3f2a*"', "ix_contacts_surname_trgm"),
        ('filter=/data/profile/name/anglican/given like "Given0a1b*"', "ix_contacts_given_trgm"),
        ("filter[/data/externalId]=voter-1234", "uq_contacts_external_id"),
        ("filter[/data/primaryHouseholdId]={household_id}", "ix_contacts_primary_household"),
    ],
)
async def test_contact_searches_use_their_index(
    app: Any, settings: Settings, contacts_dataset: Dataset, query: str, index: str
) -> None:
    text = query.format(household_id=contacts_dataset.household_id)
    plan = await _plan(app, settings, CONTACTS, text, contacts_dataset)

    assert index in {node.get("Index Name") for node in _nodes(plan)}, json.dumps(plan, indent=1)


async def test_a_contacts_notes_use_an_index(
    app: Any, settings: Settings, contacts_dataset: Dataset
) -> None:
    query = f"filter[/data/contactId]={contacts_dataset.contact_id}"
    plan = await _plan(app, settings, NOTES, query, contacts_dataset)

    _assert_index_served(plan, "notes")
