"""The benchmark's dataset, loaded with COPY through the real (migrated) schema.

One tenant; 100 campaigns; 200 k households with coordinates; 250 k contact-households;
1 M interactions (x ``--scale``) and one door record per (campaign, contact-household)
touched, following the interaction with the latest timestamp exactly as the server
would. Documents are built with the server's own pure functions (door rules, distance,
etag) so the server reads them like its own; ids are derived from fixed seeds, so every
build is identical. A marker table records what is loaded: a second run with the same
scale reuses it.

    .venv/bin/python bench/dataset.py [--scale 1] [--households 200000] [--force]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import multiprocessing
import random
import sys
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from common import (
    AUTHOR,
    CAMPAIGNS,
    DATA_DIR,
    HISTORY_DAYS,
    HISTORY_START,
    LIST_SIZE,
    MEMBER_LIST,
    ORGANIZATION,
    READ_CAMPAIGNS,
    TENANT,
    WRITE_CAMPAIGNS,
    Scale,
    campaign_id,
    contact_household_id,
    contact_id,
    derived_uuid,
    household_id,
    household_of,
    start_database,
    turf,
)

from polis_api import db
from polis_api.documents.envelope import StoredDocument, format_timestamp
from polis_api.documents.etag import compute_etag
from polis_api.documents.validation import validate_data
from polis_api.resources.campaigns import DEFAULT_FIELDS, CampaignData
from polis_api.resources.contacts import ContactData
from polis_api.resources.door_records import DoorRecordData
from polis_api.resources.households import HouseholdData
from polis_api.resources.interactions import InteractionData
from polis_api.resources.lists import ListData, ListMemberData
from polis_api.resources.statuses import default_status_documents
from polis_api.workflow.distance import interaction_distance
from polis_api.workflow.door import apply_interaction, new_record, state_for_interaction

COLUMNS = (
    "customer_id",
    "id",
    "security_group_id",
    "data",
    "created",
    "modified",
    "created_by",
    "modified_by",
    "is_deleted",
    "etag",
)
TABLES = (
    "campaigns",
    "statuses",
    "households",
    "contact_households",
    "contact_household_campaigns",
    "interactions",
)
MARKER = "bench_dataset"
REASONS = ("Not Home",) * 11 + ("Come Back",) * 4 + ("Refused",) * 3 + ("Appointment",) * 2
GIVEN = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim")
SURNAMES = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson")
STREETS = ("Oak", "Maple", "Pine", "Cedar", "Elm", "Church", "Park", "Lake", "Hill", "Mill")
CITIES = ("Decatur", "Tucker", "Avondale Estates", "Stone Mountain", "Clarkston")
Row = tuple[Any, ...]


# --- documents -------------------------------------------------------------------------


def document_row(
    resource: str,
    doc_id: str,
    data: dict[str, Any],
    created: datetime,
    modified: datetime | None = None,
    author: str = AUTHOR,
    *,
    check: bool = False,
) -> Row:
    """One table row with its etag (SPEC §1), hashed by the server's own function.

    The envelope is built here rather than by ``StoredDocument.envelope`` because that
    costs as much again; ``check`` compares the two on a sample of every table.
    """
    modified = modified or created
    meta = {
        "created": wire_time(created),
        "modified": wire_time(modified),
        "resource": resource,
        "createdBy": author,
        "isDeleted": False,
        "modifiedBy": author,
    }
    envelope = {
        "id": doc_id,
        "data": data,
        "meta": meta,
        "customerId": TENANT,
        "securityGroupId": TENANT,
    }
    etag = compute_etag(envelope)
    if check:
        doc = StoredDocument(
            id=uuid.UUID(doc_id),
            customer_id=uuid.UUID(TENANT),
            security_group_id=uuid.UUID(TENANT),
            data=data,
            created=created,
            modified=modified,
            created_by=uuid.UUID(author),
            modified_by=uuid.UUID(author),
        )
        if doc.etag(resource) != etag:
            raise AssertionError(f"{resource}: etag differs from the server's")
    json_text = orjson.dumps(data).decode()
    return (TENANT, doc_id, TENANT, json_text, created, modified, author, author, False, etag)


def wire_time(moment: datetime) -> str:
    """``format_timestamp`` for a UTC datetime, three times faster (checked in ``_check``)."""
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"


def at(ms: int) -> datetime:
    return HISTORY_START + timedelta(milliseconds=ms)


def status_rows() -> tuple[list[Row], dict[str, str]]:
    """The tenant's default statuses (as the server seeds them) and state → default id."""
    docs = default_status_documents(TENANT, at(-60 * 86_400_000))  # type: ignore[arg-type]
    rows, defaults = [], {}
    for position, doc in enumerate(docs):
        doc = dataclasses.replace(doc, id=derived_uuid("status", position))
        # Where two defaults share a state the first one wins (SPEC §2).
        defaults.setdefault(doc.data["contactState"], str(doc.id))
        rows.append(
            document_row(
                "statuses",
                str(doc.id),
                doc.data,
                doc.created,
                author=str(doc.created_by),
                check=True,
            )
        )
    return rows, defaults


