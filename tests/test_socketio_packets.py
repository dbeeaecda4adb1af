"""The `/socket.io/` endpoint's packets: each client packet parsed once (the screening's parse handed on to
python-socketio), a function's route response sent as the ack's argument without being decoded and encoded again."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import socketio
from socketio import packet as sio_packet

from local_gateway.apigateway.socketio_packets import EncodedJSON, GatewayPacket, ScreenedText, route_ack
from tests.support.servers import RunningGateway

PACKETS = [
    '2["analytics:joinDashboard","sales"]',
    '212["a",{"b":[1,2]}]',
    '2/admin,7["x"]',
    '51-["f",{"_placeholder":true,"num":0}]',
    "0",
    "1",
]


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    running = RunningGateway(METRICS_INTERVAL_SECONDS="30").start()
    yield running
    running.stop()


def fields(packet: sio_packet.Packet) -> tuple[Any, ...]:
    return packet.packet_type, packet.namespace, packet.id, packet.data, packet.attachment_count


@pytest.mark.parametrize("text", PACKETS)
def test_gateway_packet_takes_the_screened_parse_as_its_own(text, monkeypatch):
    stock = sio_packet.Packet(encoded_packet=text)
    screened = ScreenedText.of(text, GatewayPacket(encoded_packet=text))

    def no_second_parse(self: Any, encoded: Any) -> None:
        raise AssertionError(f"parsed again: {encoded!r}")

    monkeypatch.setattr(sio_packet.Packet, "decode", no_second_parse)
    assert fields(GatewayPacket(encoded_packet=screened)) == fields(stock)
    assert screened == text


@pytest.mark.parametrize(("namespace", "ack_id"), [(None, 3), ("/", 0), ("/admin", 42)])
def test_gateway_packet_sends_encoded_json_as_the_acks_argument(namespace, ack_id):
    body = '{"ok": true}'
    sent = GatewayPacket(sio_packet.ACK, data=[EncodedJSON(body)], namespace=namespace, id=ack_id).encode()
    stock = sio_packet.Packet(sio_packet.ACK, data=[{"ok": True}], namespace=namespace, id=ack_id).encode()
    assert sent == stock.replace('{"ok":true}', body)
    assert fields(sio_packet.Packet(encoded_packet=sent))[:4] == fields(sio_packet.Packet(encoded_packet=stock))[:4]


@pytest.mark.parametrize(
    ("body", "ack"),
    [
        ('{"ok":true}', '{"ok":true}'),
        ('{"ok": false, "error": "Invalid dashboardId"}', '{"ok": false, "error": "Invalid dashboardId"}'),
        ('{"ok":true,"session":"s1"}', '{"ok":true,"session":"s1"}'),
        ('{"ok":"yes"}', None),
        ("[true]", None),
        ("Internal server error", None),
        ("", None),
        (None, None),
    ],
)
def test_route_ack_is_the_body_as_written_when_it_is_an_ack(body, ack):
    answer = route_ack(body)
    assert answer == ack and (answer is None or isinstance(answer, EncodedJSON))


def test_gateway_packet_encodes_anything_else_as_the_stock_packet():
    for packet_type, data in [
        (sio_packet.ACK, [{"ok": False}]),
        (sio_packet.ACK, ["x", "y"]),
        (sio_packet.EVENT, ["e", 1]),
    ]:
        ours = GatewayPacket(packet_type, data=data, id=1).encode()
        assert ours == sio_packet.Packet(packet_type, data=data, id=1).encode()


async def test_gateway_parses_each_event_once_and_acks_with_the_functions_answer(gateway, monkeypatch):
    parsed: list[str] = []
    stock_decode = sio_packet.Packet.decode

    def counted(self: Any, encoded: Any) -> Any:
        if threading.current_thread() is gateway._thread and isinstance(encoded, str) and encoded.startswith("2"):
            parsed.append(str(encoded))
        return stock_decode(self, encoded)

    monkeypatch.setattr(sio_packet.Packet, "decode", counted)
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(gateway.url, transports=["websocket"], wait_timeout=10)
    try:
        acks = [await client.call("analytics:joinDashboard", name, timeout=10) for name in ("a", "b", "c")]
        refused = await client.call("analytics:joinDashboard", "not a valid id", timeout=10)
    finally:
        await client.disconnect()
    assert acks == [{"ok": True}] * 3
    assert refused["ok"] is False and refused["error"]
    assert len(parsed) == 4  # one parse an event: the screening's


async def test_gateway_still_reads_a_binary_event_and_refuses_it(gateway):
    client = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    client.on("analytics:error", errors.append)
    await client.connect(gateway.url, transports=["websocket"], wait_timeout=10)
    try:
        ack = await client.call("analytics:joinDashboard", b"\x00\x01", timeout=10)
        after = await client.call("analytics:joinDashboard", "sales", timeout=10)
    finally:
        await client.disconnect()
    assert ack == {"ok": False, "error": "Binary or non-JSON arguments are not supported"}
    assert errors and errors[0]["message"] == ack["error"]
    assert after == {"ok": True}  # the connection stays usable
