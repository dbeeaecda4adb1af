"""The Socket.IO endpoint's client events: each one waits in its connection's lane, runs as the API Gateway
event of its JSON route, and is answered by the acknowledgement the function's answer makes (or the gateway's own).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import socketio

from local_gateway.apigateway import events
from local_gateway.apigateway.lanes import DROPPED, Lane
from local_gateway.apigateway.registry import Connection, ConnectionRegistry
from local_gateway.apigateway.screening import InFlightLimit
from local_gateway.apigateway.socketio_packets import EncodedJSON, route_ack
from shared.codec import encode_client_frame
from shared.contract import ERROR, echoed_event_name

if TYPE_CHECKING:
    from local_gateway.awslambda.invoker import Handler

logger = logging.getLogger("local_gateway")

INTERNAL_SERVER_ERROR = "Internal server error"
NOT_CONNECTED = "Not connected"
TOO_MANY_REQUESTS = "Too many requests: wait for the answers to what you sent before sending more"
HUNG_UP = "Too many requests: disconnected for sending on after more refusals than the backlog holds"
Ack = dict[str, Any] | EncodedJSON  # the acknowledgement's argument: the gateway's own, or the function's text
Call = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]  # a route's function called with its event


@dataclass
class SocketIOEvents:
    """The catch-all event handler. The connect path (socketio_endpoint.py) opens and closes the lanes; here
    they are only read, as are the connection ids of the sids."""

    server: socketio.AsyncServer
    registry: ConnectionRegistry
    lanes: dict[str, Lane]  # each connected sid's, kept by the connect path
    connection_id: Callable[[str], str | None]
    routes: dict[str, Handler]
    call: Call
    backlog: int
    in_flight: InFlightLimit

    async def tell(self, sid: str, event: str, message: str) -> None:
        """`analytics:error` about the client's event, as the functions tell theirs."""
        await self.server.emit(ERROR, {"message": message, "event": echoed_event_name(event)}, to=sid)

    async def hung_up(self, eio_sid: str, event: str) -> None:
        sid = self.server.manager.sid_from_eio_sid(eio_sid, "/")
        if sid is not None:
            await self.tell(sid, event, HUNG_UP)

    async def on_event(self, event: str, sid: str, *args: Any) -> Ack:
        eio_sid = self.server.manager.eio_sid_from_sid(sid, "/")
        try:
            return await self._take_event(event, sid, *args)
        finally:
            self.in_flight.answered(eio_sid)

    async def _take_event(self, event: str, sid: str, *args: Any) -> Ack:
        # Nothing here may wait before the event takes its place in the lane: that keeps the client's order.
        connection = self.registry.get(self.connection_id(sid) or "")
        lane = self.lanes.get(sid)
        if connection is None or lane is None:
            return {"ok": False, "error": NOT_CONNECTED}
        connection.info.last_active_at = time.time()
        try:
            body = encode_client_frame(event, *args)
        except (TypeError, ValueError):
            message = "Binary or non-JSON arguments are not supported"
            await self.tell(sid, event, message)
            return {"ok": False, "error": message}
        answer = lane.submit(lambda: self._run_event(sid, event, connection, body))
        if answer is None:  # refused before any work, so a flood costs no DynamoDB call
            if lane.refused_in_a_row > self.backlog:
                # A client that sends on through its refusals is hung up on, as API Gateway does with a
                # connection it throttles hard: its remaining packets are then dropped unread, not answered
                # one by one in front of everyone else's.
                await self.tell(sid, event, HUNG_UP)
                await self.server.disconnect(sid)
                return {"ok": False, "error": HUNG_UP}
            await self.tell(sid, event, TOO_MANY_REQUESTS)
            return {"ok": False, "error": TOO_MANY_REQUESTS}
        result = await answer
        return {"ok": False, "error": NOT_CONNECTED} if result is DROPPED else result

    async def _run_event(self, sid: str, event: str, connection: Connection, body: str) -> Ack:
        route_key = event if event in self.routes and not event.startswith("$") else "$default"
        result = await self.call(route_key, events.message_event(connection.info, route_key, body))
        logger.debug("%s %s -> %s", connection.info.connection_id, route_key, result.get("statusCode"))
        return await self._ack(sid, event, result)

    async def _ack(self, sid: str, event: str, result: dict[str, Any]) -> Ack:
        ack = route_ack(result.get("body"))
        if ack is not None:
            return ack
        # The function crashed: API Gateway tells the client "Internal server error", and so do we.
        await self.tell(sid, event, INTERNAL_SERVER_ERROR)
        return {"ok": False, "error": INTERNAL_SERVER_ERROR}
