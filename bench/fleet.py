"""The fleet at scale: hundreds of phones on a bad network against `serve --workers 2`.

The same engine as tests/test_fleet.py (tests/fleet.py), bigger: by default 300 phones,
3,000 doors, 12 knocks a phone, 10 readers following the change feed. Every invariant
is asserted as in the test (no acknowledged knock lost, none stored twice, every door in
its latest knock's state, every reader's replica equal to the server's live set, every
deletion delivered as a tombstone); this adds the figures. Writes
bench/results/fleet-<timestamp>.md.

    .venv/bin/python bench/fleet.py                      # the default run
    .venv/bin/python bench/fleet.py --phones 60 --doors 300 --knocks 8   # the test's size
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from common import JWT_SECRET, PG_DIR, REPO, RESULTS_DIR, server_env
from servers import Server

sys.path.insert(0, str(REPO))  # the engine lives with the tests

from polis_api import db
from polis_api.config import Settings
from tests.fleet import FleetReport, FleetSize, run_fleet

DATABASE = "polis_fleet"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phones", type=int, default=300)
    parser.add_argument("--doors", type=int, default=3000)
    parser.add_argument("--knocks", type=int, default=12, help="knocks per phone")
    parser.add_argument("--readers", type=int, default=10)
    parser.add_argument("--seed", type=int, default=20261129)
    return parser.parse_args()


def _report(size: FleetSize, report: FleetReport, log: Path) -> str:
    faults = report.faults
    rows = [
        ("phones / doors / readers", f"{size.phones} / {size.doors} / {size.readers}"),
        ("knocks sent and acknowledged", report.knocks),
        ("knocks deleted by the organiser", report.deleted),
        ("requests dropped before sending", faults.dropped),
        ("answers lost after the server acted", faults.lost_answers),
        ("bodies cut off mid-send", faults.cut_off),
        ("duplicate sends", faults.duplicates),
        ("outbox batches", faults.batches),
        ("replays answered", faults.replays),
        ("change-feed pages read", report.feed_pages),
        ("seconds", f"{report.seconds:.1f}"),
        ("acknowledged knocks lost / duplicated", "0 / 0 (asserted)"),
        ("doors not in their latest knock's state", "0 (asserted)"),
        ("readers whose replica differs from the server", "0 (asserted)"),
    ]
    lines = [
        f"# Fleet run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        "| what | figure |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in rows),
        "",
        f"Server log: `{log.relative_to(REPO)}`",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    args = _arguments()
    size = FleetSize(
        phones=args.phones,
        doors=args.doors,
        knocks_per_phone=args.knocks,
        readers=args.readers,
        rounds=20,
        deleted_knocks=max(1, args.phones // 5),
    )
    url, database_server = db.start_embedded(PG_DIR, database=DATABASE)
    db.run_migrations(url)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    log = RESULTS_DIR / f"fleet-{stamp}.raw"
    server = Server("polis-api", 2, server_env(url), "/readyz", log)
    try:
        server.start({})
        settings = Settings(database_url=url, jwt_secret=JWT_SECRET)
        started = time.monotonic()
        report = asyncio.run(run_fleet(server.base_url, settings, size, args.seed))
        print(f"fleet: every invariant held in {time.monotonic() - started:.1f} s")
    finally:
        server.stop()
        db.stop_embedded(database_server)
    text = _report(size, report, log)
    (RESULTS_DIR / f"fleet-{stamp}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
