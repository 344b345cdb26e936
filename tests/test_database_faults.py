"""Database faults (issue 5): a restart under load, a runaway query, a full pool, a
dead connection, a server that never answers. Every one is a fast 503 problem+json,
the server recovers by itself, and no acknowledged write is lost or half-written.

These tests stop and start PostgreSQL, so they use one of their own (its own pgdata
in a temporary directory), never the suite's shared server.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from polis_api import db
from polis_api.config import Settings
from polis_api.problems import database_fault
from tests.builders import SEED_CAMPAIGN, assert_problem, campaign
from tests.canvassing import Door, door, interaction
from tests.conftest import TEST_SECRET, _in_thread
from tests.test_shutdown import Serve, admin_headers, serve

pytestmark = pytest.mark.slow

WRITERS = 6  # each records interactions at a door of its own
CAMPAIGN_WRITERS = 2
LOAD_SECONDS = 1.0  # before the outage, and again after recovery
OUTAGE_SECONDS = 2.5
FAST = 5.0  # the most a 503 may take: POLIS_POOL_ACQUIRE_TIMEOUT_SECONDS
DAY = datetime(2024, 5, 1, 9, tzinfo=UTC)


@dataclass
class FaultDatabase:
    """An embedded PostgreSQL this module may stop and start at will."""

    data_dir: Path
    url: str
    server: Any

    async def stop(self, mode: Literal["fast", "immediate"] = "fast") -> None:
        await asyncio.to_thread(db.stop_embedded, self.server, mode)

    async def start(self) -> None:
        _, self.server = await asyncio.to_thread(db.start_embedded, self.data_dir, "polis_faults")


@pytest.fixture(scope="module")
def faults_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultDatabase]:
    data_dir = tmp_path_factory.mktemp("faults")
    url, server = db.start_embedded(data_dir, database="polis_faults")
    database = FaultDatabase(data_dir, url, server)
    try:
        _in_thread(db.run_migrations, url, "head")
        yield database
    finally:
        db.stop_embedded(database.server)


# -- a restart under load -----------------------------------------------------------


@dataclass
class Outcome:
    phase: str
    seconds: float
    status: int  # 0: no HTTP answer at all


@dataclass
class Load:
    """Phones writing through an outage: each retries a write (same Idempotency-Key,
    same body) until it is acknowledged, as an offline outbox does."""

    http: httpx.AsyncClient
    headers: dict[str, str]
    phase: str = "before"
    stopping: bool = False
    outcomes: list[Outcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    interactions: dict[str, str] = field(default_factory=dict)  # key -> acknowledged id
    campaigns: dict[str, str] = field(default_factory=dict)
    acknowledged_in: Counter[str] = field(default_factory=Counter)
    door_checks: int = 0

    async def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        phase, started = self.phase, time.monotonic()
        try:
            response = await self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            self.outcomes.append(Outcome(phase, time.monotonic() - started, 0))
            self.problems.append(f"{method} {path}: no answer ({exc!r})")
            return None
        self.outcomes.append(Outcome(phase, time.monotonic() - started, response.status_code))
        if response.status_code == 503:
            self._check_unavailable(response)
        elif response.status_code not in (200, 201):
            self.problems.append(f"{method} {path}: {response.status_code} {response.text}")
        return response

    def _check_unavailable(self, response: httpx.Response) -> None:
        body = assert_problem(response, 503)
        if body["code"] != "SERVICE_UNAVAILABLE":
            self.problems.append(f"unexpected 503 code {body['code']}")
        if not response.headers.get("Retry-After", "").isdigit():
            self.problems.append(f"503 without Retry-After: {response.headers}")

    async def write_until_acknowledged(self, path: str, key: str, body: dict[str, Any]) -> str:
        headers = {**self.headers, "Idempotency-Key": key}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            response = await self.send("POST", path, json=body, headers=headers)
            if response is not None and response.status_code in (200, 201):
                self.acknowledged_in[self.phase] += 1
                return str(response.json()["id"])
            await asyncio.sleep(0.1)
        raise AssertionError(f"{path} {key} was never acknowledged")

    async def knock_at(self, at: Door) -> None:
        """Interactions at one door, a minute apart, each followed by a look at the door."""
        n = 0
        while not self.stopping:
            n += 1
            key = f"{at.contact_household_id}/{n}"
            body = interaction(
                at,
                timestamp=(DAY + timedelta(minutes=n)).isoformat().replace("+00:00", "Z"),
                survey={"surveyId": str(uuid.uuid4()), "responses": {"loadKey": key}},
            )
            self.interactions[key] = await self.write_until_acknowledged(
                "/v2/interactions", key, body
            )
            record = await self.send("GET", at.path, headers=self.headers)
            if record is not None and record.status_code == 200:
                # Sequential writes at a door of its own: the door must follow this one.
                last = record.json()["data"]["lastInteraction"]["interactionId"]
                if last != self.interactions[key]:
                    self.problems.append(f"door {at.path} follows {last}, not {key}")
                self.door_checks += 1

    async def create_campaigns(self, writer: int) -> None:
        n = 0
        while not self.stopping:
            n += 1
            key = f"campaign-{writer}-{n}"
            self.campaigns[key] = await self.write_until_acknowledged(
                "/v1/campaigns", key, campaign(name=key)
            )


async def _ready(http: httpx.AsyncClient, within: float = 30) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        response = await http.get("/readyz")
        if response.status_code == 200:
            return time.monotonic() - started
        assert_problem(response, 503)
        await asyncio.sleep(0.05)
    raise AssertionError(f"/readyz not 200 within {within} s of the database starting")


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_a_database_restart_under_load_loses_no_acknowledged_write(
    faults_db: FaultDatabase, tmp_path: Path, mode: Literal["fast", "immediate"]
) -> None:
    """A clean restart (``fast``) and a crash (``immediate``: no checkpoint, recovery
    from the WAL on start) under a real `polis-api serve --workers 2`, so that two
    independent pools must recover, and the 503s come through uvicorn and the whole
    middleware stack as clients see them."""
    customer_id = uuid.uuid4()
    headers = admin_headers(customer_id)
    unlimited = {"POLIS_RATE_LIMIT_PER_MINUTE": "1000000"}
    async with (
        serve(tmp_path, database_url=faults_db.url, workers=2, env=unlimited) as server,
        httpx.AsyncClient(base_url=server.base, timeout=3 * FAST) as http,
    ):
        doors = [await door(http, headers) for _ in range(WRITERS)]
        load = Load(http, headers)
        writers = [asyncio.create_task(load.knock_at(at)) for at in doors]
        writers += [asyncio.create_task(load.create_campaigns(w)) for w in range(CAMPAIGN_WRITERS)]

        await asyncio.sleep(LOAD_SECONDS)
        load.phase = "outage"
        await faults_db.stop(mode)
        down = await http.get("/readyz")
        await asyncio.sleep(OUTAGE_SECONDS)
        await faults_db.start()
        load.phase = "restarting"
        ready_after = await _ready(http)
        load.phase = "after"
        await asyncio.sleep(LOAD_SECONDS)
        load.stopping = True
        await asyncio.gather(*writers)
        stored = await _stored(faults_db.url, customer_id)

    assert_problem(down, 503)
    assert load.problems == [], (load.problems, server.output()[-6000:])
    by_phase = Counter((o.phase, o.status) for o in load.outcomes)
    unavailable = sorted(o.seconds for o in load.outcomes if o.status == 503)
    slowest_503 = max(unavailable, default=0.0)
    assert by_phase["outage", 503] > 0, by_phase  # the outage was seen ...
    assert slowest_503 < FAST  # ... answered fast
    # Recovered by itself: nothing started after /readyz said so failed, in either
    # worker, so no broken connection was handed out again.
    assert not [o for o in load.outcomes if o.phase == "after" and o.status not in (200, 201)]
    assert load.acknowledged_in["after"] > 0

    # Every acknowledged write is there, once; nothing unacknowledged is.
    lost = set(load.interactions.values()) - set(stored.interactions)
    assert lost == set()
    assert Counter(stored.interactions.values()) == Counter(set(load.interactions))
    assert set(load.campaigns.values()) <= set(stored.campaigns)
    assert sorted(stored.campaigns.values()) == sorted(load.campaigns)
    # No interaction without its door update, and no door update without its interaction.
    for at in doors:
        latest = max(
            (
                i
                for i, key in stored.interactions.items()
                if key.startswith(at.contact_household_id)
            ),
            key=lambda i: stored.timestamps[i],
        )
        assert stored.doors[at.contact_household_id] == latest

    print(
        f"\n{mode} restart under load: {len(load.outcomes)} requests; acknowledged "
        f"{dict(load.acknowledged_in)} ({len(load.interactions)} interactions, "
        f"{len(load.campaigns)} campaigns); 503s {len(unavailable)} (median "
        f"{unavailable[len(unavailable) // 2] * 1000:.0f} ms, slowest {slowest_503 * 1000:.0f} ms)"
        f"; ready {ready_after:.2f} s after start; "
        f"door checks {load.door_checks}; lost {len(lost)}; by phase {dict(by_phase)}"
    )


@dataclass
class Stored:
    interactions: dict[str, str]  # id -> load key
    timestamps: dict[str, str]
    campaigns: dict[str, str]  # id -> name
    doors: dict[str, str]  # contactHouseholdId -> the interaction its record follows


async def _stored(url: str, customer_id: uuid.UUID) -> Stored:
    """What the database holds for the tenant, read directly rather than through the API."""
    conn = await asyncpg.connect(url)
    try:
        interactions = await conn.fetch(
            "SELECT id::text, data->'survey'->'responses'->>'loadKey' AS key, "
            "data->>'timestamp' AS at FROM interactions WHERE customer_id = $1",
            customer_id,
        )
        campaigns = await conn.fetch(
            "SELECT id::text, data->>'name' AS name FROM campaigns WHERE customer_id = $1 "
            "AND data->>'name' LIKE 'campaign-%'",
            customer_id,
        )
        doors = await conn.fetch(
            "SELECT data->>'contactHouseholdId' AS door, "
            "data->'lastInteraction'->>'interactionId' AS follows "
            "FROM contact_household_campaigns WHERE customer_id = $1",
            customer_id,
        )
    finally:
        await conn.close()
    return Stored(
        interactions={r["id"]: r["key"] for r in interactions},
        timestamps={r["id"]: r["at"] for r in interactions},
        campaigns={r["id"]: r["name"] for r in campaigns},
        doors={r["door"]: r["follows"] for r in doors},
    )


# -- one request at a time, in-process ----------------------------------------------


@asynccontextmanager
async def app_client(
    faults_db: FaultDatabase, tmp_path: Path, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    from polis_api.app import create_app

    settings = Settings(
        database_url=faults_db.url, jwt_secret=TEST_SECRET, data_dir=tmp_path, **overrides
    )
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://polis.test") as http:
            yield http


@asynccontextmanager
async def slow_campaign_inserts(
    url: str, customer_id: uuid.UUID, seconds: float
) -> AsyncIterator[None]:
    """A runaway query on demand: one tenant's campaign inserts sleep in the database."""
    name = f"slow_{customer_id.hex}"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN PERFORM pg_sleep({seconds}); RETURN NEW; END $$; "
            f"CREATE TRIGGER {name} BEFORE INSERT ON campaigns FOR EACH ROW "
            f"WHEN (NEW.customer_id = '{customer_id}') EXECUTE FUNCTION {name}()"
        )
        yield
    finally:
        await conn.execute(f"DROP TRIGGER {name} ON campaigns; DROP FUNCTION {name}()")
        await conn.close()


