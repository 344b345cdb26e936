"""The one-shot measurements: COPY against INSERT, the bulk endpoint, the full stream;
and the housekeeping between runs (tokens, etags, removing what the writes left)."""

from __future__ import annotations

import http.client
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from common import (
    AUTHOR,
    BULK_CAMPAIGN,
    TENANT,
    Scale,
    campaign_id,
    contact_household_id,
    contact_id,
    derived_uuid,
    household_id,
    household_of,
    token,
)
from dataset import COLUMNS, Row, document_row
from servers import Server, rss_bytes
from starlette.datastructures import QueryParams

from polis_api.config import Settings
from polis_api.documents.listing import parse_list_request
from polis_api.resources.interactions import INTERACTIONS
from polis_api.workflow.door import StatusInfo, apply_status, new_record

TOKENS = 1000  # phones: each token has its own rate-limit budget, as in the field


def write_tokens(folder: Path, count: int = TOKENS) -> list[str]:
    tokens = [token(derived_uuid("writer", n)) for n in range(count)]
    (folder / "tokens.txt").write_text("".join(t + "\n" for t in tokens))
    return tokens


async def write_patch_etags(url: str, folder: Path) -> None:
    """Every campaign with its current etag, for patch_campaign.lua's If-Match."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT id::text, etag FROM campaigns WHERE customer_id = $1 ORDER BY id", TENANT
        )
    finally:
        await conn.close()
    (folder / "patch_campaigns.txt").write_text("".join(f"{r[0]} {r[1]}\n" for r in rows))


async def write_deep_after_tokens(url: str, folder: Path, skip: int) -> None:
    """For each read campaign, the after= token that continues its list past row
    ``skip``, as polis-api's meta.next gives it (for list_interactions_after.lua)."""
    settings = Settings()
    lines = []
    conn = await asyncpg.connect(url)
    try:
        for campaign in (folder / "read_campaigns.txt").read_text().split():
            listing = parse_list_request(
                QueryParams(f"filter[/data/campaignId]={campaign}&limit=50"),
                INTERACTIONS.field_policy,
                settings,
                uuid.UUID(TENANT),
                keyset_paging=True,
            )
            keyset = listing.query.keyset
            assert keyset is not None and [k.expression for k in keyset.keys] == ["id"]
            last = await conn.fetchval(
                "SELECT id::text FROM interactions WHERE customer_id = $1 AND NOT is_deleted "
                "AND (data ->> 'campaignId') = $2 ORDER BY id LIMIT 1 OFFSET $3",
                TENANT,
                campaign,
                skip - 1,
            )
            token = keyset.token_after([last, "uuid"])
            lines.append(f"{campaign} {token}\n")
    finally:
        await conn.close()
    (folder / "deep_after.txt").write_text("".join(lines))


async def remove_benchmark_writes(url: str) -> int:
    """Interactions the POST benchmark added, and contacts the bulk calls added, so
    every run starts from the same dataset."""
    removed = await remove_bulk_contacts(url)
    conn = await asyncpg.connect(url)
    try:
        status = await conn.execute(
            "DELETE FROM interactions WHERE customer_id = $1 AND created_by <> $2", TENANT, AUTHOR
        )
        await conn.execute("VACUUM (ANALYZE) interactions")
    finally:
        await conn.close()
    return removed + int(status.split()[-1])


async def remove_bulk_contacts(url: str) -> int:
    """Contacts the bulk calls wrote (the dataset's own are the author's)."""
    conn = await asyncpg.connect(url)
    try:
        status = await conn.execute(
            "DELETE FROM contacts WHERE customer_id = $1 AND created_by <> $2", TENANT, AUTHOR
        )
        await conn.execute("VACUUM (ANALYZE) contacts")
    finally:
        await conn.close()
    return int(status.split()[-1])


