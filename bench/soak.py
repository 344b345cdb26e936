"""`make soak`: polis-api under ten minutes of mixed load, its memory sampled each minute.

Starts `polis-api serve --workers 2` as users run it (rate limiting on, 1 000 tokens as
in the benchmark) on a dataset built by bench/dataset.py, and drives it from other
processes: every endpoint of the benchmark at once through wrk (GET by id, list-50
pages, delta syncs, POST interactions that move their door, PATCH campaigns with
If-Match), one wrk run per minute, plus a door-record bulk every 30 s and a full
`limit=9007199254740991` stream every 3 minutes from this process. At the start and
after every minute it samples the RSS of each server process (the parent and each
worker); every answer is counted by status. At the end it checks the database: every
acknowledged interaction is stored, and every door the load touched follows the
latest of its interactions. Writes bench/results/soak-<timestamp>.md (+ .json, and the
server's log in .raw).

    .venv/bin/python bench/soak.py                  # 10 minutes (11 in all; +1 to build)
    .venv/bin/python bench/soak.py --minutes 2      # a shorter run

The soak has a database of its own (`polis_soak`, the benchmark's dataset, built once
in the benchmark's embedded PostgreSQL), so its writes never change what `make bench`
measures and a benchmark's clean-up never deletes the writes the soak checks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import dataset
import psutil
import scenarios
from common import (
    AUTHOR,
    REPO,
    RESULTS_DIR,
    TENANT,
    Scale,
    server_env,
    start_database,
    stop_database,
)
from loadgen import Endpoint, run_wrk, wrk_path
from run import git_state, log
from servers import CpuWindow, Server, machine_load, postgres_processes

from polis_api import db

# The mix: one wrk process per line, all at once, each closed-loop at its connections.
MIX: tuple[tuple[Endpoint, int], ...] = (
    (Endpoint("get-interaction", "get_interaction.lua"), 4),
    (Endpoint("get-campaign", "get_campaign.lua"), 1),
    (Endpoint("list-50", "list_interactions.lua"), 2),
    (Endpoint("delta-sync", "delta_sync.lua"), 2),
    (Endpoint("post-interaction", "post_interaction.lua", {"SOAK_IDS": "1"}, write=True), 4),
    (Endpoint("patch-campaign", "patch_campaign.lua", write=True), 2),
    # The organiser's view (issue 12): progress, the review ranking, a page as CSV.
    (Endpoint("progress", "campaign_route.lua", {"BENCH_SUFFIX": "/progress"}), 1),
    (Endpoint("review", "campaign_route.lua", {"BENCH_SUFFIX": "/review"}), 1),
    (Endpoint("list-50-csv", "list_interactions.lua", {"BENCH_ACCEPT": "text/csv"}), 1),
)
BULK_DOORS = 10_000  # the bulk calls rotate over the first 10 000 doors of the bulk campaign
MB = 1e6


@dataclass(frozen=True)
class SoakScale(Scale):
    """The benchmark's dataset, in a database of the soak's own."""

    @property
    def database(self) -> str:
        plain = Scale(self.interactions, self.households).database
        return plain.replace("polis_bench", "polis_soak", 1)


@dataclass
class Minute:
    """What one minute of load did, and the memory after it."""

    minute: int
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    socket_errors: int = 0
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    one_shots: list[dict[str, Any]] = field(default_factory=list)
    rss: dict[str, int] = field(default_factory=dict)
    server_cpu_pct: float = 0.0
    database_cpu_pct: float = 0.0
    other_cpu_pct: float = 0.0
    # Dead row versions of the tables the load rewrites, and the age of the oldest open
    # transaction: what autovacuum may not yet (or may not at all) clean away.
    dead_rows: dict[str, int] = field(default_factory=dict)
    oldest_transaction_s: float = 0.0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def row(self) -> dict[str, Any]:
        return {
            "minute": self.minute,
            "seconds": round(self.seconds, 1),
            "requests": self.requests,
            "rps": round(self.requests / self.seconds, 1) if self.seconds else 0,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "server_errors": self.server_errors,
            "socket_errors": self.socket_errors,
            "rss": self.rss,
            "server_cpu_pct": round(self.server_cpu_pct),
            "database_cpu_pct": round(self.database_cpu_pct),
            "other_cpu_pct": round(self.other_cpu_pct),
            "dead_rows": self.dead_rows,
            "oldest_transaction_s": round(self.oldest_transaction_s),
            "endpoints": self.endpoints,
            "one_shots": self.one_shots,
        }


# The tables the mix rewrites in place (knocks move doors, PATCHes campaigns, reads
# compact tallies, the limiter its buckets), whose dead row versions the soak follows.
REWRITTEN_TABLES = (
    "contact_household_campaigns",
    "campaigns",
    "progress_tallies",
    "rate_limits",
    "interactions",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=10, help="minutes of load (default 10)")
    parser.add_argument(
        "--minute-seconds", type=float, default=60, help="length of a 'minute' (for smoke runs)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--bulk-every", type=float, default=30, help="seconds (0: no bulk)")
    parser.add_argument("--bulk-items", type=int, default=1000)
    parser.add_argument("--stream-every", type=float, default=3, help="minutes (0: no stream)")
    parser.add_argument(
        "--no-rate-limit", action="store_true", help="POLIS_RATE_LIMIT_PER_MINUTE=0"
    )
    parser.add_argument("--scale", type=float, default=1.0, help="x 1 M interactions")
    parser.add_argument("--households", type=int, default=200_000)
    args = parser.parse_args(argv)
    if args.minutes < 1:
        parser.error("--minutes must be at least 1")
    return args


class OneShots:
    """The door-record bulk and the full stream, each on a thread of its own and a clock.

    Each call is recorded when it ends; the soak's main loop collects them after every
    minute. Nothing starts so late that it would run past the end of the load.
    """

    def __init__(self, soak: Soak) -> None:
        self.soak = soak
        self.done: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        args = self.soak.args
        minute = args.minute_seconds
        if args.bulk_every > 0:
            self._every(self.bulk, first=min(20, minute / 3), every=args.bulk_every, last=15)
        if args.stream_every > 0:
            every = args.stream_every * minute
            self._every(self.stream, first=1.5 * minute, every=every, last=minute)

    def _every(self, action: Any, first: float, every: float, last: float) -> None:
        started = self.soak.load_started
        end = started + self.soak.args.minutes * self.soak.args.minute_seconds

        def loop() -> None:
            at = started + first
            while at < end - last and not self.stop.wait(max(0.0, at - time.monotonic())):
                try:
                    result = action()
                except Exception as exc:  # a dropped connection, say: count it, go on
                    result = {"kind": action.__name__, "status": 0, "error": repr(exc)[:300]}
                result["at_s"] = round(time.monotonic() - started, 1)
                with self.lock:
                    self.done.append(result)
                at += every

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        self.threads.append(thread)

    def bulk(self) -> dict[str, Any]:
        soak = self.soak
        n = soak.bulk_calls
        soak.bulk_calls += 1
        size = soak.args.bulk_items
        windows = max(1, len(soak.bulk_pairs) // size)
        pairs = soak.bulk_pairs[(n % windows) * size :][:size]
        status = soak.bulk_statuses[n % 2]  # each door changes its status at every call
        result = scenarios.post_bulk(soak.server, pairs, status.id, soak.tokens[n % 100])
        return {"kind": "bulk", **result}

    def stream(self) -> dict[str, Any]:
        result = scenarios.stream_all(self.soak.server, self.soak.tokens[500])
        return {"kind": "stream", **result}

    def collect(self) -> list[dict[str, Any]]:
        with self.lock:
            done, self.done = self.done, []
        return done

    def finish(self) -> list[dict[str, Any]]:
        self.stop.set()
        for thread in self.threads:
            thread.join()
        return self.collect()


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.scale = SoakScale(interactions=args.scale, households=args.households)
        self.started = datetime.now(UTC)
        self.stamp = self.started.strftime("%Y%m%d-%H%M%S")
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = RESULTS_DIR / f"soak-{self.stamp}.raw"
        self.minutes: list[Minute] = []
        self.acknowledged: list[str] = []
        self.bulk_calls = 0
        self.load_started = 0.0
        self.meta: dict[str, Any] = {
            "started": self.started.isoformat(timespec="seconds"),
            "command": " ".join(["bench/soak.py", *sys.argv[1:]]),
            "database": self.scale.database,
            "workers": args.workers,
            "rate_limit": "off" if args.no_rate_limit else "1200/min per token, 1000 tokens",
            "mix": {e.name: c for e, c in MIX},
        }

    # --- setting up, with the benchmark's own pieces ------------------------------------

    def execute(self) -> Path:
        wrk_path()
        self.meta["load_before_pct"] = round(machine_load())
        url, pg, started_pg = start_database(self.scale)
        self.url = url
        try:
            self.prepare()
            env = {"POLIS_RATE_LIMIT_PER_MINUTE": "0"} if self.args.no_rate_limit else {}
            self.server = Server(
                app="polis-api",
                workers=self.args.workers,
                env={**server_env(url), **env},
                ready_path="/readyz",
                log_path=self.log_path,
            )
            db.run_migrations(url)  # as users do before serving (`polis-api migrate`)
            # The code under test is what the tree holds when the server starts.
            commit, diff = server_state()
            self.meta["commit"], self.meta["dirty"] = commit, bool(diff)
            self.server.start({"Authorization": f"Bearer {self.tokens[0]}"})
            try:
                self.soak()
            finally:
                self.server.stop()
            # A commit made meanwhile that leaves the server's files alone does not count.
            self.meta["tree_changed"] = server_diff(commit) != diff
            self.check = asyncio.run(self.consistency())
            log(f"consistency: {self.check}")
        finally:
            if started_pg:
                stop_database(pg)
        return self.write()

    def prepare(self) -> None:
        t0 = time.perf_counter()
        dataset.ensure(self.url, self.scale, log=log)
        db.run_migrations(self.url)
        files = asyncio.run(dataset.write_id_files(self.url, self.scale))
        self.data_dir = Path(files["dir"])
        self.tokens = scenarios.write_tokens(self.data_dir)
        removed = asyncio.run(scenarios.remove_benchmark_writes(self.url))
        self.bulk_pairs = scenarios.bulk_pairs(self.scale, BULK_DOORS)
        self.bulk_statuses = [
            asyncio.run(scenarios.status_of(self.url, name)) for name in ("Not Home", "Come Back")
        ]
        log(
            f"{self.scale.database} ready in {time.perf_counter() - t0:.0f} s"
            f" ({removed} interactions of an earlier soak removed)"
        )

    # --- the load ------------------------------------------------------------------------

    def soak(self) -> None:
        self.roles = self.process_roles()
        self.minutes.append(Minute(0, rss=self.rss()))
        log(f"polis-api serve --workers {self.args.workers} on port {self.server.port}")
        log(self.header())
        log(self.line(self.minutes[0]))
        self.load_started = time.monotonic()
        one_shots = OneShots(self)
        one_shots.start()
        try:
            for n in range(1, self.args.minutes + 1):
                minute = self.minute(n)
                last = n == self.args.minutes
                minute.one_shots = one_shots.finish() if last else one_shots.collect()
                for shot in minute.one_shots:
                    minute.statuses[shot["status"]] += 1
                minute.rss = self.rss()
                minute.dead_rows, minute.oldest_transaction_s = asyncio.run(self.vacuum_state())
                self.minutes.append(minute)
                log(self.line(minute))
        finally:
            one_shots.finish()

    def minute(self, n: int) -> Minute:
        """One wrk process per endpoint of the mix, all for one minute, CPU measured."""
        asyncio.run(scenarios.write_patch_etags(self.url, self.data_dir))
        minute = Minute(n)
        seconds = self.args.minute_seconds
        with tempfile.TemporaryDirectory() as tmp:
            outs = {e.name: Path(tmp) / f"{e.name}.txt" for e, _ in MIX}

            def drive(endpoint: Endpoint, connections: int) -> dict[str, Any]:
                soak = Endpoint(
                    endpoint.name,
                    "soak.lua",
                    {
                        **endpoint.env,
                        "SOAK_SCRIPT": endpoint.script,
                        "SOAK_OUT": str(outs[endpoint.name]),
                    },
                )
                return run_wrk(self.server, soak, connections, seconds, self.data_dir)

            started = time.monotonic()
            with (
                CpuWindow(self.server.all_processes, postgres_processes) as cpu,
                ThreadPoolExecutor(len(MIX)) as pool,
            ):
                futures = [(e, c, pool.submit(drive, e, c)) for e, c in MIX]
                summaries = [(e, c, f.result()) for e, c, f in futures]
            minute.seconds = time.monotonic() - started
            for endpoint, connections, summary in summaries:
                statuses, ids = read_soak_out(outs[endpoint.name])
                minute.statuses.update(statuses)
                self.acknowledged.extend(ids)
                socket = sum(v for k, v in summary["errors"].items() if k != "status")
                minute.socket_errors += socket
                minute.endpoints[endpoint.name] = {
                    "connections": connections,
                    "requests": summary["requests"],
                    "statuses": {str(k): v for k, v in sorted(statuses.items())},
                    "socket_errors": socket,
                    "p50_ms": summary["latency_us"]["p50"] / 1000,
                    "p99_ms": summary["latency_us"]["p99"] / 1000,
                    "acknowledged_ids": len(ids),
                }
        cores = cpu.elapsed * (os.cpu_count() or 1) / 100  # core-seconds per percent
        minute.server_cpu_pct = cpu.server_s / cores
        minute.database_cpu_pct = cpu.database_s / cores
        minute.other_cpu_pct = cpu.other_pct
        return minute

    # --- memory ----------------------------------------------------------------------------

    def process_roles(self) -> dict[int, str]:
        """pid -> "parent" / "worker N" / what else uvicorn started (its resource tracker)."""
        tree = self.server.all_processes()
        workers = sorted(p.pid for p in self.server.app_processes())
        roles = {}
        for proc in tree[1:]:
            try:
                tracker = "resource_tracker" in " ".join(proc.cmdline())
            except psutil.Error:
                tracker = False
            roles[proc.pid] = "resource tracker" if tracker else f"process {proc.pid}"
        roles[tree[0].pid] = "parent"
        for n, pid in enumerate(workers, 1):
            roles[pid] = f"worker {n}"
        return roles

    def rss(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for proc in self.server.all_processes():
            role = self.roles.get(proc.pid, f"new process {proc.pid}")  # a restarted worker
            try:
                sizes[role] = sizes.get(role, 0) + proc.memory_info().rss
            except psutil.NoSuchProcess:  # it ended between listing and sampling
                continue
        order = {"parent": 0, "worker": 1}
        return dict(sorted(sizes.items(), key=lambda kv: (order.get(kv[0].split()[0], 2), kv[0])))

    async def vacuum_state(self) -> tuple[dict[str, int], float]:
        conn = await asyncpg.connect(self.url)
        try:
            dead = await conn.fetch(
                "SELECT relname, n_dead_tup FROM pg_stat_user_tables WHERE relname = ANY($1)",
                list(REWRITTEN_TABLES),
            )
            oldest = await conn.fetchval(
                "SELECT coalesce(extract(epoch FROM max(now() - xact_start)), 0)::float8"
                " FROM pg_stat_activity WHERE backend_xmin IS NOT NULL AND pid <> pg_backend_pid()"
            )
        finally:
            await conn.close()
        return {row["relname"]: row["n_dead_tup"] for row in dead}, oldest

    # --- the database afterwards ------------------------------------------------------------

    async def consistency(self) -> dict[str, Any]:
        """Every acknowledged interaction is stored once; every door the load touched
        exists and follows the latest (by timestamp) of its stored interactions."""
        conn = await asyncpg.connect(self.url)
        try:
            acknowledged = sorted(set(self.acknowledged))
            stored = await conn.fetchval(
                "SELECT count(*) FROM interactions WHERE customer_id = $1 "
                "AND id = ANY($2::uuid[]) AND NOT is_deleted",
                TENANT,
                acknowledged,
            )
            written = await conn.fetchval(
                "SELECT count(*) FROM interactions WHERE customer_id = $1 AND created_by <> $2",
                TENANT,
                AUTHOR,
            )
            doors = await conn.fetchrow(DOORS_SQL, TENANT, AUTHOR)
        finally:
            await conn.close()
        return {
            "acknowledged_interactions": len(self.acknowledged),
            "distinct_acknowledged_ids": len(acknowledged),
            "acknowledged_stored": stored,
            "writes_lost": len(acknowledged) - stored,
            "stored_not_acknowledged": written - stored,
            **dict(doors),
        }

    # --- the report ---------------------------------------------------------------------------

    def header(self) -> str:
        roles = table_roles(self.minutes[0].rss)
        columns = " ".join(f"{r + ' MB':>11}" for r in roles)
        return (
            f"{'minute':>6} {columns} {'requests':>9} {'req/s':>7} {'5xx':>4} {'sock':>4}"
            f" {'app %':>5} {'db %':>5} {'other %':>7}"
        )

    def line(self, m: Minute) -> str:
        roles = table_roles(self.minutes[0].rss)
        rss = " ".join(f"{m.rss.get(r, 0) / MB:>11.1f}" for r in roles)
        rps = m.requests / m.seconds if m.seconds else 0
        return (
            f"{m.minute:>6} {rss} {m.requests:>9,} {rps:>7,.0f} {m.server_errors:>4}"
            f" {m.socket_errors:>4} {m.server_cpu_pct:>5.0f} {m.database_cpu_pct:>5.0f}"
            f" {m.other_cpu_pct:>7.0f}"
        )

    def write(self) -> Path:
        self.meta["total_s"] = round((datetime.now(UTC) - self.started).total_seconds())
        results = {
            "meta": self.meta,
            "minutes": [m.row() for m in self.minutes],
            "summary": self.summary(),
            "consistency": self.check,
        }
        path = RESULTS_DIR / f"soak-{self.stamp}.md"
        text = markdown(results)
        path.write_text(text)
        (RESULTS_DIR / f"soak-{self.stamp}.json").write_text(
            json.dumps(results, indent=1, default=str)
        )
        log("\n" + text)
        log(f"written: {path} (+ .json; the server's log in {self.log_path.name})")
        return path

    def summary(self) -> dict[str, Any]:
        first, last = self.minutes[1], self.minutes[-1]
        statuses: Counter[int] = Counter()
        for m in self.minutes:
            statuses.update(m.statuses)
        log_text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return {
            "rss_mb": {
                role: {
                    "start": round(self.minutes[0].rss.get(role, 0) / MB, 1),
                    "minute_1": round(first.rss.get(role, 0) / MB, 1),
                    "last": round(last.rss.get(role, 0) / MB, 1),
                    "growth_1_to_last": round((last.rss.get(role, 0) - first.rss[role]) / MB, 1),
                }
                for role in first.rss
            },
            "requests": sum(statuses.values()),
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "server_errors": sum(v for k, v in statuses.items() if k >= 500),
            "socket_errors": sum(m.socket_errors for m in self.minutes),
            "seconds": round(sum(m.seconds for m in self.minutes), 1),
            "server_log_tracebacks": log_text.count("Traceback"),
            "processes_changed": sorted(set(last.rss) ^ set(self.minutes[0].rss)),
        }


# Doors touched by the soak: (campaign, contact-household) of its interactions.
DOORS_SQL = """
WITH soak AS (
    SELECT data ->> 'campaignId' AS campaign, data ->> 'contactHouseholdId' AS door,
           max((data ->> 'timestamp')::timestamptz) AS latest
    FROM interactions
    WHERE customer_id = $1 AND created_by <> $2 AND NOT is_deleted
    GROUP BY 1, 2
), checked AS (
    SELECT s.latest, d.id AS record,
           (d.data -> 'lastInteraction' ->> 'timestamp')::timestamptz AS follows_at,
           EXISTS (
               SELECT 1 FROM interactions i
               WHERE i.customer_id = $1
                 AND i.id = (d.data -> 'lastInteraction' ->> 'interactionId')::uuid
                 AND i.data ->> 'campaignId' = s.campaign
                 AND i.data ->> 'contactHouseholdId' = s.door
                 AND (i.data ->> 'timestamp')::timestamptz = s.latest
                 AND NOT i.is_deleted
           ) AS follows_latest
    FROM soak s
    LEFT JOIN contact_household_campaigns d
      ON d.customer_id = $1 AND NOT d.is_deleted
     AND d.data ->> 'campaignId' = s.campaign AND d.data ->> 'contactHouseholdId' = s.door
)
SELECT count(*) AS doors_touched,
       count(*) FILTER (WHERE record IS NULL) AS doors_missing,
       count(*) FILTER (WHERE record IS NOT NULL AND NOT follows_latest) AS doors_not_latest