async def sleeping_backend(url: str, within: float = 5) -> int:
    """The pid of the server session that is in ``pg_sleep`` (the runaway insert)."""
    conn = await asyncpg.connect(url)
    try:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            pid = await conn.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep' "
                "AND datname = current_database()"
            )
            if pid is not None:
                return int(pid)
            await asyncio.sleep(0.02)
    finally:
        await conn.close()
    raise AssertionError("the slow insert never started")


async def _campaign_count(http: httpx.AsyncClient, headers: dict[str, str]) -> int:
    response = await http.get(
        "/v1/campaigns", params={"count": "true", "limit": 0}, headers=headers
    )
    assert response.status_code == 200, response.text
    return int(response.json()["meta"]["total"])


async def test_a_runaway_query_is_cancelled_and_answered_503(
    faults_db: FaultDatabase, tmp_path: Path
) -> None:
    slow_tenant = uuid.uuid4()
    slow, other = admin_headers(slow_tenant), admin_headers(uuid.uuid4())
    async with app_client(faults_db, tmp_path, statement_timeout_ms=250) as http:
        for headers in (slow, other):  # both tenants exist before the trigger does
            assert await _campaign_count(http, headers) == 0
        async with slow_campaign_inserts(faults_db.url, slow_tenant, seconds=5):
            started = time.monotonic()
            plain = await http.post("/v1/campaigns", json=SEED_CAMPAIGN, headers=slow)
            cancelled_after = time.monotonic() - started
            keyed = await http.post(
                "/v1/campaigns", json=SEED_CAMPAIGN, headers={**slow, "Idempotency-Key": "k-1"}
            )
            # The worker is not stuck: other requests go through at once.
            assert (
                await http.post("/v1/campaigns", json=SEED_CAMPAIGN, headers=other)
            ).status_code == 201
        # With the runaway gone, the same key runs again: the failed attempt kept nothing.
        retried = await http.post(
            "/v1/campaigns", json=SEED_CAMPAIGN, headers={**slow, "Idempotency-Key": "k-1"}
        )
        stored = await _campaign_count(http, slow)

    for response in (plain, keyed):
        body = assert_problem(response, 503, "SERVICE_UNAVAILABLE")
        assert "ran too long" in body["detail"]
        assert response.headers["Retry-After"] == "1"
    assert cancelled_after < 2  # cancelled at 250 ms, far before the 5 s sleep ends
    assert retried.status_code == 201, retried.text
    assert stored == 1


