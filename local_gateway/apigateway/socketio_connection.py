"""One `/socket.io/` connection as the Management API reaches it: JSON server frames become Socket.IO emits."""

from __future__ import annotations

from collections.abc import Hashable

import socketio

from local_gateway.apigateway.registry import Endpoint
from shared.codec import decode_server_frame

# Event names Socket.IO clients keep for themselves: a server frame naming one makes the client drop ("parse
# error"), so the Management API refuses such a frame for a Socket.IO connection.
RESERVED_EVENTS = {"connect", "disconnect", "connect_error", "disconnecting", "newListener", "removeListener"}


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
        await self.emit_frame(self.server, self.sid, frame, self.offsets)

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
            await self.emit_frame(self.server, self.sid, frame, self.offsets)

    async def close(self) -> None:
        await self.server.disconnect(self.sid)

    @staticmethod
    async def emit_frame(server: socketio.AsyncServer, to: str | list[str], frame: bytes, offsets: bool) -> None:
        decoded = decode_server_frame(frame)
        if decoded.event in RESERVED_EVENTS:
            raise ValueError(f"{decoded.event} is reserved by Socket.IO")
        with_offset = offsets and decoded.offset is not None
        await server.emit(decoded.event, (decoded.data, decoded.offset) if with_offset else decoded.data, to=to)
