"""One `/socket.io/` connection as the Management API reaches it: JSON server frames become Socket.IO emits."""

from __future__ import annotations

from collections.abc import Hashable

import socketio
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from local_gateway.apigateway.registry import Endpoint
from shared.codec import decode_server_frame

# Event names Socket.IO clients keep for themselves: a server frame naming one makes the client drop ("parse
# error"), so the Management API refuses such a frame for a Socket.IO connection.
RESERVED_EVENTS = {"connect", "disconnect", "connect_error", "disconnecting", "newListener", "removeListener"}
NAMESPACE = "/"


class SocketIOEndpoint:
    """A connection of this endpoint: JSON server frames become Socket.IO emits. A dashboard update's offset becomes
    its last argument for a client that keeps offsets (`offsets`), and is left out for one whose handlers would
    get an argument they do not take."""

    def __init__(self, server: socketio.AsyncServer, sid: str, offsets: bool = False) -> None:
        self.server = server
        self.sid = sid
        self.offsets = offsets
        # Frames posted before the CONNECT answer went out (a recovery's replay): held, then sent after it, in
        # order. socket.io-client buffers events that precede its CONNECT answer, and keeps that buffer across a
        # reconnection: a replay buffered so, then cut short, would be emitted twice.
        self.held: list[bytes] | None = [] if offsets else None

    async def send(self, frame: bytes) -> None:
        if self.held is not None:
            self.held.append(frame)
            return
        await self.emit_frame(self.server, [self.sid], frame, self.offsets)

    def fan_out_group(self) -> Hashable | None:
        """Socket.IO connections of one server take a frame in one emit (per kind of client); held ones wait."""
        return None if self.held is not None else (id(self.server), self.offsets)

    async def send_to_group(self, members: list[Endpoint], frame: bytes) -> None:
        sids = [member.sid for member in members if isinstance(member, SocketIOEndpoint)]
        await self.emit_frame(self.server, sids, frame, self.offsets)

    async def release(self) -> None:
        """The CONNECT answer has gone out: what was held follows it."""
        held, self.held = self.held or [], None
        for frame in held:
            await self.emit_frame(self.server, [self.sid], frame, self.offsets)

    async def close(self) -> None:
        await self.server.disconnect(self.sid)

    @staticmethod
    async def emit_frame(server: socketio.AsyncServer, sids: list[str], frame: bytes, offsets: bool) -> None:
        """What `server.emit(event, data, to=sids)` does (the packet encoded once, written to each socket), without
        its task per socket: the frame is decoded and checked once, and each socket's queue takes the packet in
        turn."""
        packets = event_packets(server, frame, offsets)
        manager, engine = server.manager, server.eio
        for sid in sids:
            eio_sid = manager.eio_sid_from_sid(sid, NAMESPACE)
            if eio_sid is None:  # left meanwhile: the frame is lost, as an emit to it would be
                continue
            for packet in packets:
                try:
                    await engine.send_packet(eio_sid, packet)
                except eio_exceptions.EngineIOError:  # closed meanwhile: that socket alone loses the frame
                    break


def event_packets(server: socketio.AsyncServer, frame: bytes, offsets: bool) -> list[eio_packet.Packet]:
    """A server frame as the Engine.IO packets of its Socket.IO EVENT, built as `server.emit` builds them; ValueError
    for a frame the Management API would refuse a Socket.IO connection."""
    decoded = decode_server_frame(frame)
    if decoded.event in RESERVED_EVENTS:
        raise ValueError(f"{decoded.event} is reserved by Socket.IO")
    if offsets and decoded.offset is not None:
        args = [decoded.data, decoded.offset]
    else:
        args = [] if decoded.data is None else [decoded.data]  # emit's `data=None`: no argument
    encoded = server.packet_class(sio_packet.EVENT, namespace=NAMESPACE, data=[decoded.event, *args]).encode()
    return [
        eio_packet.Packet(eio_packet.MESSAGE, part) for part in (encoded if isinstance(encoded, list) else [encoded])
    ]