async def test_a_full_pool_answers_503_after_the_acquire_timeout(
    faults_db: FaultDatabase, tmp_path: Path
) -> None:
    slow_tenant = uuid.uuid4()
    slow, other = admin_headers(slow_tenant), admin_headers(uuid.uuid4())
    one_connection = {"pool_min_size": 0, "pool_max_size": 1, "pool_acquire_timeout_seconds": 0.5}
    async with app_client(faults_db, tmp_path, **one_connection) as http:
        for headers in (slow, other):
            assert await _campaign_count(http, headers) == 0
        async with slow_campaign_inserts(faults_db.url, slow_tenant, seconds=2):
            holder = asyncio.create_task(
                http.post("/v1/campaigns", json=SEED_CAMPAIGN, headers=slow)
            )
            await sleeping_backend(faults_db.url)
            started = time.monotonic()
            # A single-document read needs the (one-connection) main pool; lists
            # have a pool of their own.
            waited = await http.get(f"/v1/campaigns/{uuid.uuid4()}", headers=other)
            gave_up_after = time.monotonic() - started
            held = await holder
        after = await http.get("/v1/campaigns", headers=other)

    assert_problem(waited, 503, "SERVICE_UNAVAILABLE")
    assert 0.4 < gave_up_after < 2
    assert held.status_code == 201, held.text  # the slow request itself was fine
    assert after.status_code == 200


