"""CSV export from a real server: every interaction of the tenant streamed as CSV,
the server's memory sampled while it streams, and rows/s against a floor measured in
the same run: PostgreSQL's own ``COPY (...) TO STDOUT CSV`` of the same rows and
columns through asyncpg (no HTTP, no quoting rule, no formula neutralising), and of
the rows' raw JSON (reading the rows and nothing more).

    .venv/bin/python bench/export.py [--interactions 1000000] [--quick]

Builds (or reuses) the dataset with bench/dataset.py. Prints one JSON object; the
numbers go to docs/performance.md, "CSV export".
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import dataset
from common import RESULTS_DIR, TENANT, Scale, server_env, start_database, stop_database, token
from servers import Server, rss_bytes

from polis_api.documents import repository as repo
from polis_api.documents.csv_columns import model_columns
from polis_api.documents.listing import LIMIT_ALL
from polis_api.resources.interactions import INTERACTIONS

READ_SIZE = 1 << 20
SAMPLE_SECONDS = 0.25
MIB = 1 << 20


@dataclass
class Stream:
    """What the client saw, and the server's RSS sampled while it streamed."""

    header: list[str] = field(default_factory=list)
    rows: int = 0
    bytes: int = 0
    first_byte_s: float = 0.0
    seconds: float = 0.0
    rss: list[int] = field(default_factory=list)

    def report(self, baseline: int) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "columns": len(self.header),
            "mib": round(self.bytes / MIB, 1),
            "first_byte_s": round(self.first_byte_s, 2),
            "seconds": round(self.seconds, 1),
            "rows_per_s": round(self.rows / self.seconds),
            "rss_mib": {
                "before": round(baseline / MIB, 1),
                "median": round(statistics.median(self.rss) / MIB, 1),
                "max": round(max(self.rss) / MIB, 1),
                "samples": len(self.rss),
            },
        }


def stream_csv(server: Server, headers: dict[str, str]) -> Stream:
    """GET every interaction as CSV, reading as fast as the server sends."""
    seen = Stream()
    done = threading.Event()
    sampler = threading.Thread(target=_sample_rss, args=(server, seen.rss, done))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    started = time.perf_counter()
    sampler.start()
    try:
        conn.request(
            "GET",
            f"/v2/interactions?limit={LIMIT_ALL}",
            headers={**headers, "Accept": "text/csv"},
        )
        answer = conn.getresponse()
        if answer.status != 200:
            raise RuntimeError(f"HTTP {answer.status}: {answer.read(2000).decode()}")
        first = answer.read1(READ_SIZE)
        seen.first_byte_s = time.perf_counter() - started
        while b"\r\n" not in first:  # the header may span chunks
            first += answer.read1(READ_SIZE)
        line_ends = first.count(b"\n")
        seen.header = first.split(b"\r\n", 1)[0].decode().replace('"', "").split(",")
        seen.bytes = len(first)
        while chunk := answer.read1(READ_SIZE):
            seen.bytes += len(chunk)
            line_ends += chunk.count(b"\n")  # a CRLF may straddle two reads
        seen.seconds = time.perf_counter() - started
        seen.rows = line_ends - 1  # the header's line
    finally:
        done.set()
        sampler.join()
        conn.close()
    return seen


def _sample_rss(server: Server, samples: list[int], done: threading.Event) -> None:
    while not done.wait(SAMPLE_SECONDS):
        samples.append(rss_bytes(server.app_processes()))


async def copy_floors(url: str, expected_header: list[str]) -> dict[str, Any]:
    """COPY ... TO STDOUT CSV of the same rows: with the same columns (each a plain
    path lookup), and of each row's raw ``data`` (reading the rows and nothing more)."""
    conn = await asyncpg.connect(url)
    try:
        names, values = await _same_columns(conn)
        if names != expected_header:
            differ = sorted(set(names) ^ set(expected_header))[:5]
            raise RuntimeError(f"the floor's columns are not the server's: {differ}")
        same = await _copy(conn, values)
        raw = await _copy(conn, ["id", "data"])
    finally:
        await conn.close()
    return {"same_columns": same, "raw_rows": raw}


async def _copy(conn: asyncpg.Connection, values: list[str]) -> dict[str, Any]:
    query = (
        f"SELECT {', '.join(values)} FROM interactions "
        f"WHERE customer_id = '{TENANT}' AND NOT is_deleted ORDER BY id"
    )
    counted = {"bytes": 0, "line_ends": 0}

    async def sink(chunk: bytes) -> None:
        counted["bytes"] += len(chunk)
        counted["line_ends"] += chunk.count(b"\n")

    started = time.perf_counter()
    await conn.copy_from_query(query, output=sink, format="csv")
    seconds = time.perf_counter() - started
    rows = counted["line_ends"]
    return {
        "rows": rows,
        "mib": round(counted["bytes"] / MIB, 1),
        "seconds": round(seconds, 1),
        "rows_per_s": round(rows / seconds),
    }


async def _same_columns(conn: asyncpg.Connection) -> tuple[list[str], list[str]]:
    """The export's columns (found as the server finds them) and a plain text
    expression for each."""
    names = ["id", "meta.created", "meta.modified"]
    values = ["id", repo.timestamp_sql("created"), repo.timestamp_sql("modified")]
    columns = model_columns(INTERACTIONS.data_model, INTERACTIONS.csv_open)
    query = repo.ListQuery(
        where="customer_id = $1 AND NOT is_deleted",
        order_by="id ASC",
        params=[TENANT],
        limit=LIMIT_ALL,
        skip=0,
    )
    for part in INTERACTIONS.csv_open:
        keys = await repo.open_keys(
            conn, INTERACTIONS.sql, query, part.at, part.depth, page=False, limit=100_000
        )
        columns += [part.column(key) for key in keys]
    for column in columns:
        names.append(column.name)
        values.append(f"data #>> '{{{','.join(column.path)}}}'")
    return names, values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="20 000 interactions")
    args = parser.parse_args(argv)
    count = 20_000 if args.quick else args.interactions
    households = 200_000 if count >= 1_000_000 else max(2_000, count // 5)
    scale = Scale(interactions=count / 1_000_000, households=households)
    url, database, started = start_database(scale)
    try:
        dataset.ensure(url, scale, log=lambda line: print(line, file=sys.stderr))
        result = {"interactions": scale.total_interactions, **run(url)}
    finally:
        if started:
            stop_database(database)
    print(json.dumps(result, indent=2))
    return 0


def run(url: str) -> dict[str, Any]:
    RESULTS_DIR.mkdir(exist_ok=True)
    server = Server(
        app="polis-api",
        workers=1,
        env=server_env(url),
        ready_path="/readyz",
        log_path=RESULTS_DIR / "export-server.raw",  # gitignored
    )
    headers = {"Authorization": f"Bearer {token()}"}
    server.start(headers)
    try:
        time.sleep(1)  # let start-up allocations settle before the baseline
        baseline = rss_bytes(server.app_processes())
        csv = stream_csv(server, headers)
        after = rss_bytes(server.app_processes())
    finally:
        server.stop()
    floors = asyncio.run(copy_floors(url, csv.header))
    rate = csv.rows / csv.seconds
    return {
        "csv_stream": {**csv.report(baseline), "rss_after_mib": round(after / MIB, 1)},
        "copy_floor": floors,
        "ratio_to_floor": {
            name: round(rate / floor["rows_per_s"], 2) for name, floor in floors.items()
        },
    }


if __name__ == "__main__":
    sys.exit(main())
