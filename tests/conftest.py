"""Test harness: a real, freshly migrated PostgreSQL and the app over HTTP.

The database is the embedded PostgreSQL (under .polis/test) unless TEST_DATABASE_URL
names another. Every test isolates itself by working in a tenant of its own.

Under pytest-xdist (``make test`` runs ``-n``) each worker process has an embedded
PostgreSQL of its own (``.polis/test/gw0`` …), or with TEST_DATABASE_URL a database of
its own beside that one (``<database>_gw0`` …, re-created every run). Tests that share
something costly (a module's server, the session's ``live_server``) are kept on one
worker: see ``pytest_collection_modifyitems``.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from polis_api import db
from polis_api.auth import mint_token
from polis_api.config import Settings

REPO = Path(__file__).resolve().parents[1]
TEST_DATA_DIR = REPO / ".polis" / "test"
TEST_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"
TEST_DATABASE = "polis_test"  # on the embedded server
# "gw0", "gw1", … in a pytest-xdist worker; None when the suite runs in one process.
WORKER = os.environ.get("PYTEST_XDIST_WORKER")


def _in_thread(function: object, *args: object) -> None:
    # alembic's env.py runs its own event loop; keep it off pytest-asyncio's.
    errors: list[BaseException] = []

    def run() -> None:
        try:
            function(*args)  # type: ignore[operator]
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    external = os.environ.get("TEST_DATABASE_URL")
    with ExitStack() as stack:
        if external and WORKER is not None:
            url = _with_database(external, f"{_database_of(external)}_{WORKER}")
            _recreate_database(external, _database_of(url))
        else:
            url = external or stack.enter_context(embedded_test_server(_embedded_data_dir()))
            # A clean schema every run, built only by the migrations (down, then up again).
            _in_thread(db.downgrade_migrations, url, "base")
        _in_thread(db.run_migrations, url, "head")
        yield url


def _embedded_data_dir() -> Path:
    """``.polis/test``, or ``.polis/test/gw0`` … for each worker of a parallel run.

    A PostgreSQL per worker, not a database each on one: the change feed delivers
    only rows below the oldest transaction still running in the whole cluster
    (``pg_snapshot_xmin``), so on a shared server every worker's writes would hold
    back the others' feeds, and their tests of ``since=`` would see nothing new.
    """
    return TEST_DATA_DIR / WORKER if WORKER else TEST_DATA_DIR


@contextmanager
def embedded_test_server(data_dir: Path) -> Iterator[str]:
    """The URL of ``polis_test`` on the embedded PostgreSQL of ``data_dir``, held
    through ``db.embedded_database``: started (or a leftover adopted) if need be, and
    stopped by the last process using it."""
    with db.embedded_database(data_dir, TEST_DATABASE) as embedded:
        yield embedded.url


def _on_server(url: str, *statements: str) -> None:
    """Run ``statements`` on one connection of their own, in a thread of its own as
    alembic is: a fixture may be set up while pytest-asyncio's event loop runs."""

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    _in_thread(asyncio.run, run())


def _database_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def _recreate_database(server_url: str, database: str) -> None:
    """An empty ``database`` beside ``server_url``'s, whatever a previous run left in it."""
    if not database.replace("_", "").isalnum():
        raise ValueError(f"database name {database!r} must be letters, digits and _")

    _on_server(
        server_url,
        # FORCE: a server a killed run left behind may still be connected to it.
        f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)',
        f'CREATE DATABASE "{database}"',
    )


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        jwt_secret=TEST_SECRET,
        data_dir=TEST_DATA_DIR,
        pool_min_size=1,
        pool_max_size=30,
        # Expiry tests mean "expired"; tests of the clock-skew allowance set their own.
        jwt_leeway_seconds=0,
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    from polis_api.app import create_app

    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://polis.test") as http:
        yield http


