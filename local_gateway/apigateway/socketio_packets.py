"""The Socket.IO packets of the `/socket.io/` endpoint, read once and written once.

python-socketio builds every packet through its `serializer`, a `Packet` subclass (its documented extension point,
as `socketio.msgpack_packet.MsgPackPacket` is): this one reads and writes the same text as the stock class, with
two savings. A packet the gateway has already parsed to screen it (screening.py) reaches python-socketio as
`ScreenedText`, the text with that parse attached, and is not parsed a second time. An acknowledgement whose
argument is `EncodedJSON` (a function's route response, already checked to be one) is written with that text as
its argument instead of decoding and encoding it again. No private code is copied or called.
"""

from __future__ import annotations

import json
from typing import Any

from socketio import packet as sio_packet


class ScreenedText(str):
    """A packet's text with the Packet the screening parsed from it."""

    parsed: sio_packet.Packet

    @classmethod
    def of(cls, text: str, parsed: sio_packet.Packet) -> ScreenedText:
        screened = cls(text)
        screened.parsed = parsed
        return screened


class EncodedJSON(str):
    """A JSON text sent as it is, as the one argument of an acknowledgement."""


class GatewayPacket(sio_packet.Packet):  # type: ignore[misc]
    # Nothing the gateway sends is binary (frames are JSON): no search of every packet's data for bytes. A client's
    # binary packets are still read (their type is in their text) and refused by the endpoint.
    uses_binary_events = False

    def decode(self, encoded_packet: Any) -> int:
        if not isinstance(encoded_packet, ScreenedText):
            return int(super().decode(encoded_packet) or 0)
        parsed = encoded_packet.parsed
        self.packet_type, self.namespace, self.id, self.data = (
            parsed.packet_type,
            parsed.namespace,
            parsed.id,
            parsed.data,
        )
        return int(parsed.attachment_count)

    def encode(self) -> Any:
        data = self.data
        if (
            self.packet_type == sio_packet.ACK
            and isinstance(data, list)
            and len(data) == 1
            and isinstance(data[0], EncodedJSON)
        ):
            # The stock encoding of what comes before the argument (type, namespace, id), then the argument.
            head = sio_packet.Packet(sio_packet.ACK, namespace=self.namespace, id=self.id).encode()
            return f"{head}[{data[0]}]"
        return super().encode()


def route_ack(body: Any) -> EncodedJSON | None:
    """A route response's body as the ack's argument, when it is an ack (`{"ok": bool, ...}`); else None."""
    try:
        ack = json.loads(body) if isinstance(body, str) else None
    except ValueError:
        return None
    return EncodedJSON(body) if isinstance(ack, dict) and isinstance(ack.get("ok"), bool) else None
