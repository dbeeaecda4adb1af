"""A cap on open connections per client address, over both fronts: Socket.IO refuses, /{stage} answers 429."""

from __future__ import annotations

import asyncio

import pytest
import socketio
import websockets

from local_gateway.settings import GatewaySettings
from shared.config import ConfigError
from tests.support import RunningGateway

TOO_MANY = {"message": "Too many connections from this address"}


async def socketio_client(url: str) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, transports=["websocket"], wait_timeout=10)
    return client


async def refused_socketio(url: str) -> object:
    """What the server said when it refused (Socket.IO's connect_error)."""
    client = socketio.AsyncClient(reconnection=False)
    said: list[object] = []
    client.on("connect_error", said.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(url, transports=["websocket"], wait_timeout=10)
    return said[0]


async def wait_for_open(gateway: RunningGateway, count: int) -> None:
    """Until this address holds `count` places (a place is given back once `$disconnect` has run)."""
    async with asyncio.timeout(10):
        while gateway.gateway.socketio.cap.count("127.0.0.1") != count:
            await asyncio.sleep(0.02)


def test_the_cap_is_generous_by_default_and_configurable():
    assert GatewaySettings.from_env({}).max_connections_per_address == 1000
    assert GatewaySettings.from_env({"MAX_CONNECTIONS_PER_ADDRESS": "3"}).max_connections_per_address == 3
    for bad in ("0", "-1", "many"):
        with pytest.raises(ConfigError, match="MAX_CONNECTIONS_PER_ADDRESS"):
            GatewaySettings.from_env({"MAX_CONNECTIONS_PER_ADDRESS": bad})


async def test_connections_beyond_the_cap_per_address_are_refused_on_both_fronts():
    gateway = RunningGateway(MAX_CONNECTIONS_PER_ADDRESS="2", METRICS_INTERVAL_SECONDS="30").start()
    stage_url = gateway.url.replace("http", "ws") + "/prod"
    try:
        first, second = await socketio_client(gateway.url), await socketio_client(gateway.url)
        assert await refused_socketio(gateway.url) == TOO_MANY
        with pytest.raises(websockets.InvalidStatus) as denied:
            await websockets.connect(stage_url)
        assert denied.value.response.status_code == 429
        assert len(gateway.gateway.registry) == 2  # the refused ones never reached $connect
        # A place given back is a place for either front; the cap counts both together.
        await first.disconnect()
        await wait_for_open(gateway, 1)
        ws = await websockets.connect(stage_url)
        assert await refused_socketio(gateway.url) == TOO_MANY
        await ws.close()
        await wait_for_open(gateway, 1)
        third = await socketio_client(gateway.url)
        assert await third.call("analytics:requestLiveMetrics", timeout=10) == {"ok": True}
        await second.disconnect()
        await third.disconnect()
    finally:
        gateway.stop()