FROM checked
"""


SERVER_FILES = ("src", "migrations", "pyproject.toml")  # the code under test


def server_state() -> tuple[str, str]:
    """The commit, and how the server's own files in the tree differ from it ("" if
    not at all; bench/, docs/ and tests/ may change: they are not the code under test)."""
    commit, _ = git_state()
    return commit, server_diff(commit)


def server_diff(commit: str) -> str:
    diff = ["git", "diff", commit, "--", *SERVER_FILES]
    return subprocess.run(diff, cwd=REPO, capture_output=True, text=True, check=False).stdout


def table_roles(rss: dict[str, int]) -> list[str]:
    """The parent and the workers: the per-minute tables leave out the small helpers."""
    return [role for role in rss if role == "parent" or role.startswith("worker")]


def read_soak_out(path: Path) -> tuple[Counter[int], list[str]]:
    """soak.lua's "status <code> <count>" and "id <uuid>" lines."""
    statuses: Counter[int] = Counter()
    ids: list[str] = []
    for line in path.read_text().splitlines():
        kind, *rest = line.split()
        if kind == "status":
            statuses[int(rest[0])] += int(rest[1])
        elif kind == "id":
            ids.append(rest[0])
    return statuses, ids


def markdown(results: dict[str, Any]) -> str:
    meta, summary, check = results["meta"], results["summary"], results["consistency"]
    minutes = results["minutes"]
    roles = table_roles(minutes[0]["rss"])
    mix = ", ".join(f"{name} x{c}" for name, c in meta["mix"].items())
    lines = [
        f"# polis-api soak — {meta['started']}",
        "",
        f"Commit `{meta['commit']}`{' (with uncommitted changes)' if meta['dirty'] else ''}"
        f"{' (the tree changed during the run)' if meta.get('tree_changed') else ''};"
        f" `polis-api serve --workers {meta['workers']}`; database `{meta['database']}`;"
        f" rate limiting {meta['rate_limit']}; `{meta['command']}`;"
        f" other load before the run {meta['load_before_pct']} %; {meta['total_s'] / 60:.1f} min",
        "",
        *([f"Note: {meta['note']}", ""] if meta.get("note") else []),
        f"Load: wrk, one process per endpoint, connections each: {mix};"
        " plus the door-record bulk and the full stream (below).",
        "",
        "RSS in MB after each minute (0: before the load). app / db / other: CPU of the"
        " server's processes, of PostgreSQL and of everything else, in % of all cores."
        " Dead rows: row versions autovacuum has not removed yet, in thousands, of "
        + ", ".join(REWRITTEN_TABLES)
        + "; oldest: the oldest open transaction's age at the minute's end (a full"
        " stream holds one, and no row version younger than it can be removed).",
        "",
        "| minute | "
        + " | ".join(f"RSS {r}" for r in roles)
        + " | requests | req/s | 5xx | socket errors | app | db | other"
        + " | dead rows, k | oldest, s |",
        "|---:|" + "---:|" * len(roles) + "---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for m in minutes:
        rss = " | ".join(f"{m['rss'].get(r, 0) / MB:.1f}" for r in roles)
        dead = m.get("dead_rows", {})
        dead_k = " / ".join(f"{dead.get(t, 0) / 1000:.0f}" for t in REWRITTEN_TABLES)
        lines.append(
            f"| {m['minute']} | {rss} | {m['requests']:,} | {m['rps']:,.0f} |"
            f" {m['server_errors']} | {m['socket_errors']} | {m['server_cpu_pct']} % |"
            f" {m['database_cpu_pct']} % | {m['other_cpu_pct']} % | {dead_k} |"
            f" {m.get('oldest_transaction_s', 0)} |"
        )
    last = minutes[-1]["minute"]
    lines += [
        "",
        "## Summary",
        "",
        f"| | {' | '.join(summary['rss_mb'])} |",
        "|---|" + "---:|" * len(summary["rss_mb"]),
    ]
    for key, label in (
        ("start", "RSS before the load, MB"),
        ("minute_1", "RSS after minute 1, MB"),
        ("last", f"RSS after minute {last}, MB"),
        ("growth_1_to_last", f"**growth, minute 1 to {last}, MB**"),
    ):
        values = " | ".join(str(v[key]) for v in summary["rss_mb"].values())
        lines.append(f"| {label} | {values} |")
    statuses = ", ".join(f"{k}: {v:,}" for k, v in summary["statuses"].items())
    lines += [
        "",
        f"- Requests: {summary['requests']:,} in {summary['seconds']:.0f} s ({statuses})",
        f"- 5xx: {summary['server_errors']}; socket errors (connect, read, write, timeout):"
        f" {summary['socket_errors']}; tracebacks in the server log:"
        f" {summary['server_log_tracebacks']}; processes that appeared or went:"
        f" {summary['processes_changed'] or 'none'}",
        f"- Interactions acknowledged (201): {check['acknowledged_interactions']:,}; stored:"
        f" {check['acknowledged_stored']:,}; **writes lost: {check['writes_lost']}**;"
        f" stored but not acknowledged (in flight when wrk stopped at a minute's end):"
        f" {check['stored_not_acknowledged']}",
        f"- Doors those interactions touched: {check['doors_touched']:,}; missing:"
        f" {check['doors_missing']}; not following their latest interaction:"
        f" {check['doors_not_latest']}",
        "",
        "## Per endpoint",
        "",
        # Minute to minute an endpoint's count swings with what the others do, so its
        # trend is read from the first and last thirds of the run.
        "Requests a minute, averaged over the first and the last third of the minutes:"
        " an endpoint whose work grows with what the soak writes falls between them.",
        "",
        f"| endpoint | conns | requests | statuses | p99 ms, minute 1 | p99 ms, minute {last}"
        " | req/min, first third | req/min, last third | last / first |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    third = max(1, (len(minutes) - 1) // 3)
    for name in meta["mix"]:
        per = [m["endpoints"][name] for m in minutes[1:]]
        counts: Counter[str] = Counter()
        for p in per:
            counts.update(p["statuses"])
        early = sum(p["requests"] for p in per[:third]) / third
        late = sum(p["requests"] for p in per[-third:]) / third
        lines.append(
            f"| {name} | {per[0]['connections']} | {sum(p['requests'] for p in per):,} |"
            f" {', '.join(f'{k}: {v:,}' for k, v in sorted(counts.items()))} |"
            f" {per[0]['p99_ms']:.1f} | {per[-1]['p99_ms']:.1f} |"
            f" {early:,.0f} | {late:,.0f} | {late / early if early else 0:.2f} |"
        )
    shots = [s for m in minutes for s in m["one_shots"]]
    bulks = [s for s in shots if s["kind"] == "bulk" and s["status"]]
    streams = [s for s in shots if s["kind"] == "stream" and s["status"]]
    lines += ["", "## Door-record bulk and full stream", ""]
    if bulks:
        seconds = sorted(s["seconds"] for s in bulks)
        lines.append(
            f"- Bulk: {len(bulks)} calls of {bulks[0]['items']:,} items; statuses"
            f" {dict(Counter(s['status'] for s in bulks))}; items written"
            f" {sum(s['written'] for s in bulks):,}; {seconds[0]} to {seconds[-1]} s each"
        )
    for s in shots:
        if not s["status"] or (s["kind"] == "bulk" and s["status"] != 200):
            lines.append(f"- **{s['kind']} at {s['at_s']:.0f} s failed**: {s.get('error')}")
    for s in streams:
        lines.append(
            f"- Stream at {s['at_s']:.0f} s: status {s['status']}, {s['documents']:,} documents,"
            f" {s['bytes'] / MB:,.0f} MB in {s['seconds']} s; workers' RSS +{s['rss_growth_mb']}"
            " MB at its peak"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    Soak(parse_args(argv)).execute()
    return 0


if __name__ == "__main__":
    sys.exit(main())