def campaign_rows() -> list[Row]:
    rows = []
    for c in range(CAMPAIGNS):
        data = {
            "name": f"Bench campaign {c:03d}",
            "status": "started",
            "organizationId": ORGANIZATION,
            "description": "Canvassing the benchmark's neighbourhoods",
            "fields": DEFAULT_FIELDS,
            "lists": [],
        }
        if c == 0:
            same_as_server(CampaignData, data)
        created = at(-50 * 86_400_000 + c)
        rows.append(document_row("campaigns", campaign_id(c), data, created, check=c == 0))
    return rows


@dataclasses.dataclass
class People:
    """Ids and coordinates of every household and contact-household, computed once."""

    scale: Scale
    households: list[str]
    coords: list[tuple[float, float]]
    contacts: list[str]
    pairs: list[str]

    @classmethod
    def build(cls, scale: Scale) -> People:
        rng = random.Random(b"households")
        coords = [
            (round(33.6 + rng.random() * 0.5, 6), round(-84.6 + rng.random() * 0.5, 6))
            for _ in range(scale.households)
        ]
        households = [household_id(h) for h in range(scale.households)]
        contacts = [contact_id(j) for j in range(scale.contact_households)]
        pairs = [contact_household_id(j) for j in range(scale.contact_households)]
        return cls(scale, households, coords, contacts, pairs)

    def household_rows(self) -> Iterable[Row]:
        for h, doc_id in enumerate(self.households):
            lat, lng = self.coords[h]
            data: dict[str, Any] = {
                "address": {
                    "number": str(1 + h % 4000),
                    "streetName": f"{STREETS[h % len(STREETS)]} Street",
                    "city": CITIES[h % len(CITIES)],
                    "state": "GA",
                    "postalCode": f"300{h % 100:02d}",
                    "country": "US",
                    "coords": {"lat": lat, "lng": lng},
                },
                "externalId": f"bench-household-{h:07d}",
            }
            if h % 10 == 0:
                data["unitNum"] = f"{1 + h % 7}B"
            if h == 0:
                same_as_server(HouseholdData, data)
            yield document_row("households", doc_id, data, at(-40 * 86_400_000 + h), check=h < 5)

    def contact_household_rows(self) -> Iterable[Row]:
        for j, doc_id in enumerate(self.pairs):
            data = {
                "contactId": self.contacts[j],
                "householdId": self.households[household_of(j, self.scale)],
            }
            created = at(-30 * 86_400_000 + j)
            yield document_row("contact-households", doc_id, data, created, check=j < 5)