@asynccontextmanager
async def client_with(settings: Settings, **changes: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose settings differ from the suite's by ``changes``."""
    from polis_api.app import create_app

    application = create_app(settings.model_copy(update=changes))
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://polis.test") as http:
            yield http


class Tenant:
    """A fresh tenant with helpers to act as one of its users."""

    def __init__(self, settings: Settings) -> None:
        self.customer_id = uuid.uuid4()
        self.user_id = uuid.uuid4()
        self._settings = settings

    def token(self, *roles: str, permissions: list[str] | None = None, ttl: int = 600) -> str:
        return mint_token(
            self._settings,
            roles=list(roles) if roles or permissions else ["admin"],
            permissions=permissions,
            customer_id=self.customer_id,
            sub=self.user_id,
            ttl_seconds=ttl,
        )

    def headers(self, *roles: str, permissions: list[str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(*roles, permissions=permissions)}"}


@pytest.fixture
def tenant(settings: Settings) -> Tenant:
    return Tenant(settings)


@pytest.fixture
def other_tenant(settings: Settings) -> Tenant:
    return Tenant(settings)


@pytest.fixture
def admin(tenant: Tenant) -> dict[str, str]:
    return tenant.headers("admin")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_log(name: str) -> Path:
    """Where ``running_server(name=...)`` writes the server's output."""
    return TEST_DATA_DIR / (f"{name}-{WORKER}.log" if WORKER else f"{name}.log")


@contextmanager
def running_server(
    database_url: str, name: str, *, quiet: bool = True, **env: str
) -> Iterator[str]:
    """`polis-api serve --workers 2` as users run it; yields its base URL once ready.

    ``env`` adds settings (``POLIS_…`` variables); the server's output goes to
    ``.polis/test/<name>.log`` (``<name>-gw0.log`` in a parallel run's worker gw0),
    which a failure to start quotes. ``quiet=False`` keeps the access log.
    """
    import subprocess
    import sys
    import time

    port = _free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "POLIS_JWT_SECRET": TEST_SECRET,
        "POLIS_DATA_DIR": str(TEST_DATA_DIR),
        # Small pools: several servers and the suite's own app share one PostgreSQL,
        # whose 100 connections must not run out mid-suite.
        "POLIS_POOL_MAX_SIZE": "6",
        **env,
    }
    # A fresh clone run against TEST_DATABASE_URL has never created the folder
    TEST_DATA_DIR.mkdir(parents=True, exist_ok=True)
    # Each worker of a parallel run may start a server of the same name at once
    log_path = server_log(name)
    command = [sys.executable, "-m", "polis_api.cli", "serve", "--workers", "2"]
    if quiet:
        command.append("--quiet")
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            env=environment,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None:
                    raise RuntimeError(f"polis-api serve exited: {log_path.read_text()}")
                time.sleep(0.2)
            else:
                raise RuntimeError("polis-api serve did not become ready in 60 s")
            yield base
        finally:
            process.terminate()
            process.wait(timeout=30)


@pytest.fixture(scope="session")
def live_server(database_url: str) -> Iterator[str]:
    """Two worker processes on the suite's database, for cross-process behaviour."""
    with running_server(database_url, "live-server") as base:
        yield base


# -- running in parallel (pytest-xdist) ----------------------------------------------

# Session fixtures every worker sets up for itself: they cost a fraction of a second.
PER_WORKER_SESSION_FIXTURES = frozenset({"database_url", "settings", "app"})
# The tests of every other session fixture run on one worker, which builds each once.
SHARED_SESSION_GROUP = "session-fixtures"
# Modules whose tests take far longer than building their module fixtures again: the
# fuzzing is over a third of the suite's time, so every worker starts a server for it.
SPREAD_OVER_WORKERS = frozenset({"tests/test_fuzz_schemathesis.py"})


# First: pytest-xdist reads the marks in this same hook, to name each test's group.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under ``--dist loadgroup``, keep the tests that share something costly on one
    worker rather than let each worker build it again: a module's tests that use its
    module-scoped fixtures (a `polis-api serve` of its own, a big tenant), and the
    tests of the session fixtures beyond the database and the app (``live_server``,
    the browser). Correctness never depends on it: every worker could build them."""
    for item in items:
        group = _shared_fixture_group(item)
        if group is not None and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(group))


def _shared_fixture_group(item: pytest.Item) -> str | None:
    fixtures = getattr(item, "_fixtureinfo", None)
    if fixtures is None:
        return None
    scopes = {
        definitions[-1].scope
        for name, definitions in fixtures.name2fixturedefs.items()
        # pytest's and the plugins' own (tmp_path_factory, event loops) cost nothing
        if definitions[-1].func.__module__.startswith("tests")
        and name not in PER_WORKER_SESSION_FIXTURES
    }
    if "session" in scopes:
        return SHARED_SESSION_GROUP
    module = item.nodeid.split("::", 1)[0]
    if "module" in scopes and module not in SPREAD_OVER_WORKERS:
        return module
    return None
