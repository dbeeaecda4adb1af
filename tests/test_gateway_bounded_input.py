"""Bounded input at the Socket.IO front: binary attachments refused before they are buffered, unreadable
packets one WARNING line each (no traceback at ERROR), the connection usable after them."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator

import pytest
import socketio
import websockets

from local_gateway.screening import MAX_ATTACHMENTS
from tests.support import RunningGateway, engineio_session

REFUSED = "Socket.IO packet refused"


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    running = RunningGateway(METRICS_INTERVAL_SECONDS="30").start()
    yield running
    running.stop()


async def engineio_socket(gateway: RunningGateway) -> websockets.ClientConnection:
    """A raw Engine.IO WebSocket, connected to Socket.IO's main namespace."""
    ws = await engineio_session(gateway)
    await ws.send("40")
    assert (await asyncio.wait_for(ws.recv(), 5)).startswith("40{")
    return ws


async def next_text(ws: websockets.ClientConnection, prefix: str, timeout: float = 10) -> str:
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.recv()
            if isinstance(message, str) and message.startswith(prefix):
                return message


async def test_a_socket_declaring_100000_attachments_is_disconnected_before_any_is_buffered(gateway, caplog):
    caplog.set_level(logging.WARNING)
    ws = await engineio_socket(gateway)
    open_before = len(gateway.gateway.registry)
    await ws.send("451" + '00000-["analytics:requestLiveMetrics",{"_placeholder":true,"num":0}]')
    assert await next_text(ws, "1", timeout=5) == "1"  # Engine.IO's close packet: the server hung up
    for _ in range(50):  # the attachments it announced: dropped, never buffered nor logged one by one
        await ws.send(b"\x00" * 1000)
    await ws.close()
    await asyncio.sleep(0.2)
    assert len(gateway.gateway.registry) == open_before - 1  # $disconnect ran: the connection is gone
    refusals = [r.getMessage() for r in caplog.records if REFUSED in r.getMessage()]
    assert refusals == [f"{REFUSED}: 100000 binary attachments declared, at most {MAX_ATTACHMENTS}"]
    # A binary argument within the bound still reaches the front, which tells the client what is wrong.
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(gateway.url, transports=["websocket"], wait_timeout=10)
    answer = await client.call("analytics:joinDashboard", b"\x00\x01", timeout=10)
    assert answer == {"ok": False, "error": "Binary or non-JSON arguments are not supported"}
    assert await client.call("analytics:joinDashboard", "d", timeout=10) == {"ok": True}
    await client.disconnect()


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        ("42[", "unreadable (JSONDecodeError)"),
        ("42{}", "an event must be a JSON array starting with its name"),
        ('42{"0": "x"}', "an event must be a JSON array starting with its name"),
        ("42[]", "an event must be a JSON array starting with its name"),
        ("42" + "[" * 50_000 + "]" * 50_000, "nested more than 64 levels"),
        ("42[[[[1]]]]", "an event must be a JSON array starting with its name"),
        ("4" + "9" * 20 + "-[]", "unreadable (ValueError)"),
        ("47[]", "packet type 7 is not one a client sends"),
    ],
)
async def test_malformed_packets_log_one_warning_line_and_the_connection_stays_usable(gateway, caplog, packet, reason):
    caplog.set_level(logging.DEBUG)
    ws = await engineio_socket(gateway)
    try:
        await ws.send(packet)
        await ws.send('421["analytics:requestLiveMetrics"]')  # answered: the connection is still usable
        ack = await next_text(ws, "431")
        assert json.loads(ack[3:]) == [{"ok": True}]
    finally:
        await ws.close()
    await asyncio.sleep(0.2)
    assert [r.getMessage() for r in caplog.records if REFUSED in r.getMessage()] == [f"{REFUSED}: {reason}"]
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert not any(r.exc_info for r in caplog.records)
