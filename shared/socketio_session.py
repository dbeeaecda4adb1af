"""Socket.IO frames at `$default`: the namespace handshake, events with their acks, the heartbeat's pongs.

Every answer is the route response body and is always an Engine.IO packet: an empty frame, or anything that
is not Engine.IO, makes the stock client drop the connection.
"""

from __future__ import annotations

import logging
from typing import Any

from shared import socketio_codec as sio
from shared.actions import COMMANDS, unknown_event
from shared.codec import MISSING
from shared.connections import register_socketio
from shared.contract import ERROR, INTERNAL_ERROR
from shared.errors import ClientError, InvalidInput
from shared.events import WebSocketEvent
from shared.poster import Poster
from shared.protocols import SOCKETIO
from shared.recovery import Resumed, recovers, resume
from shared.runtime import Outcome, perform, refuse
from shared.services import Services, services
from shared.sessions import new_pid

logger = logging.getLogger(__name__)

INVALID_NAMESPACE = "Invalid namespace"
BINARY_REFUSED = "Binary arguments are not supported"


def looks_like_socketio(body: str | None) -> bool:
    """Engine.IO packets start with their type digit; JSON frames are objects."""
    return bool(body) and body[0].isdigit()  # type: ignore[index]


def handle_frame(raw_event: dict[str, Any], context: Any) -> dict[str, Any]:
    event = WebSocketEvent(raw_event)
    try:
        body = answer(services(context), event)
    except Exception:
        # A function that raises makes API Gateway send its own `{"message": "Internal server error"}`,
        # which is not Engine.IO: the client would drop the connection. Answer in Engine.IO instead.
        logger.exception("Socket.IO frame failed")  # connection ids at DEBUG only
        logger.debug("Socket.IO frame failed for %s", event.connection_id)
        connecting = (event.body or "").startswith(f"{sio.EIO_MESSAGE}{sio.CONNECT}")
        body = sio.connect_error(INTERNAL_ERROR) if connecting else sio.event(ERROR, {"message": INTERNAL_ERROR})
    return {"statusCode": 200, "body": body}


def answer(svc: Services, event: WebSocketEvent) -> str:
    try:
        packet = sio.decode(event.body)
    except InvalidInput as error:
        # Costs nothing: no DynamoDB call, no post; the client reads it as an ordinary analytics:error.
        return sio.event(ERROR, {"message": error.message})
    if packet.engine_type == sio.EIO_CLOSE:  # the transport closing: its session may be recovered, as socket.io's
        svc.store.remove_connection(event.connection_id)
        return sio.NOOP_FRAME
    if packet.engine_type != sio.EIO_MESSAGE:
        return sio.NOOP_FRAME  # pongs above all: the heartbeat must cost no DynamoDB call
    if packet.namespace != sio.ROOT_NAMESPACE:
        if packet.socket_type == sio.CONNECT:
            return sio.connect_error(INVALID_NAMESPACE, packet.namespace)
        return sio.NOOP_FRAME
    poster = svc.poster(event.management_endpoint)
    if packet.socket_type == sio.CONNECT:
        return _connect(svc, poster, event, packet.data)
    if packet.socket_type == sio.DISCONNECT:  # `socket.disconnect()`: the client ends its session for good
        svc.store.remove_connection(event.connection_id, deliberate=True)
        return sio.NOOP_FRAME
    if packet.socket_type in (sio.EVENT, sio.BINARY_EVENT):
        outcome = _event(svc, poster, event.connection_id, packet)
        if packet.ack_id is None:
            return sio.NOOP_FRAME
        ack: dict[str, Any] = {"ok": True} if outcome.error is None else {"ok": False, "error": outcome.error}
        return sio.ack(packet.ack_id, ack)
    return sio.NOOP_FRAME  # acks and errors from a client answer nothing we asked


def _event(svc: Services, poster: Poster, connection_id: str, packet: sio.Packet) -> Outcome:
    args = packet.data
    name = args[0] if isinstance(args, list) and args and isinstance(args[0], str) else None
    try:
        if name is None:
            raise InvalidInput('Malformed event: expected ["event name", argument]')
        if packet.socket_type == sio.BINARY_EVENT or packet.attachments:
            raise InvalidInput(BINARY_REFUSED)
    except ClientError as error:
        return refuse(svc, poster, connection_id, SOCKETIO, name, error)
    data = args[1] if len(args) > 1 else MISSING
    return perform(svc, poster, connection_id, SOCKETIO, name, data, COMMANDS.get(name, unknown_event))


def _connect(svc: Services, poster: Poster, event: WebSocketEvent, auth: Any) -> str:
    recovery = auth if isinstance(auth, dict) else {}
    pid, offset = recovery.get("pid"), recovery.get("offset")
    # Nothing to recover: the new session is named by the registration's own writes (none with recovery off).
    recovering = recovers(svc, pid, offset)
    fresh = new_pid() if svc.sessions.enabled and not recovering else None
    try:
        registered = register_socketio(svc, event.connection_id, recovery, fresh)
    except ClientError as error:
        logger.info("namespace connect refused: %s", error.message)
        logger.debug("namespace connect refused for %s", event.connection_id)
        svc.store.remove_connection(event.connection_id)  # nothing stays behind a refused handshake
        # Posted, then closed: a route response would never arrive on a connection closed meanwhile.
        poster.post(event.connection_id, sio.connect_error(error.message).encode())
        poster.disconnect(event.connection_id)
        return sio.NOOP_FRAME

    def answer(resumed: Resumed) -> None:
        # Posted before anything is replayed: a replay the client buffered ahead of its CONNECT answer would be
        # emitted again after a drop in between (socket.io-client keeps that buffer across reconnections).
        poster.post(event.connection_id, sio.connected(resumed.sid, resumed.pid).encode())

    if registered and not recovering:
        answer(Resumed(fresh, event.connection_id, False))  # registered now, its new session with it
    else:  # a recovery, or a repeated CONNECT (a new session, as `resume` starts one when asked again)
        resume(svc, poster, event.connection_id, SOCKETIO, pid, offset, answer)
    return sio.NOOP_FRAME
