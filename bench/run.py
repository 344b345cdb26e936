"""`make bench`: polis-api against the floor and the naive app, on one dataset, in one run.

Builds (or reuses) the dataset, then for 1 and 2 workers starts each server as users
run it, drives every endpoint with wrk (warm-up, then a measured window at 16 and 64
connections) while sampling CPU, runs the bulk call and the full stream once, and
writes bench/results/<timestamp>.md (+ .json, and the plans in .raw). Issue 10's
bulk contact import and a list's joined members are compared with the floor too, and
so are the change feed page of 500 and issue 11 and 12's reads (bench/routes.py);
then bench/geo.py (issue 11: bbox, near, the walk-list download at its own scale)
unless --no-geo.

    .venv/bin/python bench/run.py            # the full run (about 23 minutes)
    .venv/bin/python bench/run.py --quick    # a smoke run (about 5 minutes)
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dataset
import explain
import export
import report
import routes
import scenarios
from common import BENCH, RESULTS_DIR, Scale, server_env, start_database, stop_database
from loadgen import Endpoint, Measurement, measure, wrk_path
from servers import Server, machine_load

from polis_api import db
from polis_api.config import Settings
from polis_api.documents.listing import LIMIT_ALL

APPS = ("polis-api", "floor", "naive")
READS = ("get-interaction", "list-50", "list-50-deep")
# Issue 10's joined read: the floor serves it too, the naive app does not.
MEMBER_READS = ("members-page", "members-all")
# Issue 13's write floor: the same knock (and outbox) the floor writes without the rest.
WRITES = ("post-interaction", "bulk-interactions")
BULK_KNOCKS = 200  # items per outbox call, as a phone back from a dead zone sends them
PAGE_SIZE = Settings.model_fields["max_page_size"].default  # the largest page polis-api gives
QUIET = 15  # percent of all cores busy before the run counts as a quiet machine


def endpoints(
    url: str, data_dir: Path, deep_skip: int, member_conns: tuple[int, ...] = (4,)
) -> dict[str, Endpoint]:
    def fresh_etags() -> None:
        asyncio.run(scenarios.write_patch_etags(url, data_dir))

    def deep_tokens() -> None:
        asyncio.run(scenarios.write_deep_after_tokens(url, data_dir, deep_skip))

    def members(name: str, limit: int) -> Endpoint:
        return Endpoint(
            name, "list_members.lua", {"BENCH_LIMIT": str(limit)}, connections=member_conns
        )

    return {
        e.name: e
        for e in (
            Endpoint("get-interaction", "get_interaction.lua"),
            Endpoint("get-campaign", "get_campaign.lua"),
            Endpoint("list-50", "list_interactions.lua"),
            Endpoint("list-50-deep", "list_interactions.lua", {"BENCH_SKIP": str(deep_skip)}),
            # The same deep page by keyset: meta.next's after= token (issue 13).
            Endpoint("list-50-after", "list_interactions_after.lua", prepare=deep_tokens),
            Endpoint("delta-sync", "delta_sync.lua"),
            Endpoint("post-interaction", "post_interaction.lua", write=True),
            Endpoint(
                "bulk-interactions",
                "bulk_interactions.lua",
                {"BENCH_ITEMS": str(BULK_KNOCKS)},
                write=True,
                connections=(4,),
            ),
            Endpoint("patch-campaign", "patch_campaign.lua", prepare=fresh_etags, write=True),
            members("members-page", PAGE_SIZE),
            members("members-all", LIMIT_ALL),
            # Issue 13's table: the change feed and issue 11 and 12's reads (bench/routes.py).
            *routes.endpoints(data_dir),
        )
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small dataset, 1 s / 2 s windows")
    parser.add_argument("--scale", type=float, help="x 1 M interactions (default 1; --quick 0.1)")
    parser.add_argument("--households", type=int, help="default 200000 (--quick 20000)")
    parser.add_argument("--warmup", type=float, help="seconds (default 3; --quick 1)")
    parser.add_argument("--seconds", type=float, help="measured seconds (default 10; --quick 2)")
    parser.add_argument("--connections", help="default 16,64 (--quick 64)")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--apps", default=",".join(APPS))
    parser.add_argument("--endpoints", default="", help="comma-separated subset (default all)")
    parser.add_argument("--bulk-items", type=int, help="default 10000 (--quick 2000)")
    parser.add_argument(
        "--contact-calls", type=int, help="bulk contact calls (default 10; --quick 3)"
    )
    parser.add_argument("--contact-items", type=int, default=1000, help="contacts per bulk call")
    parser.add_argument(
        "--member-connections",
        help="connections of the list-member reads (default 4,16; --quick 4)",
    )
    parser.add_argument("--no-one-shots", action="store_true", help="skip bulk and stream")
    parser.add_argument("--imports", type=int, default=0, help="CSV import rows (bench/imports.py)")
    parser.add_argument("--no-geo", action="store_true", help="skip bench/geo.py (issue 11)")
    parser.add_argument("--force-dataset", action="store_true", help="rebuild the dataset")
    parser.add_argument("--progress", action="store_true", help="also run bench/progress.py")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="MINUTES",
        help="wait up to this long for other processes to leave the CPUs idle",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.scale = args.scale or (0.1 if quick else 1.0)
    args.households = args.households or (20_000 if quick else 200_000)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if quick else 3.0)
    args.seconds = args.seconds or (2.0 if quick else 10.0)
    args.bulk_items = args.bulk_items or (2_000 if quick else 10_000)
    args.contact_calls = args.contact_calls or (3 if quick else 10)
    args.member_connections = tuple(
        int(c) for c in (args.member_connections or ("4" if quick else "4,16")).split(",")
    )
    args.connections = [
        int(c) for c in (args.connections or ("64" if quick else "16,64")).split(",")
    ]
    args.workers = [int(w) for w in args.workers.split(",")]
    args.apps = [a for a in args.apps.split(",") if a]
    args.endpoints = [e for e in args.endpoints.split(",") if e]
    if not 0 < args.scale <= 10:
        parser.error("--scale must be in (0, 10]")
    return args


def git_state() -> tuple[str, bool]:
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], capture_output=True, text=True, check=False).stdout

    # Changes to the benchmark itself leave the server under test as committed.
    ours = ("bench/", "docs/performance.md", "Makefile")
    changed = [line[3:] for line in git("status", "--porcelain").splitlines()]
    dirty = any(not path.startswith(ours) for path in changed)
    return git("rev-parse", "--short", "HEAD").strip() or "unknown", dirty


def log(message: str) -> None:
    print(message, flush=True)


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.scale = Scale(interactions=args.scale, households=args.households)
        self.started = datetime.now(UTC)
        self.stamp = self.started.strftime("%Y%m%d-%H%M%S")
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = RESULTS_DIR / f"{self.stamp}.raw"
        commit, dirty = git_state()
        self.results: dict[str, Any] = {
            "meta": {
                "started": self.started.isoformat(timespec="seconds"),
                "commit": commit,
                "dirty": dirty,
                "cpus": os.cpu_count(),
                "database": self.scale.database,
                "interactions": self.scale.total_interactions,
                "warmup": args.warmup,
                "seconds": args.seconds,
                "page_size": PAGE_SIZE,
                "command": "`" + " ".join(["bench/run.py", *sys.argv[1:]]) + "`",
            },
            "measurements": [],
        }

    def execute(self) -> Path:
        wrk_path()
        self.check_quiet()
        url, pg, started_pg = start_database(self.scale)
        self.url = url
        try:
            self.prepare()
            for workers in self.args.workers:
                for app in self.args.apps:
                    self.serve(app, workers)
            if "polis-api" in self.args.apps and not self.args.quick and not self.args.endpoints:
                self.ablation()
            if self.args.imports:  # its own database and server; results in imports-*.json
                subprocess.run(
                    [sys.executable, str(BENCH / "imports.py"), "--rows", str(self.args.imports)],
                    check=True,
                )
        finally:
            if started_pg:
                stop_database(pg)
        return self.write()

    def check_quiet(self) -> None:
        """Other processes' CPU use skews every number: say so, or wait for quiet."""
        deadline = time.monotonic() + 60 * self.args.wait_quiet
        while True:
            load = machine_load()
            if load < QUIET or time.monotonic() > deadline:
                break
            log(f"the machine is {load:.0f} % busy with other work; waiting for quiet")
            time.sleep(10)
        self.results["meta"]["load_before_pct"] = round(load)
        if load >= QUIET:
            log(f"warning: the machine is {load:.0f} % busy before the run; numbers will drift")

    def prepare(self) -> None:
        t0 = time.perf_counter()
        stats = dataset.ensure(self.url, self.scale, force=self.args.force_dataset, log=log)
        db.run_migrations(self.url)  # a reused dataset gets the migrations added since
        self.results["list"] = asyncio.run(dataset.ensure_list(self.url, self.scale, log))
        files = asyncio.run(dataset.write_id_files(self.url, self.scale))
        self.data_dir = Path(files["dir"])
        self.deep_skip = files["deep_skip"]
        self.results["routes"] = asyncio.run(routes.ensure(self.url, self.scale, log))
        self.results["routes"]["paths"] = asyncio.run(
            routes.write_paths(self.url, self.scale, self.data_dir)
        )
        self.tokens = scenarios.write_tokens(self.data_dir)
        removed = asyncio.run(scenarios.remove_benchmark_writes(self.url))
        self.results["dataset"] = stats
        self.results["meta"]["dataset_s"] = round(time.perf_counter() - t0, 1)
        log(f"dataset ready in {time.perf_counter() - t0:.0f} s ({removed} stray rows removed)")
        since = (self.data_dir / "delta.txt").read_text().split()[1]
        plans = asyncio.run(explain.explain_all(self.url, self.deep_skip, since))
        self.results["plans"] = [
            {**dataclasses.asdict(p), "uses_index": p.uses_index} for p in plans
        ]
        with self.log_path.open("a") as raw:
            for plan in plans:
                raw.write(f"== {plan.name}\n{plan.text}\n\n")
        if not self.args.no_one_shots and "polis-api" in self.args.apps:
            self.results["copy_interactions"] = asyncio.run(self.interaction_rates())
            # Every interaction as CSV, the server's memory sampled (bench/export.py).
            self.results["csv_export"] = export.run(self.url)

    async def interaction_rates(self) -> dict[str, Any]:
        people = dataset.People.build(self.scale)
        _, defaults = dataset.status_rows()
        rows, _ = dataset.campaign_history(100, people, defaults, 20_000, salt="probe")
        return await scenarios.write_rates(self.url, "interactions", rows)

    def server(self, app: str, workers: int, env: dict[str, str] | None = None) -> Server:
        ready = "/readyz" if app == "polis-api" else "/v2/interactions/" + self.first_id()
        return Server(
            app=app,
            workers=workers,
            env={**server_env(self.url), **(env or {})},
            ready_path=ready,
            log_path=self.log_path,
        )

    def first_id(self) -> str:
        return (self.data_dir / "interactions.txt").read_text().split()[0]

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[0]}"}

    def serve(self, app: str, workers: int) -> None:
        server = self.server(app, workers)
        log(f"\n{server.label}")
        if app == "polis-api":
            db.run_migrations(self.url)  # as users do before serving (`polis-api migrate`)
        server.start(self.auth())
        try:
            for endpoint in self.endpoint_list(app):
                for conns in endpoint.connections or self.args.connections:
                    self.record(measure(server, endpoint, conns, **self.window()))
            if app == "polis-api" and workers == 1 and not self.args.no_one_shots:
                # The stream reads exactly the dataset: without the rows the POSTs added.
                asyncio.run(scenarios.remove_benchmark_writes(self.url))
                self.stream(server)
                self.bulk(server)
            if app in ("polis-api", "floor") and workers == 1 and not self.args.no_one_shots:
                self.contacts_bulk(server)
        finally:
            server.stop()
            if app in ("polis-api", "floor"):
                asyncio.run(scenarios.remove_benchmark_writes(self.url))

    def window(self) -> dict[str, Any]:
        return {"warmup": self.args.warmup, "seconds": self.args.seconds, "data_dir": self.data_dir}

    def endpoint_list(self, app: str) -> list[Endpoint]:
        every = endpoints(self.url, self.data_dir, self.deep_skip, self.args.member_connections)
        floor = [*READS, *MEMBER_READS, *WRITES, *routes.FLOORED]
        names = {"polis-api": list(every), "floor": floor}.get(app, list(READS))
        if self.args.endpoints:
            names = [n for n in names if n in self.args.endpoints]
        return [every[n] for n in names]

    def record(self, m: Measurement) -> None:
        self.results["measurements"].append(m.row())
        errors = ", ".join(f"{k} {v}" for k, v in m.errors.items()) or "no errors"
        log(
            f"  {m.endpoint:17} c={m.connections:<3} {m.rps:8,.0f} req/s  p50 {m.p50_ms:7.2f} ms"
            f"  p99 {m.p99_ms:7.2f} ms  app {m.server_cpu_us:6,.0f} µs/req"
            f"  db {m.db_cpu_us:6,.0f} µs/req  {errors}  (other load {m.other_cpu_pct:.0f} %)"
        )

    def bulk(self, server: Server) -> None:
        pairs = scenarios.bulk_pairs(self.scale, self.args.bulk_items)
        first = asyncio.run(scenarios.status_of(self.url, "Not Home"))
        second = asyncio.run(scenarios.status_of(self.url, "Come Back"))
        asyncio.run(scenarios.forget_bulk_doors(self.url, pairs))
        rows = scenarios.bulk_rows(pairs, first)
        copy = asyncio.run(scenarios.write_rates(self.url, "contact_household_campaigns", rows))
        create = scenarios.post_bulk(server, pairs, first.id, self.tokens[1])
        update = scenarios.post_bulk(server, pairs, second.id, self.tokens[2])
        self.results["bulk"] = {"copy": copy, "create": create, "update": update}
        log(
            f"  bulk {len(pairs)} items: create {create['seconds']} s ({create['rows_per_s']:,}"
            f" rows/s{self.copy_ratio(create['rows_per_s'], copy)}), update {update['seconds']} s;"
            f" COPY {copy['copy_rows_per_s']:,} rows/s,"
            f" INSERT/row {copy['insert_rows_per_s']:,} rows/s"
        )

    def contacts_bulk(self, server: Server) -> None:
        """Issue 10: the same new contacts through each app, removed before and after."""
        bodies = scenarios.contact_bulk_bodies(
            self.scale, self.args.contact_calls + 1, self.args.contact_items
        )
        asyncio.run(scenarios.remove_bulk_contacts(self.url))
        if server.app == "polis-api":
            rows = scenarios.contact_rows(bodies)
            copy = asyncio.run(scenarios.write_rates(self.url, "contacts", rows))
            self.results["contacts_copy"] = copy
            log(f"  contacts COPY {copy['copy_rows_per_s']:,} rows/s ({len(rows):,} rows)")
        try:
            result = scenarios.post_contacts(server, bodies, self.tokens[4])
        finally:
            asyncio.run(scenarios.remove_bulk_contacts(self.url))
        self.results.setdefault("contacts_bulk", {})[server.app] = result
        log(
            f"  contacts bulk: {result['calls']} x {self.args.contact_items} items, "
            f"{result['created']:,} created in {result['seconds']} s "
            f"({result['items_per_s']:,} items/s"
            + self.copy_ratio(result["items_per_s"], self.results.get("contacts_copy"))
            + ")"
            + (f"; HTTP {result['status']}: {result['error']}" if result["error"] else "")
        )

    @staticmethod
    def copy_ratio(rate: float, copy: dict[str, Any] | None) -> str:
        if not copy or not copy.get("copy_rows_per_s"):
            return ""
        return f", {rate / copy['copy_rows_per_s']:.2f}x COPY"

    def stream(self, server: Server) -> None:
        result = scenarios.stream_all(server, self.tokens[3])
        self.results["stream"] = result
        log(
            f"  stream: {result['documents']:,} documents, {result['bytes'] / 1e6:,.0f} MB in "
            f"{result['seconds']} s, RSS +{result['rss_growth_mb']} MB"
        )

    def ablation(self) -> None:
        """What per-token rate limiting costs on the hottest read."""
        server = self.server("polis-api", 1, {"POLIS_RATE_LIMIT_PER_MINUTE": "0"})
        log("\npolis-api x1, rate limiting off")
        db.run_migrations(self.url)
        server.start(self.auth())
        try:
            endpoint = endpoints(self.url, self.data_dir, self.deep_skip)["get-interaction"]
            m = measure(server, endpoint, 64, **self.window())
        finally:
            server.stop()
        self.record(m)
        self.results["measurements"].pop()
        self.results["ablation"] = [{**m.row(), "label": "rate limiting off"}]

    def write(self) -> Path:
        self.results["meta"]["total_s"] = round((datetime.now(UTC) - self.started).total_seconds())
        text = report.markdown(self.results)
        path = RESULTS_DIR / f"{self.stamp}.md"
        path.write_text(text)
        (RESULTS_DIR / f"{self.stamp}.json").write_text(
            json.dumps(self.results, indent=1, default=str)
        )
        log("\n" + text)
        log(f"written: {path} (+ .json; plans and server logs in {self.log_path.name})")
        log(f"total {self.results['meta']['total_s'] / 60:.1f} minutes")
        return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    Run(args).execute()
    if not args.no_geo:  # issue 11: bbox, near and the walk-list download (bench/geo.py)
        import geo

        geo.main(["--quick"] if args.quick else [])
    if args.progress:
        import progress  # bench/progress.py: its own database, after the run stopped ours

        progress.main(["--quick"] if args.quick else [])
    return 0


if __name__ == "__main__":
    sys.exit(main())
