"""Issues 10 and 12's load through the gateway as `make run` starts it: 300 clients x 5 joins, then all leave.

    python -m bench.join_load        (or BENCH_SECTIONS=joins make bench)
    JOIN_LOAD_CLIENTS=300  JOIN_LOAD_JOINS=5  JOIN_LOAD_DASHBOARDS=200

A watcher subscribes to the live metrics first and stays: the pushes' period is timed through the load, and
once every other client is gone the watcher's pushes must show exactly itself (Active Users 1, Live
Subscribers 1, Active Dashboards 0). Also measured: the gateway's RSS before and after, and how long SIGTERM
takes to stop it.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
from typing import Any

import psutil
import socketio

from bench.servers import gateway

PERIOD = 1.0


def _metric(snapshot: list[dict[str, Any]], name: str) -> int:
    return int(next(item["value"] for item in snapshot if item["name"] == name))


async def _run(url: str, clients: int, joins: int, dashboards: int) -> dict[str, float]:
    pushes: list[tuple[float, list[dict[str, Any]]]] = []
    watcher = socketio.AsyncClient(reconnection=False)
    watcher.on("analytics:liveMetrics", lambda data: pushes.append((time.monotonic(), data)))
    await watcher.connect(url, transports=["websocket"], wait_timeout=60)
    assert await watcher.call("analytics:subscribeLiveMetrics", timeout=60) == {"ok": True}
    rng = random.Random(10)
    plans = [[f"d{rng.randrange(dashboards)}" for _ in range(joins)] for _ in range(clients)]
    users = [f"user{n % 40}" if n % 4 else None for n in range(clients)]  # a quarter anonymous
    started = time.monotonic()
    sockets = [socketio.AsyncClient(reconnection=False) for _ in plans]
    await asyncio.gather(
        *(
            s.connect(url + (f"?userId={u}" if u else ""), transports=["websocket"], wait_timeout=300)
            for s, u in zip(sockets, users, strict=True)
        )
    )

    async def join(s: socketio.AsyncClient, plan: list[str]) -> int:
        refused = 0
        for dashboard in plan:
            answer = await s.call("analytics:joinDashboard", dashboard, timeout=300)
            refused += answer != {"ok": True}
        return refused

    refused = sum(await asyncio.gather(*(join(s, plan) for s, plan in zip(sockets, plans, strict=True))))
    loaded = time.monotonic()
    await asyncio.gather(*(s.disconnect() for s in sockets))
    left = time.monotonic()
    deadline = left + 600
    while time.monotonic() < deadline:
        if pushes and pushes[-1][0] > left:
            latest = pushes[-1][1]
            exact = (
                _metric(latest, "Active Users") == 1
                and _metric(latest, "Live Subscribers") == 1
                and _metric(latest, "Active Dashboards") == 0
            )
            if exact:
                break
        await asyncio.sleep(0.1)
    else:
        raise RuntimeError("the counts were not exact within 10 minutes of the clients leaving")
    exact_at = pushes[-1][0]
    during = [at for at, _ in pushes if started <= at <= loaded]
    gaps = [b - a for a, b in itertools.pairwise(during)]
    await watcher.disconnect()
    return {
        "load_s": loaded - started,
        "refused": refused,
        "pushes_during": len(during),
        "longest_gap_s": max(gaps, default=float("nan")),
        "exact_after_s": exact_at - left,
    }


def section() -> list[str]:
    clients = int(os.environ.get("JOIN_LOAD_CLIENTS", "300"))
    joins = int(os.environ.get("JOIN_LOAD_JOINS", "5"))
    dashboards = int(os.environ.get("JOIN_LOAD_DASHBOARDS", "200"))
    server = gateway(PERIOD).start()
    assert server.process is not None
    process = psutil.Process(server.process.pid)
    try:
        rss_before = process.memory_info().rss
        figures = asyncio.run(_run(server.url, clients, joins, dashboards))
        rss_after = process.memory_info().rss
    finally:
        stopping = time.monotonic()
        server.stop()
        stop_s = time.monotonic() - stopping
    return [
        "",
        f"## {clients} clients x {joins} joins over {dashboards} dashboards, then all leave (push period {PERIOD:g} s)",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| connect and join, all clients at once (s) | {figures['load_s']:.1f} |",
        f"| joins refused | {figures['refused']:.0f} |",
        f"| pushes during the load | {figures['pushes_during']:.0f} |",
        f"| longest gap between two pushes during the load (s) | {figures['longest_gap_s']:.2f} |",
        f"| counts exact after the last client left (s) | {figures['exact_after_s']:.1f} |",
        f"| gateway RSS before / after (MB) | {rss_before / 2**20:.0f} / {rss_after / 2**20:.0f} |",
        f"| SIGTERM to exit (s) | {stop_s:.1f} |",
    ]


if __name__ == "__main__":
    print("\n".join(section()))
