"""Bounded input at the Socket.IO endpoint: binary attachments refused before they are buffered, unreadable
packets (Socket.IO's and Engine.IO's) one WARNING line each (no traceback at ERROR), the connection usable
after them."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
from collections.abc import Iterator

import pytest
import socketio
import websockets

from local_gateway.apigateway.screening import MAX_ATTACHMENTS
from tests.support.servers import RunningGateway, engineio_session, http_status

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
    # A binary argument within the bound still reaches the endpoint, which tells the client what is wrong.
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


ENGINEIO_REFUSED = "Engine.IO packet refused"


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        ("7", "packet type '7' is not one a client sends"),
        ("8hello", "packet type '8' is not one a client sends"),
        ("9", "packet type '9' is not one a client sends"),
        ("x", "packet type 'x' is not one a client sends"),
        ("\n2", "packet type '\\\\n' is not one a client sends"),
        ("0{}", "packet type '0' is not one a client sends"),
        ("", "an empty packet"),
        ("babc", "a binary packet that is not base64"),
    ],
)
async def test_engineio_packets_it_cannot_take_log_one_warning_line_each(gateway, caplog, packet, reason):
    caplog.set_level(logging.DEBUG)
    ws = await engineio_socket(gateway)
    try:
        await ws.send(packet)
        await ws.send('421["analytics:requestLiveMetrics"]')
        assert json.loads((await next_text(ws, "431"))[3:]) == [{"ok": True}]
    finally:
        await ws.close()
    await asyncio.sleep(0.2)
    assert [r.getMessage() for r in caplog.records if ENGINEIO_REFUSED in r.getMessage()] == [
        f"{ENGINEIO_REFUSED}: {reason}"
    ]
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert not any(r.exc_info for r in caplog.records)


def polling(gateway: RunningGateway, sid: str = "", body: bytes | None = None) -> tuple[int, str]:
    query = f"EIO=4&transport=polling{'&sid=' + sid if sid else ''}"
    request = urllib.request.Request(f"{gateway.url}/socket.io/?{query}", data=body)
    status, _, answer = http_status(request, timeout=10)
    return status, answer.decode("utf-8", "replace")


async def test_polling_posts_keep_the_packets_engineio_can_take_and_tell_of_the_others(gateway, caplog):
    caplog.set_level(logging.DEBUG)
    _, opened = await asyncio.to_thread(polling, gateway)
    sid = json.loads(opened[1:])["sid"]
    assert (await asyncio.to_thread(polling, gateway, sid, b"40"))[0] == 200
    assert (await asyncio.to_thread(polling, gateway, sid))[1].startswith("40{")
    event = b'421["analytics:requestLiveMetrics"]'
    assert await asyncio.to_thread(polling, gateway, sid, b"7\x1e" + event + b"\x1e9") == (200, "OK")
    answered = ""
    while "431" not in answered:
        answered += (await asyncio.to_thread(polling, gateway, sid))[1]
    assert '431[{"ok":true}]' in answered
    assert (await asyncio.to_thread(polling, gateway, sid, b"4\xff\xfe"))[0] == 400
    assert (await asyncio.to_thread(polling, gateway, sid, b"\x1e".join([b"6"] * 17)))[0] == 200
    await asyncio.sleep(0.2)
    assert [r.getMessage() for r in caplog.records if "Engine.IO packet" in r.getMessage()] == [
        f"{ENGINEIO_REFUSED}: packet type '7' is not one a client sends",
        f"{ENGINEIO_REFUSED}: packet type '9' is not one a client sends",
        f"{ENGINEIO_REFUSED}: a polling POST that is not UTF-8",
        "Engine.IO packets refused: 17 in one polling POST, at most 16",
    ]
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
