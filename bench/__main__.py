"""`make bench`: the gateway against the in-memory baseline, the baseline running the real functions inline (the
floor under the gateway's ratios), and the Node peer when the handbook is there.

    BENCH_CLIENTS=10,100,300,1000   client counts, in order
    BENCH_REQUESTS=10               requestLiveMetrics round trips per client
    BENCH_PUSHES=3                  periodic pushes measured per run
    BENCH_ROUNDS=3                  rounds per client count, the servers taking turns; each figure their median
    BENCH_SECTIONS=load,dynamodb,joins,posting,socketio,coldstart,recovery
    BENCH_PEER=auto|off             drive ../shared/peer/server.js too when it exists
    BENCH_FLOOR=on|off              drive bench/functions_inline.py too (the goals' floor)
    BENCH_GATEWAY_ENV=""            settings of the gateway under test beyond `make run`'s (space-separated)

The gateway runs as `make run` starts it (the rate limiter on, the embedded DynamoDB), but for its push period,
METRICS_INTERVAL_SECONDS=1, so that pushes can be timed; any BENCH_GATEWAY_ENV is printed with the table.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench import table
from bench.load import Result, median_result, run_load
from bench.servers import Server, baseline, functions_inline, gateway, node_peer

INTERVAL = 1.0
RESULTS = Path(__file__).resolve().parent / "results"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "bench"  # one page per section, linked from the docs


def _ints(name: str, default: str) -> list[int]:
    return [int(x) for x in os.environ.get(name, default).split(",") if x.strip()]


def machine() -> str:
    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = psutil.virtual_memory().total / 2**30
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, {system}, Python {platform.python_version()}"


def gateway_env() -> dict[str, str]:
    raw = os.environ.get("BENCH_GATEWAY_ENV", "")
    return dict(pair.split("=", 1) for pair in raw.split() if "=" in pair)


def measure(server: Server, clients: int, requests: int, pushes: int) -> Result:
    """A fresh server per client count, warmed up by a few clients, then the load."""
    server.start()
    try:
        run_load(server, 5, 5, 0)
        return run_load(server, clients, requests, pushes)
    finally:
        server.stop()


def load_section(lines: list[str]) -> None:
    counts = _ints("BENCH_CLIENTS", "10,100,300,1000")
    requests = _ints("BENCH_REQUESTS", "10")[0]
    pushes = _ints("BENCH_PUSHES", "3")[0]
    rounds = _ints("BENCH_ROUNDS", "3")[0]
    scratch = Path(tempfile.mkdtemp(prefix="bench-"))
    peer = node_peer(INTERVAL, scratch) if os.environ.get("BENCH_PEER", "auto") != "off" else None
    floor = os.environ.get("BENCH_FLOOR", "on") != "off"
    results: dict[str, list[Result]] = {"gateway": [], "baseline": [], "functions inline": [], "node peer": []}
    for clients in counts:
        factories = [lambda: gateway(INTERVAL, **gateway_env()), lambda: baseline(INTERVAL)]
        if floor:
            factories.append(lambda: functions_inline(INTERVAL))
        if peer is not None:
            factories.append(lambda: peer)
        # The servers take turns, round after round, so that a slow minute of a shared machine falls on each of
        # them alike; each figure is then the median of its rounds.
        by_server: dict[str, list[Result]] = {}
        for _ in range(rounds):
            for factory in factories:
                server = factory()
                result = measure(server, clients, requests, pushes)
                by_server.setdefault(server.name, []).append(result)
                print(f"  {server.name:16} {clients:5} clients: {table.summary(result)}", flush=True)
        for name, measured in by_server.items():
            results[name].append(median_result(measured))
    lines += table.load_table(results, requests, pushes, rounds)
    after_the_table = len(lines) - len(table.goals(results)) - 2
    lines[after_the_table:after_the_table] = [
        "",  # else Markdown reads the line as one more row of the table
        f"Gateway settings: `make run`'s defaults, METRICS_INTERVAL_SECONDS={INTERVAL:g}"
        + "".join(f", {name}={value}" for name, value in gateway_env().items()),
    ]


# (BENCH_SECTIONS name, module with a section() of Markdown lines, what is printed as it starts); after "load"
SECTIONS = [
    ("dynamodb", "bench.dynamodb_transports", "the embedded DynamoDB: CPU per call, in-process vs HTTP"),
    ("joins", "bench.join_load", "300 clients x 5 joins through the gateway, then all leave"),
    ("posting", "bench.posting", "posting rate: the fan-out engine vs aiohttp vs the naive boto3 loop"),
    ("socketio", "bench.socketio_open", "Socket.IO on the deployed endpoint: WebSocket open to connect"),
    ("coldstart", "bench.coldstart", "cold start: python -X importtime"),
    ("recovery", "bench.recovery", "connection state recovery: 1 client's drops, a herd after a restart, publish cost"),
]


def publish(name: str, started: datetime, lines: list[str]) -> None:
    """docs/bench/<section>.md: the figures the docs link to, written by this run alone (never by hand), with the
    date, the machine and the configuration they are of."""
    header = [f"# make bench: {name}", "", f"{started:%Y-%m-%d %H:%M} UTC, {machine()}.", ""]
    header += ["Written by `make bench` (`BENCH_SECTIONS=" + name + "`); do not edit.", ""]
    DOCS.mkdir(parents=True, exist_ok=True)
    (DOCS / f"{name}.md").write_text("\n".join(header + lines).rstrip() + "\n")


def main() -> int:
    sections = os.environ.get("BENCH_SECTIONS", "load,dynamodb,joins,posting,socketio,coldstart,recovery").split(",")
    started = datetime.now(UTC)
    lines = [f"# make bench, {started:%Y-%m-%d %H:%M} UTC", "", f"Machine: {machine()}", ""]
    if "load" in sections:
        print("load: gateway vs baseline, push period 1 s", flush=True)
        load_lines: list[str] = []
        load_section(load_lines)
        publish("load", started, load_lines)
        lines += load_lines
    for name, module, title in SECTIONS:
        if name in sections:
            print(title, flush=True)
            section_lines = importlib.import_module(module).section()
            publish(name, started, section_lines)
            lines += section_lines
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"bench-{started:%Y%m%d-%H%M%S}.md"
    path.write_text(text)
    (RESULTS / "latest.md").write_text(text)
    print()
    print(text)
    print(f"written to {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