async def write_rates(url: str, table: str, rows: list[Row], sample: int = 2000) -> dict[str, Any]:
    """COPY of ``rows`` against one INSERT per row, on the real table with its indexes.

    The COPY runs in a transaction that is rolled back, so it leaves no trace; the
    INSERTs (a sample) commit one by one, as a naive loader's would, then are deleted.
    """
    conn = await asyncpg.connect(url)
    columns = ", ".join(COLUMNS)
    insert = f"INSERT INTO {table} ({columns}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    try:
        transaction = conn.transaction()
        await transaction.start()
        started = time.perf_counter()
        await conn.copy_records_to_table(table, records=rows, columns=COLUMNS)
        copy_s = time.perf_counter() - started
        await transaction.rollback()

        statement = await conn.prepare(insert)
        sampled = rows[:sample]
        started = time.perf_counter()
        for row in sampled:
            await statement.fetch(*row)
        insert_s = time.perf_counter() - started
        await conn.execute(
            f"DELETE FROM {table} WHERE customer_id = $1 AND id = ANY($2::uuid[])",
            TENANT,
            [row[1] for row in sampled],
        )
    finally:
        await conn.close()
    return {
        "table": table,
        "rows": len(rows),
        "copy_rows_per_s": round(len(rows) / copy_s),
        "insert_sample": len(sampled),
        "insert_rows_per_s": round(len(sampled) / insert_s),
    }


# --- the bulk endpoint -------------------------------------------------------------------


def bulk_pairs(scale: Scale, count: int) -> list[tuple[str, str, str]]:
    """(contactId, householdId, contactHouseholdId) of the first ``count`` pairs."""
    return [
        (contact_id(j), household_id(household_of(j, scale)), contact_household_id(j))
        for j in range(min(count, scale.contact_households))
    ]


async def status_of(url: str, name: str) -> StatusInfo:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT id::text, data ->> 'contactState' FROM statuses "
            "WHERE customer_id = $1 AND data ->> 'name' = $2",
            TENANT,
            name,
        )
    finally:
        await conn.close()
    return StatusInfo(id=row[0], contact_state=row[1])


async def forget_bulk_doors(url: str, pairs: list[tuple[str, str, str]]) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "DELETE FROM contact_household_campaigns WHERE customer_id = $1 "
            "AND (data ->> 'campaignId') = $2 AND (data ->> 'contactHouseholdId') = ANY($3)",
            TENANT,
            campaign_id(BULK_CAMPAIGN),
            [pair[2] for pair in pairs],
        )
    finally:
        await conn.close()


def bulk_rows(pairs: list[tuple[str, str, str]], status: StatusInfo) -> list[Row]:
    """The very door documents the bulk call creates, for COPY to write instead."""
    now = datetime.now(UTC).replace(microsecond=0)
    cid = campaign_id(BULK_CAMPAIGN)
    return [
        document_row(
            "contact-household-campaigns",
            str(uuid.uuid4()),
            apply_status(new_record(cid, pair[2]), status),
            now,
        )
        for pair in pairs
    ]


