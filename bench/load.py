"""One load run: bench/load.js against a server, with the server's memory sampled once all are connected."""

from __future__ import annotations

import json
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

import psutil

from bench.servers import Server

BENCH = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Result:
    server: str
    clients: int
    connect_ms: float
    rtt_p50_ms: float
    rtt_p99_ms: float
    req_per_s: float
    push_last_ms: float  # median over the pushes waited for
    push_median_ms: float
    kib_per_connection: float
    cpu_ms_per_request: float  # the server's CPU over the whole load (connects and pushes too) / requests
    raw: dict[str, Any]


def median_result(rounds: list[Result]) -> Result:
    """Each figure's median over rounds of one server and one client count (the raw runs kept in `raw`)."""
    first = rounds[0]
    numbers = {
        name: median(getattr(r, name) for r in rounds)
        for name in Result.__dataclass_fields__
        if name not in ("server", "clients", "raw")
    }
    return Result(server=first.server, clients=first.clients, raw={"rounds": [r.raw for r in rounds]}, **numbers)


def run_load(server: Server, clients: int, requests: int, pushes: int, timeout_s: float = 300) -> Result:
    assert server.process is not None
    process = psutil.Process(server.process.pid)
    before = process.memory_info().rss
    cpu_before = _cpu_seconds(process)
    connected: dict[str, int] = {}
    load = subprocess.Popen(
        ["node", str(BENCH / "load.js"), server.url, str(clients), str(requests), str(pushes)],
        cwd=BENCH,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"LOAD_TIMEOUT_MS": str(int(timeout_s * 1000)), "PATH": _path()},
    )

    def watch() -> None:
        assert load.stderr is not None
        for line in load.stderr:
            if line.strip() == "connected" and "rss" not in connected:
                connected["rss"] = process.memory_info().rss

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, _ = load.communicate(timeout=timeout_s + 30)
    cpu_seconds = _cpu_seconds(process) - cpu_before
    watcher.join(timeout=5)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    raw = json.loads(lines[-1]) if lines else {"error": f"no output (exit {load.returncode})"}
    if "error" in raw:
        raise RuntimeError(f"load against {server.name} with {clients} clients failed: {raw['error']}")
    lasts, medians = raw.get("push_last_ms") or [0], raw.get("push_median_ms") or [0]
    return Result(
        server=server.name,
        clients=clients,
        connect_ms=raw["connect_ms"],
        rtt_p50_ms=raw["rtt_p50_ms"],
        rtt_p99_ms=raw["rtt_p99_ms"],
        req_per_s=raw["req_per_s"],
        push_last_ms=median(lasts),
        push_median_ms=median(medians),
        kib_per_connection=max(0, connected.get("rss", before) - before) / 1024 / clients,
        cpu_ms_per_request=cpu_seconds * 1000 / max(1, clients * requests),
        raw=raw,
    )


def _cpu_seconds(process: psutil.Process) -> float:
    """User and system CPU of the server process and its children (the Node peer's npm wrapper has one)."""
    total = 0.0
    for each in [process, *process.children(recursive=True)]:
        try:
            times = each.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _path() -> str:
    import os

    return os.environ.get("PATH", "/usr/bin:/bin")
