"""What the gateway writes: connection ids at DEBUG only, every line one line whatever a client sends, a refused
upgrade no ERROR, and at INFO nothing per event."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import Iterator

import pytest
import socketio
import websockets

from local_gateway.logs import FORMAT, OneLineEach, WithoutQueryStrings
from tests.support.servers import RunningGateway, first_line, upgrade_request

FORGED = "2026-01-01 00:00:00,000 ERROR local_gateway: forged"


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    running = RunningGateway(METRICS_INTERVAL_SECONDS="30").start()
    yield running
    running.stop()


@contextlib.contextmanager
def gateway_output(level: int) -> Iterator[io.StringIO]:
    """The log as `python -m local_gateway` writes it (its handler's format and filters), at `level`."""
    output, root, uvicorn_errors = io.StringIO(), logging.getLogger(), logging.getLogger("uvicorn.error")
    handler = logging.StreamHandler(output)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(WithoutQueryStrings())
    handler.addFilter(OneLineEach())
    levels = root.level, uvicorn_errors.level
    root.addHandler(handler)
    root.setLevel(level)
    uvicorn_errors.setLevel(level)
    try:
        yield output
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        uvicorn_errors.setLevel(levels[1])


async def connected(gateway: RunningGateway) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(gateway.url, transports=["websocket"], wait_timeout=10)
    return client


async def test_an_internal_failure_names_no_connection_above_debug(gateway, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    client = await connected(gateway)
    connection_id = gateway.gateway.socketio.connection_id(client.get_sid())

    def broken(*args: object) -> None:
        raise RuntimeError("DynamoDB fell over")

    monkeypatch.setattr(gateway.gateway.invoker.services.rate_limiter, "take", broken)
    answer = await client.call("analytics:requestLiveMetrics", timeout=10)
    assert answer["ok"] is False
    await client.disconnect()
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert failures and all(connection_id not in r.getMessage() + str(r.exc_info) for r in failures)
    above_debug = [r.getMessage() for r in caplog.records if r.levelno > logging.DEBUG]
    assert not [line for line in above_debug if connection_id in line]
    assert any(connection_id in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)


async def test_a_clients_strings_forge_no_log_line(gateway):
    with gateway_output(logging.DEBUG) as output:
        client = await connected(gateway)
        await client.call(f"x\n{FORGED}\r", {"data": f"\n{FORGED}"}, timeout=10)
        await client.disconnect()
        # A path of the client's choosing, which uvicorn decodes and writes (a stage that is not one: 403).
        upgrade = upgrade_request("/x%0A2026-01-01%2000:00:00,000%20ERROR%20local_gateway:%20forged", "localhost")
        assert await asyncio.to_thread(first_line, gateway.port, upgrade) == "HTTP/1.1 403 Forbidden"
        await asyncio.sleep(0.2)
    lines = output.getvalue().splitlines()
    assert any("\\n2026-01-01" in line for line in lines)  # the strings were written, escaped
    assert not [line for line in lines if line.startswith("2026-01-01")]


async def test_a_refused_upgrade_is_no_error(gateway, caplog):
    caplog.set_level(logging.INFO)
    stage = gateway.url.replace("http", "ws")
    for url, headers in ((f"{stage}/beta", {}), (f"{stage}/prod", {"Origin": "https://evil.example"})):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(url, additional_headers=headers)
        assert refused.value.response.status_code == 403
    rebound = upgrade_request("/prod", "rebound.attacker.example")
    assert (await asyncio.to_thread(first_line, gateway.port, rebound)).startswith("HTTP/1.1 421 ")
    await asyncio.sleep(0.2)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_at_info_events_add_no_lines(gateway):
    client = await connected(gateway)
    stage = await websockets.connect(gateway.url.replace("http", "ws") + "/prod")
    with gateway_output(logging.INFO) as output:
        for _ in range(10):
            assert (await client.call("analytics:requestLiveMetrics", timeout=10))["ok"] is True
            assert (await client.call("analytics:joinDashboard", "bad id!", timeout=10))["ok"] is False
            await stage.send('{"action": "analytics:requestLiveMetrics"}')
            await stage.send('{"action": "analytics:noSuchEvent"}')
        acks = 0
        while acks < 20:  # each frame's route response (and the error frames and pushes between them)
            acks += '"ok"' in await asyncio.wait_for(stage.recv(), 10)
        await asyncio.sleep(0.2)
    await stage.close()
    await client.disconnect()
    assert output.getvalue() == ""