def campaign_history(
    c: int, people: People, defaults: dict[str, str], count: int, salt: str = ""
) -> tuple[list[Row], list[Row]]:
    """Campaign ``c``'s interactions in arrival order, and the door records they leave.

    Phones sync late and out of order: each interaction arrives (``created``) a little
    after its ``timestamp``, 2 % of them hours or days late; a door follows the latest
    timestamp, not the latest arrival, as the server's rules say.
    """
    rng = random.Random(f"campaign:{c}:{salt}".encode())
    doors = turf(c, people.scale)
    period = HISTORY_DAYS * 86_400_000
    events = []
    for k in range(count):
        ts = rng.randrange(period)
        late = rng.random() < 0.02
        created = ts + (
            rng.randrange(3_600_000, 3 * 86_400_000) if late else rng.randrange(500, 120_000)
        )
        j = doors[rng.randrange(len(doors))]
        unavailable = rng.random() < 0.45
        reason = REASONS[rng.randrange(len(REASONS))] if unavailable else None
        successful = not unavailable and rng.random() < 0.5
        place = None
        if rng.random() < 0.9:
            place = (rng.uniform(-0.001, 0.001), rng.uniform(-0.001, 0.001), rng.randrange(50))
        events.append((created, k, ts, j, unavailable, reason, successful, place, rng.random()))
    events.sort()

    cid = campaign_id(c)
    survey = derived_uuid("survey", c)
    asked = derived_uuid("question", 2 * c)
    dogs = derived_uuid("question", 2 * c + 1)
    interactions: list[Row] = []
    followed: dict[int, list[Any]] = {}  # j -> [created, modified, timestamp, data, id]
    for created, k, ts, j, unavailable, reason, successful, place, coin in events:
        h = household_of(j, people.scale)
        iid = derived_uuid(f"interaction{salt}", c * 100_000_000 + k)
        responses: dict[str, Any] = {
            asked: {
                "fields": {"available": "false" if unavailable else "true"},
                "questionId": asked,
            }
        }
        if not unavailable:
            liker = "true" if coin < 0.5 else "false"
            responses[dogs] = {"fields": {"dogliker": liker}, "questionId": dogs}
        data: dict[str, Any] = {
            "campaignId": cid,
            "contactId": people.contacts[j],
            "householdId": people.households[h],
            "contactHouseholdId": people.pairs[j],
            "timestamp": wire_time(at(ts)),
            "survey": {"surveyId": survey, "responses": responses},
            "unavailable": unavailable,
            "successful": successful,
        }
        if reason is not None:
            data["unavailableReason"] = reason
        if place is not None:
            lat, lng = people.coords[h]
            location = {
                "lat": round(lat + place[0], 6),
                "lng": round(lng + place[1], 6),
                "confidence": place[2],
            }
            data["location"] = location
            data["distance"] = interaction_distance(location, {"lat": lat, "lng": lng})
        if k < 20:
            _same_interaction_as_server(data)
        interactions.append(document_row("interactions", iid, data, at(created), check=k < 20))
        door = followed.get(j)
        if door is None:
            followed[j] = [created, created, ts, data, iid]
        elif ts >= door[2]:  # ties: the later arrival wins (workflow.door.is_newer)
            door[1:] = [created, ts, data, iid]

    records = []
    for n, (j, (created, modified, _, data, iid)) in enumerate(sorted(followed.items())):
        state = state_for_interaction(
            unavailable=data["unavailable"],
            unavailable_reason=data.get("unavailableReason"),
            successful=data.get("successful"),
            status=None,
        )
        record = apply_interaction(
            new_record(cid, people.pairs[j]), data, None, defaults.get(state), interaction_id=iid
        )
        if n < 20:
            same_as_server(DoorRecordData, record)
        door_id = derived_uuid(f"door{salt}", c * 10_000_000 + j)
        records.append(
            document_row(
                "contact-household-campaigns",
                door_id,
                record,
                at(created),
                at(modified),
                check=n < 20,
            )
        )
    return interactions, records


def same_as_server(model: type, data: dict[str, Any]) -> None:
    """The stored form the server would write for ``data`` is ``data`` itself."""
    stored = validate_data(model, data)  # type: ignore[arg-type]
    if stored != data:
        raise AssertionError(f"{model.__name__}: dataset shape differs from the server's")


def _same_interaction_as_server(data: dict[str, Any]) -> None:
    # The server drops a client's distance and computes its own (resources/interactions).
    given = {key: value for key, value in data.items() if key != "distance"}
    stored = validate_data(InteractionData, given)
    if "distance" in data:
        stored["distance"] = data["distance"]
    if stored != data or format_timestamp(at(0)) != wire_time(at(0)):
        raise AssertionError("interaction: dataset shape differs from the server's")


# --- the list of the joined read (issue 10) -----------------------------------------