async def test_a_connection_killed_mid_query_is_not_handed_out_again(
    faults_db: FaultDatabase, tmp_path: Path
) -> None:
    slow_tenant = uuid.uuid4()
    slow, other = admin_headers(slow_tenant), admin_headers(uuid.uuid4())
    async with app_client(faults_db, tmp_path, pool_min_size=2, pool_max_size=2) as http:
        for headers in (slow, other):
            assert await _campaign_count(http, headers) == 0
        async with slow_campaign_inserts(faults_db.url, slow_tenant, seconds=10):
            killed = asyncio.create_task(
                http.post("/v1/campaigns", json=SEED_CAMPAIGN, headers=slow)
            )
            pid = await sleeping_backend(faults_db.url)
            started = time.monotonic()
            await _terminate(
                faults_db.url, pid
            )  # "terminating connection due to administrator command"
            answer = await killed
            answered_after = time.monotonic() - started
        # Every connection of the pool serves again, the killed one replaced.
        afterwards = [await http.get("/v1/campaigns", headers=other) for _ in range(20)]
        stored = await _campaign_count(http, slow)

    assert_problem(answer, 503, "SERVICE_UNAVAILABLE")
    assert answered_after < 1
    assert [r.status_code for r in afterwards] == [200] * 20
    assert stored == 0  # the killed transaction was rolled back whole


async def _terminate(url: str, pid: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


async def test_a_database_that_never_answers_costs_a_request_seconds_not_a_worker() -> None:
    """A server that accepts connections but never speaks (a frozen host): connecting
    gives up at POLIS_DB_CONNECT_TIMEOUT_SECONDS, so acquiring does too."""
    silent: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        silent.append(writer)

    listener = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    settings = Settings(
        database_url=f"postgresql://polis@127.0.0.1:{port}/polis",
        jwt_secret=TEST_SECRET,
        pool_min_size=0,
        db_connect_timeout_seconds=0.3,
    )
    assert settings.database_url is not None
    pool = await db.create_pool(settings, settings.database_url)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError) as raised:
            async with pool.acquire():
                pass
        gave_up_after = time.monotonic() - started
    finally:
        await pool.close()
        for writer in silent:
            writer.close()
        listener.close()
        await listener.wait_closed()

    assert 0.2 < gave_up_after < 2
    fault = database_fault(raised.value)
    assert fault is not None and fault.status == 503


