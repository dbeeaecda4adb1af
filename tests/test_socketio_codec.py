"""Our Socket.IO codec held to python-socketio's and python-engineio's own packet classes, both ways."""

from __future__ import annotations

import json
from typing import Any

import engineio.packet as eio
import pytest
import socketio.packet as sio
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import socketio_codec as codec
from shared.errors import InvalidInput

SID = "PmTCqdEaoAMCKUw="

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=15,
)
event_names = st.text(min_size=1, max_size=40)
ack_ids = st.integers(min_value=0, max_value=codec.MAX_ACK_ID)


def frame_of(packet: sio.Packet) -> str:
    """What a python-socketio client sends for one Socket.IO packet, wrapped in its Engine.IO MESSAGE."""
    encoded = packet.encode()
    assert isinstance(encoded, str)  # no binary attachments
    return eio.Packet(eio.MESSAGE, encoded).encode()


def theirs(frame: str) -> sio.Packet:
    """Decode one of our server frames the way python-socketio's client does."""
    engine = eio.Packet(encoded_packet=frame)
    assert engine.packet_type == eio.MESSAGE and isinstance(engine.data, str)
    return sio.Packet(encoded_packet=engine.data)


def assert_same(ours: codec.Packet, packet: sio.Packet) -> None:
    assert ours.engine_type == codec.EIO_MESSAGE
    assert ours.socket_type == packet.packet_type
    assert ours.namespace == (packet.namespace or "/")
    assert ours.ack_id == packet.id
    assert ours.data == packet.data
    assert ours.attachments == 0


# -- client packets: encoded by python-socketio, decoded by ours ------------------------------
CLIENT_PACKETS = {
    "connect": sio.Packet(sio.CONNECT),
    "connect-auth": sio.Packet(sio.CONNECT, data={"token": "abc.def.ghi", "userId": "alice"}),
    "connect-empty-auth": sio.Packet(sio.CONNECT, data={}),
    "connect-admin": sio.Packet(sio.CONNECT, namespace="/admin"),
    "connect-admin-auth": sio.Packet(sio.CONNECT, data={"token": "t"}, namespace="/admin"),
    "event": sio.Packet(sio.EVENT, data=["analytics:subscribeLiveMetrics"]),
    "event-data": sio.Packet(sio.EVENT, data=["analytics:joinDashboard", "sales"]),
    "event-ack": sio.Packet(sio.EVENT, data=["analytics:joinDashboard", "sales"], id=0),
    "event-ack-7": sio.Packet(sio.EVENT, data=["analytics:requestLiveMetrics"], id=7),
    "event-ack-large": sio.Packet(sio.EVENT, data=["x", 1], id=2**53),
    "event-ack-32bit": sio.Packet(sio.EVENT, data=["x"], id=2**32 + 5),
    "event-admin": sio.Packet(sio.EVENT, data=["x", {"a": 1}], namespace="/admin", id=12),
    "event-unicode": sio.Packet(sio.EVENT, data=["événement", "ünïcødé ✓ 漢字 🚀", {"clé": "\u0000\u2028"}]),
    "event-nested": sio.Packet(sio.EVENT, data=["x", {"a": [1, [2, [3, {"b": [None, True, 1.5]}]]]}]),
    "ack": sio.Packet(sio.ACK, data=[{"ok": True}], id=3),
    "ack-empty": sio.Packet(sio.ACK, data=[], id=99),
    "connect-error": sio.Packet(sio.CONNECT_ERROR, data={"message": "nope"}),
    "disconnect": sio.Packet(sio.DISCONNECT),
    "disconnect-admin": sio.Packet(sio.DISCONNECT, namespace="/admin"),
}


@pytest.mark.parametrize("name", sorted(CLIENT_PACKETS))
def test_ours_decodes_what_python_socketio_encodes(name):
    packet = CLIENT_PACKETS[name]
    frame = frame_of(packet)
    assert_same(codec.decode(frame), packet)
    assert_same(codec.decode(frame.encode()), packet)  # the same frame as bytes


@settings(max_examples=200, deadline=None)
@given(name=event_names, args=st.lists(json_values, max_size=3), ack_id=st.none() | ack_ids)
def test_any_event_round_trips_from_python_socketio(name, args, ack_id):
    packet = sio.Packet(sio.EVENT, data=[name, *args], id=ack_id)
    assert_same(codec.decode(frame_of(packet)), packet)


@settings(max_examples=100, deadline=None)
@given(auth=st.none() | st.dictionaries(st.text(max_size=10), json_values, max_size=4))
def test_any_connect_auth_round_trips_from_python_socketio(auth):
    packet = sio.Packet(sio.CONNECT, data=auth)
    assert_same(codec.decode(frame_of(packet)), packet)


@pytest.mark.parametrize("engine_type", [eio.OPEN, eio.CLOSE, eio.PING, eio.PONG, eio.UPGRADE, eio.NOOP])
def test_engine_io_packets_other_than_message_carry_no_socket_packet(engine_type):
    for data in (None, "probe"):
        decoded = codec.decode(eio.Packet(engine_type, data).encode())
        assert decoded == codec.Packet(str(engine_type))


# -- server packets: encoded by ours, decoded by python-engineio then python-socketio -----------
@settings(max_examples=200, deadline=None)
@given(name=event_names, data=json_values)
def test_events_decode_with_python_socketio(name, data):
    packet = theirs(codec.event(name, data))
    assert (packet.packet_type, packet.namespace, packet.id) == (sio.EVENT, None, None)
    assert packet.data == [name, data]


