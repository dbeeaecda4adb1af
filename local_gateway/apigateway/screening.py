"""Socket.IO input screened before python-socketio buffers or parses it.

python-socketio keeps every binary attachment a packet declares until the last one arrives (a socket declaring
100,000 held 60 MB) and logs each packet it cannot read as a traceback at ERROR (`42[`, `42{}`, deep nesting).
The gateway screens each Engine.IO message before python-socketio sees it, through Engine.IO's public
`on("message")`, and hands python-socketio the packet it parsed to screen it (socketio_packets.py), so that each
packet is parsed once. (Engine.IO's own packets, and its polling POSTs, are screened before Engine.IO decodes them:
local_gateway/apigateway/engineio_input.py.)
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableSet
from typing import Any

import socketio
from socketio import packet as sio_packet

from local_gateway.apigateway.socketio_packets import ScreenedText
from local_gateway.nesting import MAX_NESTING, too_deep

logger = logging.getLogger("local_gateway")

# The gateway's functions take JSON only (a binary argument gets "Binary or non-JSON arguments are not
# supported"); a few attachments are let through so that the client hears that, more are refused at once.
MAX_ATTACHMENTS = 8
EVENTS = (sio_packet.EVENT, sio_packet.BINARY_EVENT)
FROM_CLIENTS = (
    sio_packet.CONNECT,
    sio_packet.DISCONNECT,
    sio_packet.EVENT,
    sio_packet.ACK,
    sio_packet.BINARY_EVENT,
    sio_packet.BINARY_ACK,
)


ROOT_DISCONNECT = str(sio_packet.DISCONNECT)  # `41` less Engine.IO's `4`: `socket.disconnect()` on "/"


class Refused(Exception):
    """The packet is not passed on; `hang_up`: the client is disconnected too."""

    def __init__(self, reason: str, hang_up: bool = False) -> None:
        super().__init__(reason)
        self.hang_up = hang_up


def check_packet(server: socketio.AsyncServer, text: str) -> Any:
    """The packet as python-socketio reads it; Refused when it could not, or the packet announces too many
    binary attachments."""
    if too_deep(text):
        raise Refused(f"nested more than {MAX_NESTING} levels")
    try:
        parsed = server.packet_class(encoded_packet=text)
    except Exception as error:  # anything the parser raises: bad JSON, recursion, too many digits
        raise Refused(f"unreadable ({type(error).__name__})") from None
    if parsed.packet_type not in FROM_CLIENTS:
        raise Refused(f"packet type {parsed.packet_type!r} is not one a client sends")
    if parsed.attachment_count > MAX_ATTACHMENTS:
        raise Refused(f"{parsed.attachment_count} binary attachments declared, at most {MAX_ATTACHMENTS}", True)
    if parsed.packet_type in EVENTS:
        data = parsed.data
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            raise Refused("an event must be a JSON array starting with its name")
    return parsed


class InFlightLimit:
    """Events of each Engine.IO session screened and not yet answered. python-engineio reads a socket's packets
    as fast as they come and starts a task for each, all run in order before anyone else's: a session with
    more in flight than a lane can hold or refuse (`limit`) is hung up on here, before the rest of its flood
    costs anything, as the lane would hang up on it once the refusals reached it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._count: dict[str, int] = {}

    def arrived(self, eio_sid: str) -> bool:
        """Count one more; False when that is beyond the limit."""
        self._count[eio_sid] = self._count.get(eio_sid, 0) + 1
        return self._count[eio_sid] <= self.limit

    def answered(self, eio_sid: str | None) -> None:
        if eio_sid is not None and self._count.get(eio_sid, 0) > 0:
            self._count[eio_sid] -= 1

    def forget(self, eio_sid: str) -> None:
        self._count.pop(eio_sid, None)


def screen_messages(
    server: socketio.AsyncServer,
    in_flight: InFlightLimit | None = None,
    hung_up: Callable[[str, str], Awaitable[None]] | None = None,
    leaving: MutableSet[str] | None = None,
) -> None:
    """Wrap Engine.IO's message handler (the one python-socketio registered) with the checks above; with an
    `in_flight`, a session beyond its limit is told (`hung_up(eio_sid, event)`) and disconnected. `leaving` holds the
    Engine.IO sessions whose client sent a namespace DISCONNECT (`socket.disconnect()`), until their disconnect
    has been handled: python-socketio reports it with the same reason as an Engine.IO close packet, which
    socket.io counts as a transport closing."""
    eio = server.eio
    handle: Callable[[str, Any], Awaitable[None]] = eio.handlers["message"]
    handle_disconnect: Callable[..., Awaitable[None]] = eio.handlers["disconnect"]
    expected: dict[str, int] = {}  # attachments still due, by Engine.IO session

    async def screened(eio_sid: str, data: Any) -> None:
        if leaving is not None and data == ROOT_DISCONNECT:
            leaving.add(eio_sid)  # first: the transport's close that follows may have removed the session already
        if eio_sid not in eio.sockets:  # hung up on (a client may ignore Engine.IO's close): dropped unlogged
            return
        try:
            if isinstance(data, str):
                parsed = check_packet(server, data)
                if parsed.attachment_count:
                    expected[eio_sid] = int(parsed.attachment_count)
                if in_flight is not None and parsed.packet_type in EVENTS and not in_flight.arrived(eio_sid):
                    logger.warning("Socket.IO session hung up on: more than %d events in flight", in_flight.limit)
                    if hung_up is not None:
                        await hung_up(eio_sid, parsed.data[0])
                    in_flight.forget(eio_sid)
                    await eio.disconnect(eio_sid)
                    return
                data = ScreenedText.of(data, parsed)  # python-socketio takes this parse instead of its own
            elif expected.get(eio_sid, 0) > 0:  # an attachment announced and not yet received
                expected[eio_sid] -= 1
                if not expected[eio_sid]:
                    del expected[eio_sid]
            else:
                raise Refused("a binary message nobody announced")
        except Refused as refused:
            logger.warning("Socket.IO packet refused: %s", refused)
            if refused.hang_up:
                expected.pop(eio_sid, None)
                await eio.disconnect(eio_sid)
            return
        await handle(eio_sid, data)

    async def disconnected(eio_sid: str, *reason: Any) -> None:
        expected.pop(eio_sid, None)
        if in_flight is not None:
            in_flight.forget(eio_sid)
        await handle_disconnect(eio_sid, *reason)
        if leaving is not None:
            leaving.discard(eio_sid)

    eio.on("message", screened)
    eio.on("disconnect", disconnected)