def contact_data(j: int, scale: Scale) -> dict[str, Any]:
    """Contact ``j``: a name, a phone, an external id and its primary household."""
    return {
        "profile": {
            "name": {
                "anglican": {"given": GIVEN[j % len(GIVEN)], "surname": SURNAMES[j % len(SURNAMES)]}
            },
            "phones": [{"phone": f"+1 404 555 {j % 10_000:04d}", "phoneType": "mobile"}],
        },
        "externalId": f"bench-contact-{j:07d}",
        "primaryHouseholdId": household_id(household_of(j, scale)),
    }


def list_size(scale: Scale) -> int:
    return min(LIST_SIZE, scale.contact_households)


def member_rows(scale: Scale) -> dict[str, list[Row]]:
    """The list, its members (the first contact-households) and their contacts."""
    size = list_size(scale)
    created = at(-20 * 86_400_000)
    contacts, members = [], []
    for j in range(size):
        data = contact_data(j, scale)
        if j < 5:
            same_as_server(ContactData, data)
        contacts.append(
            document_row("contacts", contact_id(j), data, at(-35 * 86_400_000 + j), check=j < 5)
        )
        member = {
            "listId": MEMBER_LIST,
            "contactId": contact_id(j),
            "householdId": household_id(household_of(j, scale)),
            "contactHouseholdId": contact_household_id(j),
        }
        if j < 5:
            same_as_server(ListMemberData, member)
        members.append(
            document_row(
                "list-contact-households",
                derived_uuid("list-member", j),
                member,
                at(-20 * 86_400_000 + 1 + j),
                check=j < 5,
            )
        )
    listed = {
        "organizationId": ORGANIZATION,
        "name": "Bench list",
        "description": "The first contact-households of the benchmark",
        "contactsCount": size,
    }
    same_as_server(ListData, listed)
    lists = [document_row("lists", MEMBER_LIST, listed, created, check=True)]
    return {"lists": lists, "contacts": contacts, "list_members": members}


async def ensure_list(url: str, scale: Scale, log: Any = print) -> dict[str, Any]:
    """The list of the joined read, unless the database already holds it complete.

    Added beside the reused dataset (not part of its marker), so a database built
    before issue 10 gains it without rebuilding a million interactions.
    """
    size = list_size(scale)
    conn = await asyncpg.connect(url)
    try:
        members = await conn.fetchval(
            "SELECT count(*) FROM list_members WHERE customer_id = $1 "
            "AND (data ->> 'listId') = $2 AND NOT is_deleted",
            TENANT,
            MEMBER_LIST,
        )
        contacts = await conn.fetchval(
            "SELECT count(*) FROM contacts WHERE customer_id = $1 AND created_by = $2",
            TENANT,
            AUTHOR,
        )
        if members == size and contacts == size:
            return {"members": size, "reused": True}
        started = time.perf_counter()
        rows = member_rows(scale)
        async with conn.transaction():
            await conn.execute(
                "DELETE FROM list_members WHERE customer_id = $1 AND (data ->> 'listId') = $2",
                TENANT,
                MEMBER_LIST,
            )
            await conn.execute(
                "DELETE FROM contacts WHERE customer_id = $1 AND created_by = $2", TENANT, AUTHOR
            )
            await conn.execute(
                "DELETE FROM lists WHERE customer_id = $1 AND id = $2", TENANT, MEMBER_LIST
            )
            for table, table_rows in rows.items():
                await _copy(conn, table, table_rows)
        for table in rows:
            await conn.execute(f"VACUUM (ANALYZE) {table}")
    finally:
        await conn.close()
    log(f"  list of {size} members built in {time.perf_counter() - started:.1f} s")
    return {"members": size, "reused": False}


# --- loading ---------------------------------------------------------------------------


async def _copy(conn: asyncpg.Connection, table: str, rows: Sequence[Row]) -> float:
    started = time.perf_counter()
    await conn.copy_records_to_table(table, records=rows, columns=COLUMNS)
    return time.perf_counter() - started


async def _drop_indexes(conn: asyncpg.Connection, table: str) -> list[str]:
    """Drop a table's indexes and primary key; return the SQL that recreates them as they were."""
    pk = await conn.fetchrow(
        "SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint "
        "WHERE conrelid = $1::regclass AND contype = 'p'",
        table,
    )
    indexes = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes "
        "WHERE schemaname = 'public' AND tablename = $1 AND indexname <> $2",
        table,
        pk["conname"],
    )
    for index in indexes:
        await conn.execute(f'DROP INDEX "{index["indexname"]}"')
    await conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{pk["conname"]}"')
    recreate = [f'ALTER TABLE {table} ADD CONSTRAINT "{pk["conname"]}" {pk["def"]}']
    return recreate + [index["indexdef"] for index in indexes]


