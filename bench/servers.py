"""Starting the servers under test as users run them, and measuring their CPU and memory."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from common import BENCH, PG_DIR, VENV_BIN


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """One server under test: polis-api, the floor or the naive app, with N workers."""

    app: str  # "polis-api", "floor", "naive"
    workers: int
    env: dict[str, str]
    ready_path: str
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def label(self) -> str:
        return f"{self.app} x{self.workers}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        port = str(self.port)
        if self.app.startswith("polis-api"):
            workers = ["--workers", str(self.workers)]
            return [str(VENV_BIN / "polis-api"), "serve", *workers, "--port", port, "--quiet"]
        module = {
            "floor": "floor_app:app",
            "naive": "naive_app:app",
            "geo-floor": "geo_floor:app",  # bench/geo.py's walk-list download
        }[self.app]
        return [
            str(VENV_BIN / "uvicorn"),
            module,
            "--app-dir",
            str(BENCH),
            "--host",
            "127.0.0.1",
            "--port",
            port,
            "--workers",
            str(self.workers),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ]

    def start(self, headers: dict[str, str], timeout: float = 60) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command(), env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited at start; see {self.log_path}")
            try:
                request = urllib.request.Request(self.base_url + self.ready_path, headers=headers)
                with urllib.request.urlopen(request, timeout=2) as answer:
                    if answer.status == 200 and len(self.app_processes()) >= self.workers:
                        return
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}: {exc.read()[:300].decode(errors='replace')}"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(
            f"{self.label} was not ready within {timeout} s ({last}); see {self.log_path}"
        )

    def stop(self) -> None:
        """SIGINT (uvicorn's graceful stop), then SIGKILL to what is left of this tree."""
        if self.process is None:
            return
        tree = processes(self.process.pid)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
        for proc in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        self.process.wait()
        self.process = None

    def all_processes(self) -> list[psutil.Process]:
        assert self.process is not None
        return processes(self.process.pid)

    def app_processes(self) -> list[psutil.Process]:
        """The processes that serve requests (uvicorn's supervisor only watches them)."""
        tree = self.all_processes()
        if self.workers == 1:
            return tree[:1]
        return [p for p in tree[1:] if _is_python(p)]


def _is_python(proc: psutil.Process) -> bool:
    """A worker, not multiprocessing's resource tracker."""
    try:
        return "python" in Path(proc.exe()).name and "resource_tracker" not in " ".join(
            proc.cmdline()
        )
    except psutil.Error:
        return False


def processes(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def postgres_processes() -> list[psutil.Process]:
    pid_file = PG_DIR / "pgdata" / "postmaster.pid"
    return processes(int(pid_file.read_text().split()[0]))


def cpu_seconds(procs: list[psutil.Process]) -> dict[int, float]:
    """CPU time of each process, plus that of its children that have exited and been
    reaped (a PostgreSQL backend that closed during the window still counts)."""
    times = {}
    for proc in procs:
        try:
            cpu = proc.cpu_times()
            times[proc.pid] = cpu.user + cpu.system + cpu.children_user + cpu.children_system
        except psutil.NoSuchProcess:
            pass
    return times


@dataclass
class CpuWindow:
    """CPU seconds spent by the server, by PostgreSQL and by everything else in a window.

    The process trees are listed again at the end: a backend or worker that started
    during the window counts in full, one that ended counts through its parent.
    """

    server: Callable[[], list[psutil.Process]]
    database: Callable[[], list[psutil.Process]]
    started: float = 0.0
    _before: tuple[dict[int, float], dict[int, float], float, float] | None = None

    def __enter__(self) -> CpuWindow:
        self._before = (
            cpu_seconds(self.server()),
            cpu_seconds(self.database()),
            _machine_busy(),
            _children_cpu(),
        )
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._before is not None
        server, database, busy, children = self._before
        self.elapsed = time.monotonic() - self.started
        self.server_s = _spent(server, cpu_seconds(self.server()))
        self.database_s = _spent(database, cpu_seconds(self.database()))
        self.load_generator_s = _children_cpu() - children  # wrk, our only reaped child
        machine = _machine_busy() - busy
        other = machine - self.server_s - self.database_s - self.load_generator_s
        self.other_pct = max(0.0, 100 * other / (self.elapsed * (os.cpu_count() or 1)))


def _spent(before: dict[int, float], after: dict[int, float]) -> float:
    # Totals, not per pid: an ended process's time moves into its parent's children_*.
    return max(0.0, sum(after.values()) - sum(before.values()))


def _machine_busy() -> float:
    times = psutil.cpu_times()
    return times.user + times.nice + times.system + times.irq + times.softirq + times.steal


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_load(seconds: float = 2.0) -> float:
    """Percent of all cores busy over ``seconds``: is anything else running?"""
    before = _machine_busy()
    time.sleep(seconds)
    return 100 * (_machine_busy() - before) / (seconds * (os.cpu_count() or 1))


def rss_bytes(procs: list[psutil.Process]) -> int:
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total