@pytest.mark.parametrize(
    "error",
    [
        FileNotFoundError(2, "No such file or directory"),  # the unix socket is gone
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError(),  # connecting, acquiring, or the client-side backstop
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.CannotConnectNowError("the database system is shutting down"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.InterfaceError("connection is closed"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.exceptions.InternalClientError(
            "cannot switch to state 12; another operation (2) is in progress"
        ),
        asyncpg.QueryCanceledError("canceling statement due to statement timeout"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_each_way_a_database_fails_is_a_503_to_retry(error: Exception) -> None:
    fault = database_fault(error)
    assert fault is not None
    assert (fault.status, fault.code) == (503, "SERVICE_UNAVAILABLE")
    assert fault.headers["Retry-After"] == "1"


@pytest.mark.parametrize(
    "error",
    [
        KeyError("x"),
        ValueError("not a uuid"),
        asyncpg.exceptions.ClientConfigurationError("bad sslmode"),
        asyncpg.UniqueViolationError("duplicate key value"),
    ],
)
def test_other_errors_are_not_database_faults(error: Exception) -> None:
    assert database_fault(error) is None


# -- issue 9: streams in an outage, the rate limiter through a restart ------------------


async def test_a_stream_in_a_database_outage_is_a_503_not_a_cut_200(
    faults_db: FaultDatabase, tmp_path: Path
) -> None:
    """The first rows are fetched before the status goes out."""
    headers = admin_headers(uuid.uuid4())
    everything = {"limit": "9007199254740991"}
    async with app_client(faults_db, tmp_path, pool_acquire_timeout_seconds=1) as http:
        before = await http.get("/v2/households", params=everything, headers=headers)
        await faults_db.stop()
        try:
            during = await http.get("/v2/households", params=everything, headers=headers)
        finally:
            await faults_db.start()
        await _ready(http)
        after = await http.get("/v2/households", params=everything, headers=headers)

    assert before.status_code == 200
    body = assert_problem(during, 503, "SERVICE_UNAVAILABLE")
    assert "retry" in body["detail"]
    assert during.headers["Retry-After"] == "1"
    assert after.json() == {"data": [], "meta": {}}


async def test_the_rate_limiter_shares_budgets_again_after_a_restart_and_stops_cleanly(
    faults_db: FaultDatabase, tmp_path: Path
) -> None:
    """A crash restart, then every session of the server killed (the rate limiter's
    included): budgets are shared across both workers again, and SIGTERM exits 0."""
    from tests.test_rate_limit_api import _start_of_a_window_if_less_than

    limit = 20
    env = {"POLIS_RATE_LIMIT_PER_MINUTE": str(limit), "POLIS_RATE_LIMIT_SYNC_SECONDS": "0.05"}
    headers = admin_headers(uuid.uuid4())
    async with serve(tmp_path, database_url=faults_db.url, workers=2, env=env) as server:
        await _both_workers_started(server)  # a worker starting in the outage would fail
        await faults_db.stop("immediate")
        await asyncio.sleep(1)
        await faults_db.start()
        async with httpx.AsyncClient(base_url=server.base, timeout=FAST) as http:
            await _ready(http)
        await _terminate_sessions(faults_db.url, "polis-api")
        await asyncio.sleep(0.5)  # a few sync intervals: the limiter reconnects
        _start_of_a_window_if_less_than(25)
        statuses = []
        for _ in range(limit + 10):
            # A fresh connection each time lets the kernel hand it to either worker.
            async with httpx.AsyncClient(base_url=server.base, timeout=FAST) as http:
                statuses.append((await http.get("/v1/campaigns", headers=headers)).status_code)
            await asyncio.sleep(0.12)  # longer than the sync interval
        await server.terminate()
        exit_code = await server.exit_code(within=30)

    # Unshared, each worker would allow its own 20 and all 30 would pass. Shared, the
    # budget holds to within a sync interval a busy machine may stretch: one or two more.
    assert limit <= statuses.count(200) <= limit + 2, statuses
    assert statuses.count(200) + statuses.count(429) == limit + 10, statuses
    log = server.output()
    assert exit_code == 0, log
    assert "Application shutdown failed" not in log, log
    assert log.count("database pool closed") == 4, log  # two pools in each worker


async def _terminate_sessions(url: str, application_name: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = $1 AND datname = current_database()",
            application_name,
        )
    finally:
        await conn.close()


async def _both_workers_started(server: Serve, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while server.output().count("Application startup complete.") < 2:
        assert time.monotonic() < deadline, server.output()
        await asyncio.sleep(0.1)
