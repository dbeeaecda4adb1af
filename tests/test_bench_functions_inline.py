"""bench/functions_inline.py, started as `make bench` starts it: the baseline, answering with the real functions.

The baseline's own snapshot would count the connected clients too; what only the real functions give is a
`$connect` refusal, and the rate limiter `make run` has on."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import socketio

from bench.load import run_load
from bench.servers import Server, functions_inline
from shared.contract import ERROR, LIVE_METRICS, METRIC_NAMES, REQUEST_LIVE_METRICS


@pytest.fixture
def server() -> Iterator[Server]:
    running = functions_inline(1.0).start(timeout=30)
    try:
        yield running
    finally:
        running.stop()


async def live_metrics(client: socketio.AsyncClient, answers: asyncio.Queue[Any]) -> dict[str, Any]:
    await client.emit(REQUEST_LIVE_METRICS)
    snapshot = await asyncio.wait_for(answers.get(), timeout=5)
    return {metric["name"]: metric["value"] for metric in snapshot}


async def test_functions_inline_counts_the_connections_the_real_connect_took(server):
    clients = [socketio.AsyncClient() for _ in range(2)]
    answers: asyncio.Queue[Any] = asyncio.Queue()
    clients[0].on(LIVE_METRICS, answers.put)
    refused = socketio.AsyncClient()
    refusals: list[Any] = []
    refused.on("connect_error", refusals.append)
    try:
        for client in clients:
            await client.connect(server.url, transports=["websocket"])
        with pytest.raises(socketio.exceptions.ConnectionError):
            await refused.connect(server.url, transports=["websocket"], auth={"userId": "not an id!"})
        assert refusals[0]["message"].startswith("userId must be")  # $connect's refusal: the baseline takes anyone
        metrics = await live_metrics(clients[0], answers)
        assert list(metrics)[:5] == list(METRIC_NAMES[:5])
        assert metrics["Active Users"] == 2
        await clients[1].disconnect()
        for _ in range(50):  # the server runs $disconnect once it has seen the client leave
            if (await live_metrics(clients[0], answers))["Active Users"] == 1:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("$disconnect did not take the connection out of the counts")
    finally:
        for client in clients:
            await client.disconnect()


async def test_functions_inline_rate_limits_as_make_run_does(server):
    client = socketio.AsyncClient()
    errors: asyncio.Queue[Any] = asyncio.Queue()
    client.on(ERROR, errors.put)
    await client.connect(server.url, transports=["websocket"])
    try:
        for _ in range(60):  # RATE_LIMIT_BURST's default is 40
            await client.emit(REQUEST_LIVE_METRICS)
        error = await asyncio.wait_for(errors.get(), timeout=5)
        assert error["event"] == REQUEST_LIVE_METRICS
        assert error["message"].startswith("Too many requests")
    finally:
        await client.disconnect()


def test_functions_inline_serves_the_bench_load(server):
    # load.js's stock clients keep offsets: each connect runs `resume` too, and a failed one would refuse the client.
    result = run_load(server, clients=2, requests=2, pushes=0, timeout_s=20)
    assert (result.clients, result.rtt_p50_ms > 0) == (2, True)