def post_bulk(
    server: Server, pairs: list[tuple[str, str, str]], status_id: str, auth: str
) -> dict[str, Any]:
    body = orjson.dumps(
        {
            "data": [
                {
                    "data": {"campaignId": campaign_id(BULK_CAMPAIGN), "statusId": status_id},
                    "params": {"contactId": contact, "householdId": household},
                }
                for contact, household, _ in pairs
            ]
        }
    )
    headers = {"Authorization": f"Bearer {auth}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=900)
    started = time.perf_counter()
    conn.request("POST", "/v1/campaigns/contact-households/bulk", body=body, headers=headers)
    answer = conn.getresponse()
    payload = answer.read()
    seconds = time.perf_counter() - started
    conn.close()
    written = len(orjson.loads(payload)["data"]) if answer.status == 200 else 0
    return {
        "status": answer.status,
        "items": len(pairs),
        "written": written,
        "seconds": round(seconds, 2),
        "rows_per_s": round(written / seconds) if written else 0,
        "error": None if answer.status == 200 else payload[:300].decode(errors="replace"),
    }


# --- issue 10: POST /v2/contacts/bulk --------------------------------------------------


def contact_bulk_bodies(scale: Scale, calls: int, items: int) -> list[bytes]:
    """``calls`` bodies of ``items`` new contacts each: the same for every app and run
    (the contacts are removed after each app), each already in its stored form."""
    bodies = []
    for call in range(calls):
        contacts = []
        for i in range(items):
            n = call * items + i
            contacts.append(
                {
                    "data": {
                        "profile": {
                            "name": {"anglican": {"given": f"Voter{n}", "surname": "Bulk"}},
                            "emails": [{"email": f"voter{n}@example.org", "primary": True}],
                            "phones": [{"phone": f"+1 470 555 {n % 10_000:04d}"}],
                            "languages": ["en"],
                        },
                        "fields": {"ward": n % 12, "volunteer": n % 9 == 0},
                        "externalId": f"bench-bulk-{n:07d}",
                        "primaryHouseholdId": household_id(n % scale.households),
                    }
                }
            )
        bodies.append(orjson.dumps({"data": contacts}))
    return bodies


def contact_rows(bodies: list[bytes]) -> list[Row]:
    """The very contacts the measured bulk calls create (all but the warm-up's), for
    COPY to write instead: the floor of ``POST /v2/contacts/bulk``."""
    now = datetime.now(UTC).replace(microsecond=0)
    return [
        document_row("contacts", str(uuid.uuid4()), item["data"], now)
        for body in bodies[1:]
        for item in orjson.loads(body)["data"]
    ]


def post_contacts(server: Server, bodies: list[bytes], auth: str) -> dict[str, Any]:
    """``POST /v2/contacts/bulk`` of each body in turn; the first is a warm-up (a new
    worker's first statements introspect types) and is not counted."""
    headers = {"Authorization": f"Bearer {auth}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=900)
    seconds = 0.0
    items = created = 0
    status, error = 207, None
    try:
        for call, body in enumerate(bodies):
            started = time.perf_counter()
            conn.request("POST", "/v2/contacts/bulk", body=body, headers=headers)
            answer = conn.getresponse()
            payload = answer.read()
            took = time.perf_counter() - started
            if answer.status != 207:
                status, error = answer.status, payload[:300].decode(errors="replace")
                break
            if call == 0:
                continue
            seconds += took
            items += len(orjson.loads(body)["data"])
            created += orjson.loads(payload)["meta"]["created"]
    finally:
        conn.close()
    return {
        "status": status,
        "calls": max(0, len(bodies) - 1),
        "items": items,
        "created": created,
        "seconds": round(seconds, 3),
        "items_per_s": round(created / seconds) if seconds and created else 0,
        "error": error,
    }


# --- limit=9007199254740991 ------------------------------------------------------------

MARK = b'"resource" : "interactions"'


def stream_all(server: Server, auth: str) -> dict[str, Any]:
    """Read every interaction in one response while sampling the workers' RSS."""
    procs = server.app_processes()
    baseline = rss_bytes(procs)
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes(procs))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=900)
    started = time.perf_counter()
    conn.request(
        "GET",
        "/v2/interactions?limit=9007199254740991",
        headers={"Authorization": f"Bearer {auth}"},
    )
    answer = conn.getresponse()
    first_byte = None
    size = documents = 0
    tail = b""
    while chunk := answer.read(1 << 20):
        first_byte = first_byte or time.perf_counter() - started
        size += len(chunk)
        window = tail + chunk
        documents += window.count(MARK) - tail.count(MARK)
        tail = window[-len(MARK) :]
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    conn.close()
    return {
        "status": answer.status,
        "documents": documents,
        "bytes": size,
        "seconds": round(seconds, 1),
        "first_byte_s": round(first_byte or 0, 3),
        "mb_per_s": round(size / seconds / 1e6, 1),
        "rss_baseline_mb": round(baseline / 1e6, 1),
        "rss_peak_mb": round(peak[0] / 1e6, 1),
        "rss_growth_mb": round((peak[0] - baseline) / 1e6, 1),
        "transfer_encoding": answer.getheader("transfer-encoding"),
    }
