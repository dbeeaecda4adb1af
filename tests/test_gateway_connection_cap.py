"""A cap on open connections per client address, over both endpoints: Socket.IO refuses, /{stage} answers 429.
This machine's own addresses are never refused by it (a local tool must not lock the developer out): the
addresses capped here are another machine's, as a proxy the gateway trusts names them (X-Forwarded-For)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from typing import Any

import pytest
import socketio
import websockets

from local_gateway.settings import GatewaySettings
from shared.env_values import ConfigError
from tests.support.servers import RunningGateway, engineio_session, http_status, replaced_routes, until

TOO_MANY = {"message": "Too many connections from this address"}
ELSEWHERE = "203.0.113.9"  # a machine on the network
FORWARDED = {"X-Forwarded-For": ELSEWHERE}
BEHIND_PROXY = {"TRUSTED_PROXIES": "127.0.0.1", "METRICS_INTERVAL_SECONDS": "30"}


async def socketio_client(url: str, headers: dict[str, str] = FORWARDED) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, transports=["websocket"], headers=headers, wait_timeout=10)
    return client


async def refused_socketio(url: str) -> object:
    """What the server said when it refused (Socket.IO's connect_error)."""
    client = socketio.AsyncClient(reconnection=False)
    said: list[object] = []
    client.on("connect_error", said.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(url, transports=["websocket"], headers=FORWARDED, wait_timeout=10)
    return said[0]


async def wait_for_open(gateway: RunningGateway, count: int, address: str = ELSEWHERE) -> None:
    """Until the address holds `count` places (a place is given back once `$disconnect` has run)."""
    await until(lambda: gateway.gateway.socketio.cap.count(address) == count)


def test_the_cap_is_generous_by_default_and_configurable():
    assert GatewaySettings.from_env({}).max_connections_per_address == 1000
    assert GatewaySettings.from_env({"MAX_CONNECTIONS_PER_ADDRESS": "3"}).max_connections_per_address == 3
    for bad in ("0", "-1", "many"):
        with pytest.raises(ConfigError, match="MAX_CONNECTIONS_PER_ADDRESS"):
            GatewaySettings.from_env({"MAX_CONNECTIONS_PER_ADDRESS": bad})


async def test_connections_beyond_the_cap_per_address_are_refused_on_both_fronts():
    gateway = RunningGateway(MAX_CONNECTIONS_PER_ADDRESS="2", **BEHIND_PROXY).start()
    stage_url = gateway.url.replace("http", "ws") + "/prod"
    try:
        first, second = await socketio_client(gateway.url), await socketio_client(gateway.url)
        assert await refused_socketio(gateway.url) == TOO_MANY
        with pytest.raises(websockets.InvalidStatus) as denied:
            await websockets.connect(stage_url, additional_headers=FORWARDED)
        assert denied.value.response.status_code == 429
        assert len(gateway.gateway.registry) == 2  # the refused ones never reached $connect
        # A place given back is a place for either endpoint; the cap counts both together.
        await first.disconnect()
        await wait_for_open(gateway, 1)
        ws = await websockets.connect(stage_url, additional_headers=FORWARDED)
        assert await refused_socketio(gateway.url) == TOO_MANY
        await ws.close()
        await wait_for_open(gateway, 1)
        third = await socketio_client(gateway.url)
        assert await third.call("analytics:requestLiveMetrics", timeout=10) == {"ok": True}
        await second.disconnect()
        await third.disconnect()
    finally:
        gateway.stop()


async def closed_at(ws: websockets.ClientConnection, at_most: float) -> float:
    """When the server ends the session (monotonic): Engine.IO's close packet (on which every client closes) or
    the socket's end; pings are not answered, and none comes before 25 s."""
    async with asyncio.timeout(at_most):
        try:
            while await ws.recv() != "1":
                pass
        except websockets.ConnectionClosed:
            pass
    await ws.close()
    return time.monotonic()


async def until_not_yet_connected(gateway: RunningGateway, count: int, address: str = ELSEWHERE) -> None:
    await until(lambda: gateway.gateway.socketio.handshakes.waiting[address] == count)


async def test_engineio_sessions_not_yet_connected_are_capped_at_twice_the_cap_and_those_that_left_are_not():
    gateway = RunningGateway(MAX_CONNECTIONS_PER_ADDRESS="2", **BEHIND_PROXY).start()
    try:
        # Twice the cap (2) of sessions that have not connected: a burst of clients at the cap fits, and strays.
        idle = [await engineio_session(gateway, FORWARDED) for _ in range(4)]
        await until_not_yet_connected(gateway, 4)
        # One more handshake: refused by Engine.IO, before any session or function call; over WebSocket as ASGI
        # refuses an upgrade (403), over polling with Engine.IO's 401 and the reason.
        with pytest.raises(websockets.InvalidStatus) as refused:
            await engineio_session(gateway, FORWARDED)
        assert refused.value.response.status_code == 403
        polling = urllib.request.Request(f"{gateway.url}/socket.io/?EIO=4&transport=polling", headers=FORWARDED)
        status, _, body = await asyncio.to_thread(http_status, polling)
        assert (status, json.loads(body)) == (401, TOO_MANY["message"])
        # A place is given back when a session connects (or ends); one that has left is not counted again: a
        # load's clients leave their sessions behind for a moment as they go, and must not keep others out.
        await idle[0].send("40")
        assert str(await idle[0].recv()).startswith("40{")
        await until_not_yet_connected(gateway, 3)
        await idle[0].send("41")
        another = await engineio_session(gateway, FORWARDED)
        await until_not_yet_connected(gateway, 4)
        for ws in (*idle, another):
            await ws.close()
        await until_not_yet_connected(gateway, 0)
        await until(lambda: len(gateway.gateway.registry) == 0)
    finally:
        gateway.stop()


async def test_engineio_sessions_without_a_socketio_connection_end_after_the_connect_timeout():
    gateway = RunningGateway(SOCKETIO_CONNECT_TIMEOUT_SECONDS="60", METRICS_INTERVAL_SECONDS="30").start()
    handshakes = gateway.gateway.socketio.handshakes
    assert handshakes.timeout == 60
    try:
        # Connected under the long timeout: how long a connect takes on a busy machine is no part of this test.
        client = await socketio_client(gateway.url)
        leaving = await engineio_session(gateway)
        await leaving.send("40")
        assert str(await leaving.recv()).startswith("40{")
        timeout = handshakes.timeout = 1.5  # from here on
        opened = time.monotonic()
        idle = await engineio_session(gateway)
        left = time.monotonic()  # before the server can have started its clock
        await leaving.send("41")  # leaves its namespace and keeps the socket
        # Both ended by the server although they would answer pings (the first comes after 25 s).
        assert await closed_at(idle, timeout + 10) - opened >= timeout
        assert await closed_at(leaving, timeout + 10) - left >= timeout
        # The client, connected all along, outlived the timeout and is served.
        assert await client.call("analytics:requestLiveMetrics", timeout=10) == {"ok": True}
        await until(lambda: len(gateway.gateway.registry) == 1)  # the client's; the leaver's $disconnect ran
        await client.disconnect()
    finally:
        gateway.stop()


async def test_a_session_the_gateway_ends_while_its_connect_runs_is_not_left_registered():
    """The connect timeout (or Engine.IO's ping timeout) ends a session while its `$connect` still runs: the
    gateway must not then register a connection nobody holds (it would stay forever, its place of the cap
    taken); API Gateway's `$disconnect` follows. (A client's own close waits: Engine.IO reads the socket's next
    message only once the CONNECT has been handled.)"""
    # 4 s: the CONNECT, sent at once, is surely handled before; `$connect` then lasts until the timeout ends it.
    gateway = RunningGateway(SOCKETIO_CONNECT_TIMEOUT_SECONDS="4", METRICS_INTERVAL_SECONDS="30").start()
    endpoint = gateway.gateway.socketio
    originals = dict(endpoint.routes)
    disconnected: list[str] = []

    def slow_connect(event: dict[str, Any], context: Any) -> Any:
        result = originals["$connect"](event, context)
        deadline = time.monotonic() + 10
        while endpoint.handshakes.sessions and time.monotonic() < deadline:  # until the timeout ends it
            time.sleep(0.05)
        return result

    def recorded_disconnect(event: dict[str, Any], context: Any) -> Any:
        disconnected.append(event["requestContext"]["connectionId"])
        return originals["$disconnect"](event, context)

    try:
        with replaced_routes(endpoint, {"$connect": slow_connect, "$disconnect": recorded_disconnect}):
            ws = await engineio_session(gateway)
            await ws.send("40")
            await closed_at(ws, 10)
            await until(lambda: len(disconnected) == 1)
            await asyncio.sleep(0.3)
            assert len(gateway.gateway.registry) == 0 and endpoint.cap.count("127.0.0.1") == 0
    finally:
        gateway.stop()


async def test_a_local_tool_holding_connections_beyond_the_cap_does_not_lock_the_developer_out():
    """Every process on this machine is 127.0.0.1: a load test or a leak holding the cap's worth of sockets must
    leave the developer's own browser its way in (what bounds them all is MAX_CONNECTIONS)."""
    gateway = RunningGateway(MAX_CONNECTIONS_PER_ADDRESS="2", METRICS_INTERVAL_SECONDS="30").start()
    stage_url = gateway.url.replace("http", "ws") + "/prod"
    try:
        held = [await websockets.connect(stage_url) for _ in range(5)]
        idle = [await engineio_session(gateway) for _ in range(5)]  # beyond twice the cap, never connected
        developer = await socketio_client(gateway.url, headers={})
        assert await developer.call("analytics:requestLiveMetrics", timeout=10) == {"ok": True}
        mine = await websockets.connect(stage_url)
        await wait_for_open(gateway, 7, "127.0.0.1")  # counted all the same
        for ws in (*held, *idle, mine):
            await ws.close()
        await developer.disconnect()
        await wait_for_open(gateway, 0, "127.0.0.1")
    finally:
        gateway.stop()