@settings(max_examples=200, deadline=None)
@given(ack_id=ack_ids, payload=json_values)
def test_acks_decode_with_python_socketio(ack_id, payload):
    packet = theirs(codec.ack(ack_id, payload))
    assert (packet.packet_type, packet.namespace, packet.id, packet.data) == (sio.ACK, None, ack_id, [payload])


def test_acks_in_a_namespace_decode_with_python_socketio():
    packet = theirs(codec.ack(5, {"ok": True}, "/admin"))
    assert (packet.packet_type, packet.namespace, packet.id, packet.data) == (sio.ACK, "/admin", 5, [{"ok": True}])


@pytest.mark.parametrize("namespace", ["/", "/admin"])
def test_connected_decodes_with_python_socketio(namespace):
    packet = theirs(codec.connected(SID, namespace=namespace))
    assert packet.packet_type == sio.CONNECT
    assert packet.namespace == (None if namespace == "/" else namespace)
    assert packet.data == {"sid": SID}


@pytest.mark.parametrize("namespace", ["/", "/admin"])
@pytest.mark.parametrize("message", ["Unauthorized", "Invalid namespace", "ünïcødé ✓"])
def test_connect_error_decodes_with_python_socketio(namespace, message):
    packet = theirs(codec.connect_error(message, namespace))
    assert packet.packet_type == sio.CONNECT_ERROR
    assert packet.namespace == (None if namespace == "/" else namespace)
    assert packet.data == {"message": message}


def test_the_open_packet_is_engine_io_v4s_handshake():
    frame = codec.open_packet(SID, ping_interval_ms=300_000, ping_timeout_ms=60_000, max_payload=32 * 1024)
    packet = eio.Packet(encoded_packet=frame)
    assert packet.packet_type == eio.OPEN
    assert packet.data == {
        "sid": SID,
        "upgrades": [],
        "pingInterval": 300_000,
        "pingTimeout": 60_000,
        "maxPayload": 32 * 1024,
    }
    assert isinstance(packet.data["upgrades"], list)
    for field in ("pingInterval", "pingTimeout", "maxPayload"):
        assert type(packet.data[field]) is int
    assert json.loads(frame[1:]) == packet.data


def test_our_answers_are_what_python_socketio_itself_would_send():
    def their_frame(packet_type: int, data: Any, namespace: str | None = None, ack_id: int | None = None) -> str:
        return frame_of(sio.Packet(packet_type, data=data, namespace=namespace, id=ack_id))

    assert codec.connected(SID) == their_frame(sio.CONNECT, {"sid": SID})
    # Connection state recovery: the private session id beside the sid, the offset as an update's last argument.
    assert codec.connected(SID, "p" * 32) == their_frame(sio.CONNECT, {"sid": SID, "pid": "p" * 32})
    assert codec.event("analytics:dashboardUpdate", {"a": 1}, "0000000000001-1-d") == their_frame(
        sio.EVENT, ["analytics:dashboardUpdate", {"a": 1}, "0000000000001-1-d"]
    )
    assert codec.connect_error("Unauthorized") == their_frame(sio.CONNECT_ERROR, {"message": "Unauthorized"})
    assert codec.connect_error("Invalid namespace", "/admin") == their_frame(
        sio.CONNECT_ERROR, {"message": "Invalid namespace"}, "/admin"
    )
    assert codec.event("analytics:liveMetrics", [{"name": "CPU", "value": 1.5}]) == their_frame(
        sio.EVENT, ["analytics:liveMetrics", [{"name": "CPU", "value": 1.5}]]
    )
    assert codec.ack(12, {"ok": False, "error": "nope"}) == their_frame(
        sio.ACK, [{"ok": False, "error": "nope"}], ack_id=12
    )
    assert eio.Packet(eio.NOOP).encode() == codec.NOOP_FRAME
    assert eio.Packet(eio.PING).encode() == codec.PING_FRAME


def test_our_encoders_refuse_what_json_cannot_carry():
    for value in (float("nan"), float("inf"), [float("-inf")]):
        with pytest.raises(ValueError):
            codec.event("x", value)


# -- what ours refuses ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "frame",
    [
        "",
        b"",
        None,
        "7",
        "x",
        "{}",
        "4",
        "47",
        "4x",
        "42[",
        "42{",
        "42]",
        "45-",
        "45x-[]",
        "46-[]",
        "42" + "9" * 17 + '["x"]',  # beyond JavaScript's safe integers
        "42" + "1" * 5000 + '["x"]',  # beyond Python's int-from-string limit
        "4²",  # a digit to str.isdigit, not to int()
        '42²["x"]',
        '45²-["x"]',
        "4\u0663",  # ARABIC-INDIC DIGIT THREE
        "42" + "[" * 5000 + "]" * 5000,  # nested past the JSON parser's recursion limit
        "42" + "[" * 20000,
        b"42\xff\xfe",
    ],
)
def test_malformed_frames_are_invalid_input(frame):
    with pytest.raises(InvalidInput) as raised:
        codec.decode(frame)
    assert raised.value.message.startswith("Malformed packet")


def test_ack_ids_up_to_javascripts_safe_integers_are_read():
    assert codec.decode(f'42{codec.MAX_ACK_ID}["x"]').ack_id == codec.MAX_ACK_ID
    assert codec.decode('420["x"]').ack_id == 0
    assert codec.decode('4200042["x"]').ack_id == 42


def test_binary_packets_keep_their_attachment_count():
    decoded = codec.decode('451-["x",{"_placeholder":true,"num":0}]')
    assert (decoded.socket_type, decoded.attachments) == (codec.BINARY_EVENT, 1)
    assert decoded.data == ["x", {"_placeholder": True, "num": 0}]