class Loader:
    """Accumulates rows per table and COPYs them in batches, timing the COPYs."""

    def __init__(self, conn: asyncpg.Connection, batch: int = 50_000) -> None:
        self.conn = conn
        self.batch = batch
        self.pending: dict[str, list[Row]] = {}
        self.rows: dict[str, int] = dict.fromkeys(TABLES, 0)
        self.seconds: dict[str, float] = dict.fromkeys(TABLES, 0.0)

    async def add(self, table: str, rows: Iterable[Row]) -> None:
        pending = self.pending.setdefault(table, [])
        for row in rows:
            pending.append(row)
            if len(pending) >= self.batch:
                await self.flush(table)
                pending = self.pending[table]

    async def flush(self, table: str | None = None) -> None:
        for name in [table] if table else list(self.pending):
            rows = self.pending.get(name) or []
            if rows:
                self.seconds[name] += await _copy(self.conn, name, rows)
                self.rows[name] += len(rows)
            self.pending[name] = []


_WORKER_STATE: tuple[People, dict[str, str], int] | None = None


def _history_in_worker(c: int) -> tuple[list[Row], list[Row]]:
    assert _WORKER_STATE is not None
    people, defaults, count = _WORKER_STATE
    return campaign_history(c, people, defaults, count)


async def _histories(
    people: People, defaults: dict[str, str], count: int, ahead: int = 3
) -> AsyncIterator[tuple[int, tuple[list[Row], list[Row]]]]:
    """Campaign histories in order, generated by two forked processes while we COPY."""
    global _WORKER_STATE
    _WORKER_STATE = (people, defaults, count)  # inherited by the forked workers
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        pending: deque[asyncio.Future[tuple[list[Row], list[Row]]]] = deque()
        submitted = 0
        for c in range(CAMPAIGNS):
            while submitted < CAMPAIGNS and submitted <= c + ahead:
                pending.append(loop.run_in_executor(pool, _history_in_worker, submitted))
                submitted += 1
            yield c, await pending.popleft()


async def load(url: str, scale: Scale, log: Any = print) -> dict[str, Any]:
    started = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET synchronous_commit = off")
        await conn.execute("SET maintenance_work_mem = '1GB'")
        await conn.execute("SET max_parallel_maintenance_workers = 2")
        recreate = [sql for table in TABLES for sql in await _drop_indexes(conn, table)]
        await conn.execute("INSERT INTO tenants (customer_id) VALUES ($1)", TENANT)
        loader = Loader(conn)
        statuses, defaults = status_rows()
        await loader.add("statuses", statuses)
        await loader.add("campaigns", campaign_rows())
        people = People.build(scale)
        await loader.add("households", people.household_rows())
        await loader.add("contact_households", people.contact_household_rows())
        await loader.flush()
        log(f"  households and contact-households loaded ({time.perf_counter() - started:.0f} s)")
        async for c, (interactions, doors) in _histories(people, defaults, scale.per_campaign):
            await loader.add("interactions", interactions)
            await loader.add("contact_household_campaigns", doors)
            if c % 20 == 19:
                log(f"  {c + 1} campaigns loaded ({time.perf_counter() - started:.0f} s)")
        await loader.flush()
        indexed = time.perf_counter()
        for sql in recreate:
            await conn.execute(sql)
        index_seconds = time.perf_counter() - indexed
        for table in TABLES:
            await conn.execute(f"VACUUM (ANALYZE) {table}")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    return {
        "rows": loader.rows,
        "copy_rows_per_s": {
            t: round(loader.rows[t] / loader.seconds[t]) for t in TABLES if loader.seconds[t]
        },
        "index_build_s": round(index_seconds, 1),
        "build_s": round(time.perf_counter() - started, 1),
    }


async def _marker(url: str) -> dict[str, Any] | None:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(f"SELECT params, stats FROM {MARKER}")
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await conn.close()
    return None if row is None else {"params": json.loads(row[0]), "stats": json.loads(row[1])}


