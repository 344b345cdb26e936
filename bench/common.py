"""What every part of the benchmark shares: paths, fixed identities, derived ids, tokens."""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
PG_DIR = REPO / ".polis" / "bench"  # the embedded PostgreSQL of the benchmark (gitignored)
DATA_DIR = BENCH / "data"  # id files for wrk (gitignored)
RESULTS_DIR = BENCH / "results"
WRK_DIR = BENCH / "wrk"
VENV_BIN = REPO / ".venv" / "bin"

# Only the benchmark signs with this; it is never a production secret.
JWT_SECRET = "polis-bench-secret-not-for-production-0123456789"
SEED = b"polis-bench-v1"


def derived_uuid(kind: str, n: int) -> str:
    """A random-looking but reproducible UUID (v4 bits), so btree locality is realistic.

    The same text as ``str(uuid.UUID(bytes=digest, version=4))``, several times faster.
    """
    digest = bytearray(hashlib.blake2b(f"{kind}:{n}".encode(), digest_size=16, key=SEED).digest())
    digest[6] = (digest[6] & 0x0F) | 0x40
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


TENANT = derived_uuid("tenant", 0)
AUTHOR = derived_uuid("user", 0)  # wrote the dataset
WRITER = derived_uuid("user", 1)  # the benchmark's HTTP writes (cleaned up after a run)
ORGANIZATION = derived_uuid("organization", 0)

# The dataset's history: 90 days of canvassing ending well before any benchmark run.
HISTORY_START = datetime(2026, 1, 5, tzinfo=UTC)
HISTORY_DAYS = 90
HISTORY_END = HISTORY_START + timedelta(days=HISTORY_DAYS)

CAMPAIGNS = 100
# Campaigns 0-89 are only read (lists, delta sync); 90-99 take the POSTs and the bulk
# call, so a read benchmark never sees rows an earlier write benchmark left behind.
READ_CAMPAIGNS = range(0, 90)
WRITE_CAMPAIGNS = range(90, 100)
BULK_CAMPAIGN = 99

# Issue 10's joined read: one list whose members are the first contact-households,
# each with a contact document (the dataset holds contacts only for them).
MEMBER_LIST = derived_uuid("list", 0)
LIST_SIZE = 5_000


@dataclass(frozen=True)
class Scale:
    """How big the dataset is. ``interactions`` multiplies the default 1 M."""

    interactions: float = 1.0
    households: int = 200_000

    @property
    def total_interactions(self) -> int:
        return self.per_campaign * CAMPAIGNS

    @property
    def per_campaign(self) -> int:
        return max(1, round(10_000 * self.interactions))

    @property
    def contact_households(self) -> int:
        # Every household has a contact; every fourth has a second one.
        return self.households + self.households // 4

    @property
    def turf(self) -> int:
        # Each campaign knocks on its own stretch of doors; neighbours overlap by half.
        return max(1, 2 * self.contact_households // CAMPAIGNS)

    @property
    def database(self) -> str:
        if self == Scale():
            return "polis_bench"
        text = f"{self.interactions:g}".replace(".", "_")
        return f"polis_bench_s{text}_h{self.households}"

    def key(self) -> dict[str, object]:
        return {"version": 1, "interactions": self.interactions, "households": self.households}


def campaign_id(c: int) -> str:
    return derived_uuid("campaign", c)


def household_of(j: int, scale: Scale) -> int:
    """The household of contact-household ``j``."""
    return j if j < scale.households else (j - scale.households) * 4


def contact_household_id(j: int) -> str:
    return derived_uuid("contact-household", j)


def contact_id(j: int) -> str:
    return derived_uuid("contact", j)


def household_id(h: int) -> str:
    return derived_uuid("household", h)


def turf(c: int, scale: Scale) -> list[int]:
    start = c * scale.contact_households // CAMPAIGNS
    return [(start + k) % scale.contact_households for k in range(scale.turf)]


def token(sub: str = WRITER, ttl: int = 4 * 3600) -> str:
    """An admin token of the benchmark tenant, signed with the benchmark secret."""
    from polis_api.auth import mint_token
    from polis_api.config import Settings

    settings = Settings(jwt_secret=JWT_SECRET, data_dir=PG_DIR)
    return mint_token(
        settings,
        roles=["admin"],
        customer_id=uuid.UUID(TENANT),
        sub=uuid.UUID(sub),
        ttl_seconds=ttl,
    )


def start_database(scale: Scale) -> tuple[str, object, bool]:
    """The benchmark's embedded PostgreSQL: (URL of its database, server, started here)."""
    from polis_api import db

    was_running = (PG_DIR / "pgdata" / "postmaster.pid").exists()
    url, server = db.start_embedded(PG_DIR, database=scale.database)
    return url, server, not was_running


def stop_database(server: object) -> None:
    from polis_api import db

    db.stop_embedded(server)


def server_env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "POLIS_JWT_SECRET": JWT_SECRET,
        "POLIS_DATA_DIR": str(PG_DIR),
        "BENCH_TENANT": TENANT,
    }
