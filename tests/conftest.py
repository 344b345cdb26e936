"""Test harness: a real, freshly migrated PostgreSQL and the app over HTTP.

The database is the embedded PostgreSQL (under .polis/test) unless TEST_DATABASE_URL
names another. Every test isolates itself by working in a tenant of its own.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

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
    server = None
    if external:
        url = external
    else:
        was_running = (TEST_DATA_DIR / "pgdata" / "postmaster.pid").exists()
        url, server = db.start_embedded(TEST_DATA_DIR, database="polis_test")
        if was_running:
            server = None
    # A clean schema every run, built only by the migrations (down, then up again).
    _in_thread(db.downgrade_migrations, url, "base")
    _in_thread(db.run_migrations, url, "head")
    yield url
    if server is not None:
        db.stop_embedded(server)


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


@contextmanager
def running_server(
    database_url: str, name: str, *, quiet: bool = True, **env: str
) -> Iterator[str]:
    """`polis-api serve --workers 2` as users run it; yields its base URL once ready.

    ``env`` adds settings (``POLIS_…`` variables); the server's output goes to
    ``.polis/test/<name>.log``, which a failure to start quotes. ``quiet=False``
    keeps the access log.
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
    log_path = TEST_DATA_DIR / f"{name}.log"
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
