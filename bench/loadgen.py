"""Driving one endpoint with wrk: a warm-up, then a measured window with CPU sampled."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import WRK_DIR
from servers import CpuWindow, Server, postgres_processes


@dataclass(frozen=True)
class Endpoint:
    name: str
    script: str
    env: dict[str, str] = field(default_factory=dict)
    # Run before the warm-up and before the measured window (e.g. fresh etags).
    prepare: Callable[[], None] | None = None
    write: bool = False
    # Connection counts of its own (a heavy read), instead of the run's.
    connections: tuple[int, ...] = ()


@dataclass
class Measurement:
    app: str
    workers: int
    endpoint: str
    connections: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: dict[str, int]
    server_cpu_us: float
    db_cpu_us: float
    wrk_cpu_us: float
    other_cpu_pct: float

    def row(self) -> dict[str, Any]:
        return dict(self.__dict__)


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit(
            "wrk is not installed: `sudo apt-get install wrk` (Debian/Ubuntu), then run again."
        )
    return found


def run_wrk(
    server: Server, endpoint: Endpoint, connections: int, seconds: float, data_dir: Path
) -> dict[str, Any]:
    threads = min(2, connections)
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        out_path = out.name
    env = {
        **os.environ,
        "BENCH_WRK": str(WRK_DIR),
        "BENCH_DATA": str(data_dir),
        "BENCH_OUT": out_path,
        "BENCH_THREADS": str(threads),
        **endpoint.env,
    }
    command = [
        wrk_path(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_DIR / endpoint.script),
        server.base_url,
    ]
    try:
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=seconds + 60)
        return json.loads(Path(out_path).read_text())
    finally:
        Path(out_path).unlink(missing_ok=True)


def measure(
    server: Server,
    endpoint: Endpoint,
    connections: int,
    *,
    warmup: float,
    seconds: float,
    data_dir: Path,
) -> Measurement:
    if endpoint.prepare:
        endpoint.prepare()
    run_wrk(server, endpoint, connections, warmup, data_dir)
    if endpoint.write:
        time.sleep(1)  # let the writes wrk abandoned at its deadline commit first
    if endpoint.prepare:
        endpoint.prepare()
    with CpuWindow(server.all_processes, postgres_processes) as window:
        result = run_wrk(server, endpoint, connections, seconds, data_dir)
    requests = max(1, result["requests"])
    latency = result["latency_us"]
    return Measurement(
        app=server.app,
        workers=server.workers,
        endpoint=endpoint.name,
        connections=connections,
        requests=result["requests"],
        seconds=result["duration_us"] / 1e6,
        rps=result["requests"] / (result["duration_us"] / 1e6),
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        errors={k: v for k, v in result["errors"].items() if v},
        server_cpu_us=1e6 * window.server_s / requests,
        db_cpu_us=1e6 * window.database_s / requests,
        wrk_cpu_us=1e6 * window.load_generator_s / requests,
        other_cpu_pct=window.other_pct,
    )
