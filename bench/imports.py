"""CSV import (docs/imports.md): a generated voter file through a real server.

    .venv/bin/python bench/imports.py [--rows 100000] [--database-url URL]

Starts `polis-api serve` (one worker) on a database of the benchmark's embedded
PostgreSQL (`polis_bench_imports`, beside the dataset; or on --database-url), makes
a list in a fresh tenant, generates a voter file (one voter in four shares the
household of the voter before; every tenth is on the list) and imports it twice:
the first import creates everything, the second (the same file) must create
nothing. Reports seconds, rows/s and the growth of the server's peak resident
memory over its idle size, sampled every 20 ms, and writes the numbers to
bench/results/imports-<timestamp>.json.

The floor, measured in the same run: the same documents (built from the same file,
with their etags) written straight into the same tables for another fresh tenant,
one multi-row INSERT per kind and 1000 rows, in one transaction: no HTTP, no
parsing or validation, no lookups. What is left is the cost of the tables' indexes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import asyncpg
import httpx
import psutil
from common import JWT_SECRET, PG_DIR, RESULTS_DIR, server_env
from servers import Server

from polis_api import db, jsoncodec
from polis_api.auth import mint_token
from polis_api.config import Settings
from polis_api.documents import repository as repo
from polis_api.documents.envelope import StoredDocument, utc_now_ms
from polis_api.documents.resource import Resource
from polis_api.resources.contact_households import CONTACT_HOUSEHOLDS
from polis_api.resources.contacts import CONTACTS
from polis_api.resources.households import HOUSEHOLDS
from polis_api.resources.lists import LIST_MEMBERS

MAPPING = {
    "externalId": "VoterID",
    "householdExternalId": "HouseholdID",
    "given": "FirstName",
    "surname": "LastName",
    "number": "HouseNumber",
    "streetName": "Street",
    "city": "City",
    "postalCode": "Zip",
    "lat": "Lat",
    "lng": "Lng",
    "phone": "Phone",
    "email": "Email",
    "listId": "ListID",
}
COLUMNS = list(MAPPING.values())
IMPORTS_DATABASE = "polis_bench_imports"


def write_voter_file(out: IO[str], rows: int, list_id: str) -> None:
    out.write(",".join(COLUMNS) + "\n")
    for n in range(rows):
        house = n - 1 if n % 4 == 1 else n  # voters 4k and 4k+1 share a door
        cells = [
            f"V{n:08d}",
            f"H{house:08d}",
            f"Given{n % 997}",
            f"Surname{n}",
            str(1 + house % 400),
            f'"{house % 300} Main Street, North"',
            "Decatur",
            f"{30000 + house % 90:05d}",
            f"{33.7 + (house % 1000) / 10000:.5f}",
            f"{-84.3 - (house % 1000) / 10000:.5f}",
            f"+1 404 555 {n % 10000:04d}",
            f"voter{n}@example.org",
            list_id if n % 10 == 0 else "",
        ]
        out.write(",".join(cells) + "\n")


class PeakRss:
    """The highest resident memory of some processes, sampled in a thread."""

    def __init__(self, procs: list[psutil.Process], every: float = 0.02) -> None:
        self.procs = procs
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> int:
        total = 0
        for proc in self.procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += proc.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            time.sleep(self.every)

    def __enter__(self) -> PeakRss:
        self.peak = self.now()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Run:
    seconds: float
    rows_per_second: float
    rss_growth_mib: float
    report: dict[str, Any]


def import_once(server: Server, headers: dict[str, str], path: Path) -> Run:
    procs = server.app_processes()
    idle = PeakRss(procs).now()
    with PeakRss(procs) as rss, path.open("rb") as body:
        started = time.perf_counter()
        response = httpx.post(
            server.base_url + "/v1/imports",
            params={"mapping": json.dumps(MAPPING)},
            content=body,
            headers={**headers, "Content-Type": "text/csv"},
            timeout=600,
        )
        seconds = time.perf_counter() - started
    response.raise_for_status()
    report = response.json()["data"]
    return Run(
        seconds=round(seconds, 2),
        rows_per_second=round(report["rows"] / seconds),
        rss_growth_mib=round((rss.peak - idle) / 2**20, 1),
        report=report,
    )


async def floor(url: str, path: Path, batch: int = 1000) -> float:
    """Seconds to write the file's documents with no API in the way (see above)."""
    tenant, user = uuid.uuid4(), uuid.uuid4()
    now = utc_now_ms()

    def document(data: dict[str, Any]) -> StoredDocument:
        return StoredDocument(uuid.uuid4(), tenant, tenant, data, now, now, user, user)

    conn = await asyncpg.connect(url)
    try:
        for type_name in ("json", "jsonb"):  # as the server's pool encodes documents
            await conn.set_type_codec(
                type_name, encoder=jsoncodec.dumps, decoder=jsoncodec.loads, schema="pg_catalog"
            )
        started = time.perf_counter()
        async with conn.transaction():
            households: dict[str, uuid.UUID] = {}
            with path.open() as voters:
                rows = csv.DictReader(voters)
                chunk: list[dict[str, str]] = []
                for row in rows:
                    chunk.append(row)
                    if len(chunk) == batch:
                        await _floor_batch(conn, chunk, households, document)
                        chunk = []
                await _floor_batch(conn, chunk, households, document)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def _floor_batch(
    conn: Any,
    rows: list[dict[str, str]],
    households: dict[str, uuid.UUID],
    document: Any,
) -> None:
    new_households = []
    for row in rows:
        if row["HouseholdID"] not in households:
            doc = document(
                {
                    "externalId": row["HouseholdID"],
                    "address": {
                        "number": row["HouseNumber"],
                        "streetName": row["Street"],
                        "city": row["City"],
                        "postalCode": row["Zip"],
                        "coords": {"lat": float(row["Lat"]), "lng": float(row["Lng"])},
                    },
                }
            )
            households[row["HouseholdID"]] = doc.id
            new_households.append(doc)
    contacts = [
        document(
            {
                "externalId": row["VoterID"],
                "profile": {
                    "name": {"anglican": {"given": row["FirstName"], "surname": row["LastName"]}},
                    "emails": [{"email": row["Email"]}],
                    "phones": [{"phone": row["Phone"]}],
                },
                "primaryHouseholdId": str(households[row["HouseholdID"]]),
            }
        )
        for row in rows
    ]
    links = [
        document({"contactId": str(c.id), "householdId": c.data["primaryHouseholdId"]})
        for c in contacts
    ]
    members = [
        document({**link.data, "listId": row["ListID"], "contactHouseholdId": str(link.id)})
        for row, link in zip(rows, links, strict=True)
        if row["ListID"]
    ]
    written: list[tuple[Resource, list[StoredDocument]]] = [
        (HOUSEHOLDS, new_households),
        (CONTACTS, contacts),
        (CONTACT_HOUSEHOLDS, links),
        (LIST_MEMBERS, members),
    ]
    for resource, docs in written:
        await repo.insert_many_new(conn, resource.sql, docs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    args = parser.parse_args()
    url, embedded = args.database_url, None
    if url is None:
        # A database of its own beside the benchmark's dataset, which it must not grow.
        was_running = (PG_DIR / "pgdata" / "postmaster.pid").exists()
        url, embedded = db.start_embedded(PG_DIR, database=IMPORTS_DATABASE)
        if was_running:
            embedded = None
    try:
        run(args, url)
    finally:
        if embedded is not None:
            db.stop_embedded(embedded)


def run(args: argparse.Namespace, url: str) -> None:
    db.run_migrations(url)
    tenant, user = uuid.uuid4(), uuid.uuid4()
    settings = Settings(jwt_secret=JWT_SECRET, data_dir=PG_DIR)
    token = mint_token(settings, roles=["admin"], customer_id=tenant, sub=user, ttl_seconds=3600)
    headers = {"Authorization": f"Bearer {token}"}
    PG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = PG_DIR / "imports-server.log"
    server = Server("polis-api", 1, server_env(url), "/readyz", log_path)
    server.start(headers)
    try:
        made = httpx.post(
            server.base_url + "/v1/lists",
            json={"data": {"organizationId": str(uuid.uuid4()), "name": "Imported"}},
            headers=headers,
        )
        made.raise_for_status()
        with tempfile.TemporaryDirectory(prefix="polis-bench-imports-") as folder:
            path = Path(folder) / "voters.csv"
            with path.open("w") as out:
                write_voter_file(out, args.rows, made.json()["id"])
            size_mib = path.stat().st_size / 2**20
            print(f"voter file: {args.rows} rows, {size_mib:.1f} MiB")
            first = import_once(server, headers, path)
            print(f"first import: {first}")
            again = import_once(server, headers, path)
            print(f"same file again: {again}")
            floor_s = asyncio.run(floor(url, path))
            print(f"floor: {floor_s:.2f} s")
    finally:
        server.stop()
    assert first.report["failed"] == 0, first.report["errors"]
    assert sum(again.report["created"].values()) == 0, again.report
    result = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": args.rows,
        "file_mib": round(size_mib, 1),
        "cores": os.cpu_count(),
        "first": first.__dict__,
        "again": again.__dict__,
        "floor_seconds": round(floor_s, 2),
        "floor_rows_per_second": round(args.rows / floor_s),
        "import_vs_floor": round(floor_s / first.seconds, 2),
        "load_average": os.getloadavg(),
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    out_path = RESULTS_DIR / f"imports-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out_path}")


if __name__ == "__main__":
    main()
