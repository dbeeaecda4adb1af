"""What the `/socket.io/` endpoint adds to python-socketio for Socket.IO's connection state recovery.

python-socketio has no hook for `pid` (its issue 1258): the namespace CONNECT's answer is built inside
`AsyncServer._handle_connect`. Its one documented extension point on the way out is `serializer`, a `Packet`
subclass with its own `encode()`: the gateway's (socketio_packets.py) adds `pid` to the CONNECT answer of a session
that has one. No private code is copied or called. The session itself lives in DynamoDB, kept by the functions
(`resume`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from socketio import packet as sio_packet

from local_gateway.apigateway.socketio_packets import GatewayPacket

RECOVERY_FIELDS = frozenset({"pid", "offset"})  # the stock client's own `auth` fields when it reconnects


def answering_packets(pids: dict[str, str], answered: Callable[[str], None]) -> type[sio_packet.Packet]:
    """A Packet class whose CONNECT answer to `sid` carries `pids[sid]` (taken once); `answered(sid)` is told as
    that answer goes out, so that what was held for the client until then can follow it."""

    class AnsweringPacket(GatewayPacket):
        def encode(self) -> Any:
            data: Any = getattr(self, "data", None)
            if self.packet_type == sio_packet.CONNECT and isinstance(data, dict):
                sid = str(data.get("sid"))
                pid = pids.pop(sid, None)
                if pid is not None:
                    self.data = {**data, "pid": pid}
                answered(sid)
            return super().encode()

    return AnsweringPacket


def takes_offsets(query_string: str) -> bool:
    """Whether the client keeps offsets, told by its Engine.IO handshake: engine.io-client (the stock JavaScript
    client, which recovers) asks `EIO=4&transport=...`; python-engineio asks `transport=...&EIO=4`, and
    python-socketio passes every argument of an event to its handler, so an offset would break a handler
    written `def on_update(update)`."""
    names = [name for name, _ in parse_qsl(query_string)]
    return "EIO" in names and "transport" in names and names.index("EIO") < names.index("transport")
