"""Connection state recovery: how long a reconnecting client waits for what it missed, and what publishing
costs now that every update is kept for recovery.

- One client drops its transport (ROUNDS times), MISSED updates are published meanwhile, and it reconnects:
  the time from its reconnection to the last missed update delivered, under `make run`'s configuration.
- CLIENTS clients recover at once after a gateway restart, DynamoDB living outside the gateway (a moto
  server started here, as DynamoDB Local would be): the thundering herd.
- The publish function's CPU and DynamoDB calls per update (bench/publish_cost.py), this tree against the
  tree before recovery (git revision RECOVERY_BASE, default: the parent of the commit that added
  shared/history.py), in the same sitting.

    RECOVERY_CLIENTS=300  RECOVERY_MISSED=5  RECOVERY_ROUNDS=20  RECOVERY_BASE=<git revision>
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench.servers import ROOT, Server, gateway

SCRIPT = ROOT / "bench" / "recovery.js"
INTERVAL = 1.0


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def _publish(server: Server, n: int) -> None:
    """One update, tried again while the function fails: the first publish after a restart meets every member the
    gateway's shutdown left registered, gone now, and removes them (as API Gateway's 410s do): it may time out."""
    request = urllib.request.Request(
        f"{server.url}/dashboards/bench-recovery/updates",
        data=json.dumps({"n": n}).encode(),
        headers={"Content-Type": "application/json"},
    )
    for attempt in range(10):
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                assert answer.status == 202
                return
        except urllib.error.HTTPError as error:
            if error.code < 500 or attempt == 9:
                raise


def _drive(server: Server, clients: int, missed: int, rounds: int, mode: str) -> list[dict[str, Any]]:
    """The JavaScript clients through `rounds` drops (or restarts); one result line per round."""
    process = subprocess.Popen(
        ["node", str(SCRIPT), server.url, str(clients), str(missed), str(rounds), mode],
        cwd=ROOT / "bench", stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None

    def line() -> dict[str, Any]:
        read: dict[str, Any] = json.loads(process.stdout.readline())  # type: ignore[union-attr]
        if "error" in read:
            raise RuntimeError(f"recovery.js: {read['error']}")
        return read

    def go() -> None:
        process.stdin.write("go\n")  # type: ignore[union-attr]
        process.stdin.flush()  # type: ignore[union-attr]

    results = []
    try:
        assert line() == {"event": "ready"}
        _publish(server, 0)
        go()
        for _ in range(rounds):
            assert line() == {"event": "away"}
            if mode == "restart":
                port = server.port
                server.stop()
                server.start(port=port)
            for n in range(missed):
                _publish(server, n + 1)
            go()
            results.append(line())
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    return results


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _publish_cost(tree: Path) -> dict[str, Any]:
    """bench/publish_cost.py (this tree's copy) run against the code of `tree`."""
    script = Path(tempfile.mkdtemp(prefix="publish-cost-")) / "publish_cost.py"
    script.write_text((ROOT / "bench" / "publish_cost.py").read_text())
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, str(script)], cwd=tree, env=env, capture_output=True, text=True, check=True)
    cost: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return cost


def _base_tree() -> tuple[str, Path]:
    revision = os.environ.get("RECOVERY_BASE") or subprocess.run(
        ["git", "log", "--diff-filter=A", "--format=%H^", "--", "shared/history.py"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()[-1]  # fmt: skip
    tree = Path(tempfile.mkdtemp(prefix="recovery-base-")) / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(tree), revision], cwd=ROOT, check=True)
    short = subprocess.run(["git", "rev-parse", "--short", revision], cwd=ROOT, capture_output=True, text=True)
    return short.stdout.strip(), tree


def section() -> list[str]:
    clients, missed, rounds = _int("RECOVERY_CLIENTS", 300), _int("RECOVERY_MISSED", 5), _int("RECOVERY_ROUNDS", 20)
    lines = [
        "## Connection state recovery",
        "",
        "Gateway settings: `make run`'s defaults, METRICS_INTERVAL_SECONDS=1.",
        "",
    ]
    one = gateway(INTERVAL).start()  # `make run`'s configuration
    try:
        single = _drive(one, 1, missed, rounds, "drop")
    finally:
        one.stop()
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access line per DynamoDB call otherwise

    from bench.servers import free_port

    dynamodb_port = free_port()
    dynamodb = ThreadedMotoServer(ip_address="127.0.0.1", port=dynamodb_port)
    dynamodb.start()
    herd_server = gateway(INTERVAL, DYNAMODB_ENDPOINT_URL=f"http://127.0.0.1:{dynamodb_port}").start()
    try:
        (herd,) = _drive(herd_server, clients, missed, 1, "restart")
    finally:
        herd_server.stop()
        dynamodb.stop()
    times = [r["p50"] for r in single]
    recovered = sum(r["recovered"] for r in single)
    lines += [
        f"Reconnection to the last of {missed} missed updates delivered (the client's own reconnection delay aside):",
        "",
        "| case | p50 | p95 | max | recovered |",
        "|---|---:|---:|---:|---:|",
        f"| 1 client, {rounds} drops, `make run`'s configuration | {_percentile(times, 0.5):.0f} ms "
        f"| {_percentile(times, 0.95):.0f} ms | {max(times):.0f} ms | {recovered} of {rounds} |",
        f"| {clients} clients at once after a gateway restart, external DynamoDB (moto server) | {herd['p50']:.0f} ms "
        f"| {herd['p95']:.0f} ms | {herd['max']:.0f} ms | {herd['recovered']} of {clients} |",
        "",
    ]
    revision, base = _base_tree()
    try:
        before, after = _publish_cost(base), _publish_cost(ROOT)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    ratio = after["cpu_ms_per_update"] / before["cpu_ms_per_update"]
    lines += [
        f"Publishing one update to a dashboard of {after['members']} members ({after['updates']} updates; the "
        "function's own CPU, DynamoDB in-process as under `make run`, posts only counted):",
        "",
        "| code | CPU per update | DynamoDB calls per update |",
        "|---|---:|---|",
        f"| before recovery ({revision}) | {before['cpu_ms_per_update']:.2f} ms | {_calls(before)} |",
        f"| now | {after['cpu_ms_per_update']:.2f} ms ({ratio:.2f}x) | {_calls(after)} |",
        "",
    ]
    return lines


def _calls(cost: dict[str, Any]) -> str:
    return ", ".join(f"{op} {n:.2f}" for op, n in cost["calls_per_update"].items())