async def _write_marker(url: str, scale: Scale, stats: dict[str, Any]) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            f"CREATE TABLE {MARKER} (params jsonb NOT NULL, stats jsonb NOT NULL, "
            "built timestamptz NOT NULL DEFAULT now())"
        )
        await conn.execute(
            f"INSERT INTO {MARKER} (params, stats) VALUES ($1, $2)",
            json.dumps(scale.key()),
            json.dumps(stats),
        )
    finally:
        await conn.close()


def ensure(url: str, scale: Scale, *, force: bool = False, log: Any = print) -> dict[str, Any]:
    """Build the dataset unless the database already holds this very one; its stats."""
    marker = asyncio.run(_marker(url))
    if marker is not None and marker["params"] == scale.key() and not force:
        count = marker["stats"]["rows"]["interactions"]
        log(f"dataset {scale.database}: reused ({count} interactions)")
        return dict(marker["stats"], reused=True)
    log(f"dataset {scale.database}: building {scale.total_interactions} interactions")
    asyncio.run(_drop_marker(url))
    db.downgrade_migrations(url, "base")  # a clean schema, built only by the migrations
    db.run_migrations(url, "head")
    stats = asyncio.run(load(url, scale, log))
    asyncio.run(_write_marker(url, scale, stats))
    log(f"dataset built in {stats['build_s']} s: {stats['rows']}")
    return dict(stats, reused=False)


async def _drop_marker(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"DROP TABLE IF EXISTS {MARKER}")
    finally:
        await conn.close()


# --- files for wrk ------------------------------------------------------------------


def data_dir(scale: Scale) -> Path:
    return DATA_DIR / scale.database


async def write_id_files(url: str, scale: Scale) -> dict[str, Any]:
    """The ids wrk picks from (random rows, so no single row is hot) and list parameters."""
    folder = data_dir(scale)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(b"ids")
    picks = [(rng.randrange(CAMPAIGNS), rng.randrange(scale.per_campaign)) for _ in range(100_000)]
    _lines(
        folder / "interactions.txt",
        (derived_uuid("interaction", c * 100_000_000 + k) for c, k in picks),
    )
    _lines(folder / "campaigns.txt", (campaign_id(c) for c in range(CAMPAIGNS)))
    _lines(folder / "read_campaigns.txt", (campaign_id(c) for c in READ_CAMPAIGNS))
    _lines(folder / "member_list.txt", [MEMBER_LIST])
    doors = (
        f"{campaign_id(c)} {contact_id(j)} {household_id(household_of(j, scale))} "
        f"{contact_household_id(j)}"
        for c in WRITE_CAMPAIGNS
        for j in turf(c, scale)
    )
    _lines(folder / "doors.txt", doors)
    conn = await asyncpg.connect(url)
    try:
        # Delta sync: "what changed since my last sync", about 2 % of a campaign's doors.
        rows = await conn.fetch(
            "SELECT data ->> 'campaignId' AS campaign, percentile_disc(0.98) WITHIN GROUP "
            "(ORDER BY modified) AS since FROM contact_household_campaigns "
            "WHERE customer_id = $1 AND (data ->> 'campaignId') = ANY($2::text[]) GROUP BY 1",
            TENANT,
            [campaign_id(c) for c in READ_CAMPAIGNS],
        )
    finally:
        await conn.close()
    _lines(folder / "delta.txt", (f"{r['campaign']} {format_timestamp(r['since'])}" for r in rows))
    return {"dir": str(folder), "deep_skip": deep_skip(scale)}


def deep_skip(scale: Scale) -> int:
    """A page 90 % of the way through one campaign's interactions."""
    return scale.per_campaign * 9 // 10 // 50 * 50


def _lines(path: Path, lines: Iterable[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="x 1 M interactions (<= 10)")
    parser.add_argument("--households", type=int, default=200_000)
    parser.add_argument("--force", action="store_true", help="rebuild even if present")
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 10:
        parser.error("--scale must be in (0, 10]")
    scale = Scale(interactions=args.scale, households=args.households)
    url, server, started = start_database(scale)
    try:
        ensure(url, scale, force=args.force)
        print(json.dumps(asyncio.run(write_id_files(url, scale))))
    finally:
        if started:
            from common import stop_database

            stop_database(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
