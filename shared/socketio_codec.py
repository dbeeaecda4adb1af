"""Socket.IO v5 over Engine.IO v4 (websocket transport): the packets the deployed API reads and writes.

One WebSocket text frame carries one Engine.IO packet; an Engine.IO MESSAGE (`4`) carries one Socket.IO packet:
`<type>[<attachments>-][<namespace>,][<ack id>][<JSON>]`. This is a small codec of our own rather than
python-socketio's `Packet` classes, which cannot be imported without the whole server package (tests hold
this codec to their encoders).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from shared.errors import InvalidInput

# Engine.IO packet types.
EIO_OPEN, EIO_CLOSE, EIO_PING, EIO_PONG, EIO_MESSAGE, EIO_UPGRADE, EIO_NOOP = "0123456"
# Socket.IO packet types.
CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK = range(7)

ROOT_NAMESPACE = "/"
NOOP_FRAME = EIO_NOOP  # the one answer that is valid Engine.IO and means nothing to the client
PING_FRAME = EIO_PING
MAX_ACK_ID = 2**53  # JavaScript's safe integers: the client's ack ids never exceed them
MAX_ATTACHMENT_DIGITS = 10  # python-socketio's own bound on the attachment count


@dataclass(frozen=True)
class Packet:
    """A decoded client frame: an Engine.IO packet type and, for MESSAGE, the Socket.IO packet inside."""

    engine_type: str
    socket_type: int | None = None
    namespace: str = ROOT_NAMESPACE
    ack_id: int | None = None
    data: Any = field(default=None)
    attachments: int = 0


def decode(frame: str | bytes | None) -> Packet:
    """Parse one client frame; InvalidInput when it is not an Engine.IO packet we can read."""
    if isinstance(frame, bytes):
        try:
            frame = frame.decode()
        except UnicodeDecodeError:
            raise InvalidInput("Malformed packet: not UTF-8 text") from None
    if not frame:
        raise InvalidInput("Malformed packet: empty frame")
    engine_type, rest = frame[0], frame[1:]
    if engine_type not in "0123456":
        raise InvalidInput("Malformed packet: not an Engine.IO packet")
    if engine_type != EIO_MESSAGE:
        return Packet(engine_type)
    return _decode_socket_packet(rest)


def _is_digits(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes '²' and '٣', which int() refuses or reads as numbers."""
    return text.isascii() and text.isdigit()


def _decode_socket_packet(text: str) -> Packet:
    if not text or text[0] not in "0123456":
        raise InvalidInput("Malformed packet: unknown Socket.IO packet type")
    socket_type, position = int(text[0]), 1
    attachments = 0
    if socket_type in (BINARY_EVENT, BINARY_ACK):
        dash = text.find("-", position)
        count = text[position:dash] if dash > 0 else ""
        if not _is_digits(count) or len(count) > MAX_ATTACHMENT_DIGITS:
            raise InvalidInput("Malformed packet: bad attachment count")
        attachments, position = int(count), dash + 1
    namespace = ROOT_NAMESPACE
    if text.startswith("/", position):
        comma = text.find(",", position)
        end = len(text) if comma < 0 else comma
        namespace, position = text[position:end], (end if comma < 0 else end + 1)
    digits = position
    while digits < len(text) and _is_digits(text[digits]):
        digits += 1
    if digits - position > len(str(MAX_ACK_ID)):  # before int(): Python refuses over 4300 digits with ValueError
        raise InvalidInput("Malformed packet: ack id out of range")
    ack_id = int(text[position:digits]) if digits > position else None
    if ack_id is not None and ack_id > MAX_ACK_ID:
        raise InvalidInput("Malformed packet: ack id out of range")
    payload = text[digits:]
    data: Any = None
    if payload:
        try:
            data = json.loads(payload)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
            raise InvalidInput("Malformed packet: payload is not JSON") from None
    return Packet(EIO_MESSAGE, socket_type, namespace, ack_id, data, attachments)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _socket_frame(socket_type: int, data: Any, namespace: str = ROOT_NAMESPACE, ack_id: int | None = None) -> str:
    prefix = "" if namespace == ROOT_NAMESPACE else f"{namespace},"
    return f"{EIO_MESSAGE}{socket_type}{prefix}{'' if ack_id is None else ack_id}{_json(data)}"


def open_packet(sid: str, ping_interval_ms: int, ping_timeout_ms: int, max_payload: int) -> str:
    """Engine.IO's handshake: the server speaks first, and the client waits for nothing else."""
    handshake = {
        "sid": sid,
        "upgrades": [],
        "pingInterval": ping_interval_ms,
        "pingTimeout": ping_timeout_ms,
        "maxPayload": max_payload,
    }
    return EIO_OPEN + _json(handshake)


def connected(sid: str, pid: str | None = None, namespace: str = ROOT_NAMESPACE) -> str:
    """The namespace CONNECT's answer; `pid` is the private session id of connection state recovery."""
    return _socket_frame(CONNECT, {"sid": sid} if pid is None else {"sid": sid, "pid": pid}, namespace)


def connect_error(message: str, namespace: str = ROOT_NAMESPACE) -> str:
    return _socket_frame(CONNECT_ERROR, {"message": message}, namespace)


def event(name: str, data: Any, offset: str | None = None) -> str:
    """An event; `offset`, a last argument the stock client keeps for its recovery, when given."""
    return _socket_frame(EVENT, [name, data] if offset is None else [name, data, offset])


def ack(ack_id: int, payload: Any, namespace: str = ROOT_NAMESPACE) -> str:
    return _socket_frame(ACK, [payload], namespace, ack_id)
