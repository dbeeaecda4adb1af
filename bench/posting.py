"""Posting rate against one Management API endpoint: the fan-out engine vs aiohttp vs the naive boto3 loop,
and what shipping aiohttp would cost (artifact size, import time)."""

from __future__ import annotations

import os
import sys
import time
import urllib.request

from bench.aiohttp_poster import AiohttpPoster
from bench.servers import Server
from shared.clients import management_api_poster
from shared.poster import ManagementApiPoster, Poster

FRAME = (
    b'{"event":"analytics:liveMetrics","data":[{"name":"Active Users","value":1,'
    b'"timestamp":"2026-01-01T00:00:00.000Z"}]}'
)


def boto3_management_api_poster(endpoint_url: str) -> Poster:
    """One boto3 `post_to_connection` per post: the naive reference the fan-out engine is measured against."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=50)
    client = boto3.session.Session().client("apigatewaymanagementapi", endpoint_url=endpoint_url, config=config)
    return ManagementApiPoster(client)


def _rate(action, posts: int) -> tuple[float, float]:
    """(posts per wall second, posts per CPU second of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return posts / wall, posts / max(cpu, 1e-9)


def measure(url: str, posts: int) -> dict[str, tuple[float, float]]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(name, value)
    ids = [f"conn{i:06d}" for i in range(posts)]
    naive, engine, contender = boto3_management_api_poster(url), management_api_poster(url), AiohttpPoster.from_env(url)
    (
        naive.post(ids[0], FRAME),
        engine.post_many(ids[:64], FRAME),
        contender.post_many(ids[:64], FRAME),
    )  # warm: pools open
    few = ids[: max(1, posts // 4)]
    try:
        return {
            "naive boto3 loop (one post_to_connection after another)": _rate(
                lambda: [naive.post(i, FRAME) for i in few], len(few)
            ),
            "boto3 client, 32 threads (ManagementApiPoster.post_many)": _rate(
                lambda: naive.post_many(ids, FRAME), len(ids)
            ),
            "aiohttp 3.14 + the same SigV4Signer (one asyncio loop, 32 keep-alive connections)": _rate(
                lambda: contender.post_many(ids, FRAME), len(ids)
            ),
            "fan-out engine (SignedPoster.post_many, one asyncio loop, 32 keep-alive connections)": _rate(
                lambda: engine.post_many(ids, FRAME), len(ids)
            ),
        }
    finally:
        contender.close()


def section(posts: int | None = None) -> list[str]:
    posts = posts or int(os.environ.get("BENCH_POSTS", "4000"))
    endpoint = Server("endpoint", [sys.executable, "-m", "bench.endpoint"])
    endpoint.start = _start_http(endpoint)
    endpoint.start()
    try:
        rates = measure(endpoint.url, posts)
    finally:
        endpoint.stop()
    naive = rates[next(iter(rates))][1]
    lines = [
        f"## Posting rate: {posts} posts to one local Management API endpoint (uvicorn, another process)",
        "",
        "| poster | posts/s (wall) | posts per CPU-second | vs naive (per CPU-second) |",
        "|---|---:|---:|---:|",
    ]
    for name, (wall, cpu) in rates.items():
        lines.append(f"| {name} | {wall:,.0f} | {cpu:,.0f} | {cpu / naive:.1f}x |")
        print(f"  {name}: {wall:,.0f} posts/s, {cpu:,.0f} per CPU-second", flush=True)
    return [*lines, "", *aiohttp_costs()]


def aiohttp_costs() -> list[str]:
    """What shipping aiohttp would add to every function: its installed closure, and its import time."""
    from bench.aiohttp_poster import installed_closure
    from bench.coldstart import baseline_us, import_us

    sizes = installed_closure("aiohttp")
    base = baseline_us()
    engine = import_us("import shared.signed_poster") - base
    both = import_us("import shared.signed_poster, aiohttp") - base
    lines = [
        "## What aiohttp would cost each function (this machine's wheels; Lambda's arm64 ones differ slightly)",
        "",
        "| distribution | installed KiB |",
        "|---|---:|",
        *(f"| {name} | {kib:,.0f} |" for name, kib in sizes.items()),
        f"| **total** | **{sum(sizes.values()):,.0f}** |",
        "",
        f"Import time, median of 5 fresh interpreters: `import shared.signed_poster` {engine / 1000:.1f} ms; "
        f"with `import aiohttp` as well {both / 1000:.1f} ms (+{(both - engine) / 1000:.1f} ms).",
        "",
    ]
    print("\n".join(lines), flush=True)
    return lines


def _start_http(server: Server):
    """The endpoint speaks plain HTTP, not Socket.IO: wait for any answer on /."""
    import subprocess

    from bench.servers import ROOT, free_port

    def start(timeout: float = 30.0) -> Server:
        server.port = free_port()
        env = {**os.environ, "PORT": str(server.port)}
        server.process = subprocess.Popen(server.command, cwd=ROOT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(urllib.request.Request(f"{server.url}/@connections/x", data=b"x"), timeout=1)
                return server
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the bench endpoint did not start")

    return start
