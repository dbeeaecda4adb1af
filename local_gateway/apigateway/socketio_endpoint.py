"""The Socket.IO endpoint at `/socket.io/`: each Socket.IO event becomes the API Gateway event of its JSON route.

Clients connect with `io('http://localhost:4000')` (polling and upgrade, or websocket). The handlers see
JSON-frame connections: each connection's SocketIOEndpoint (socketio_connection.py) turns their frames back into
Socket.IO emits. Here the connect path (the cap, `$connect`, registration, `resume`) and the disconnect; the
events between them are socketio_events.py's.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import socketio

from local_gateway.apigateway import events
from local_gateway.apigateway.handshakes import Handshakes
from local_gateway.apigateway.lanes import Lane
from local_gateway.apigateway.registry import (
    TOO_MANY_CONNECTIONS,
    AddressCap,
    Connection,
    ConnectionRegistry,
    client_address,
)
from local_gateway.apigateway.screening import InFlightLimit, screen_messages
from local_gateway.apigateway.socketio_connection import SocketIOEndpoint
from local_gateway.apigateway.socketio_events import INTERNAL_SERVER_ERROR, SocketIOEvents
from local_gateway.apigateway.socketio_recovery import RECOVERY_FIELDS, answering_packets, takes_offsets
from local_gateway.origins import origin_policy
from shared.codec import encode_client_frame
from shared.connections import NORMAL_CLOSURE
from shared.contract import MAX_MESSAGE_BYTES, RESUME

if TYPE_CHECKING:
    from local_gateway.awslambda.invoker import FunctionInvoker, Handler

logger = logging.getLogger("local_gateway")

# Socket.IO's own query parameters, which API Gateway would never see.
TRANSPORT_PARAMS = {"EIO", "transport", "t", "sid", "j", "b64"}
DEPARTURE_WAIT_SECONDS = 5.0  # a `$disconnect` takes milliseconds; this bound only guards against a stuck one


class SocketIOServer:
    def __init__(
        self,
        registry: ConnectionRegistry,
        invoker: FunctionInvoker,
        routes: dict[str, Handler],
        cors_allowed_origins: str | list[str],
        stage: str,
        backlog: int,
        cap: AddressCap,
        connect_timeout: float,
    ) -> None:
        self.registry = registry
        self.cap = cap
        self._addresses: dict[str, str] = {}  # the address each sid holds a place of the cap for
        self.backlog = backlog
        self.lanes: dict[str, Lane] = {}  # each connection's queue of events, by sid, while it is connected
        self.invoker = invoker
        self.routes = routes
        self.stage = stage
        self._by_sid: dict[str, str] = {}
        self._pids: dict[str, str] = {}  # what each sid's CONNECT answer carries as `pid`, until it is sent
        self._leaving: set[str] = set()  # Engine.IO sessions whose client sent a namespace DISCONNECT
        self._releases: set[asyncio.Task[None]] = set()
        self.server = socketio.AsyncServer(
            async_mode="asgi",
            cors_allowed_origins=origin_policy(cors_allowed_origins),
            max_http_buffer_size=MAX_MESSAGE_BYTES,
            serializer=answering_packets(self._pids, self._answered),
        )
        self.server.on("connect", self._on_connect)
        self.server.on("disconnect", self._on_disconnect)
        # Unreadable packets and binary attachments stop here, and a session whose flood outruns its lane: in
        # flight, one running, the backlog waiting and the backlog's worth of refusals.
        self.in_flight = InFlightLimit(2 * backlog + 1)
        self.events = SocketIOEvents(
            self.server, registry, self.lanes, self.connection_id, routes, self._call, backlog, self.in_flight
        )
        self.server.on("*", self.events.on_event)
        screen_messages(self.server, self.in_flight, self.events.hung_up, self._leaving)
        # Room for a burst of as many clients as the cap lets connect, and as many again: a handshake left over
        # (a probe, a tab that never connected) must not refuse the last of them.
        self.handshakes = Handshakes(self.server, 2 * self.cap.limit, connect_timeout)

    def connection_id(self, sid: str) -> str | None:
        return self._by_sid.get(sid)

    async def close_all(self) -> None:
        await self.handshakes.close()
        lanes, self.lanes = list(self.lanes.values()), {}
        for lane in lanes:  # first: shutdown does not wait for anything a client queued
            await lane.close()
        for sid in list(self._by_sid):
            await self.server.disconnect(sid)

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        scope = environ.get("asgi.scope", {})
        info, headers = events.upgrade(scope, client_address(scope), self.stage)
        query = [(k, v) for k, v in parse_qsl(environ.get("QUERY_STRING", "")) if k not in TRANSPORT_PARAMS]
        recovery = auth if isinstance(auth, dict) else {}
        # Socket.IO's `auth` travels as query parameters: what a browser can send to API Gateway (not the
        # recovery's private session id, which goes to the `resume` route).
        # Nor Socket.IO's own parameters: `auth: {EIO: "4"}` would pass for a deployed Socket.IO handshake, which
        # `$connect` registers as pending until its CONNECT instead of refusing it without a token.
        query += [
            (k, v)
            for k, v in recovery.items()
            if isinstance(v, str) and k not in RECOVERY_FIELDS and k not in TRANSPORT_PARAMS
        ]
        if not self.cap.take(info.source_ip):  # before $connect: a flood of handshakes costs no function call
            logger.info("connection refused: %d open from one address", self.cap.limit)
            raise socketio.exceptions.ConnectionRefusedError(TOO_MANY_CONNECTIONS)
        try:
            result = await self._call("$connect", events.connect_event(info, headers, query))
        except BaseException:
            self.cap.release(info.source_ip)
            raise
        if result.get("statusCode") != 200:
            self.cap.release(info.source_ip)
            logger.info("connection refused (%s): %s", result.get("statusCode"), result.get("body"))
            raise socketio.exceptions.ConnectionRefusedError(result.get("body") or "Forbidden")
        eio_sid = self.server.manager.eio_sid_from_sid(sid, "/")
        if not self.handshakes.alive(eio_sid):  # it ended while $connect ran: API Gateway's $disconnect follows
            self.cap.release(info.source_ip)
            await self._call("$disconnect", events.disconnect_event(info, "Session ended during $connect"))
            raise socketio.exceptions.ConnectionRefusedError("Gone")
        self._addresses[sid] = info.source_ip
        offsets = takes_offsets(environ.get("QUERY_STRING", ""))
        connection = Connection(info, SocketIOEndpoint(self.server, sid, offsets))
        self.registry.add(connection)
        self._by_sid[sid] = info.connection_id
        self.lanes[sid] = Lane(self.backlog)
        self.handshakes.connected(eio_sid)
        if offsets:  # a client that keeps offsets can recover: its session is resumed, or begun
            await self._resume(sid, connection, recovery)
        # Connection ids are what the Management API addresses: DEBUG only, as they are not for every eye.
        logger.info("connected (%d open)", len(self.registry))
        logger.debug("connected %s", info.connection_id)

    async def _resume(self, sid: str, connection: Connection, recovery: dict[str, Any]) -> None:
        """The `resume` route, as a JSON client would call it; its answer's session becomes CONNECT's `pid`. The
        replay it posts reaches the client before that answer, and the client emits it once connected."""
        if recovery.get("pid") is not None:
            await self._departures_settled()
        wanted = {"session": recovery.get("pid"), "offset": recovery.get("offset")}
        body = encode_client_frame(RESUME, {key: value for key, value in wanted.items() if isinstance(value, str)})
        result = await self._call(RESUME, events.message_event(connection.info, RESUME, body))
        try:
            ack = json.loads(result.get("body") or "")
        except (TypeError, ValueError):
            ack = None
        if isinstance(ack, dict) and isinstance(ack.get("session"), str):
            self._pids[sid] = ack["session"]
        elif not (isinstance(ack, dict) and ack.get("ok") is True):  # ok without one: recovery is off
            logger.warning("resume answered %s: the connection has no session", result.get("statusCode"))

    def _answered(self, sid: str) -> None:
        """The CONNECT answer to `sid` is going out (python-socketio is encoding it): what was held follows."""
        connection = self.registry.get(self._by_sid.get(sid, ""))
        if connection is not None and isinstance(connection.endpoint, SocketIOEndpoint):
            task = asyncio.get_running_loop().create_task(connection.endpoint.release())
            self._releases.add(task)
            task.add_done_callback(self._releases.discard)

    async def _departures_settled(self) -> None:
        """Wait (a bounded moment) for the deliberate departures under way: a client that called `disconnect()`
        and at once `connect()` must find its session ended, not take it over from the connection it is leaving."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEPARTURE_WAIT_SECONDS
        while self._leaving and loop.time() < deadline:
            await asyncio.sleep(0.01)

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        self._pids.pop(sid, None)
        eio_sid = self.server.manager.eio_sid_from_sid(sid, "/")
        # Engine.IO runs each message's handler as a task of its own: a `41` read just before the transport
        # closed may not have been screened yet. One turn of the loop lets it say the client is leaving.
        await asyncio.sleep(0)
        deliberate = eio_sid in self._leaving
        address = self._addresses.pop(sid, None)
        if address is not None:
            self.cap.release(address)
            self.handshakes.left(eio_sid)
        connection_id = self._by_sid.pop(sid, None)
        lane = self.lanes.pop(sid, None)
        if lane is not None:
            await lane.close()  # what it had queued would only act for a connection that is gone
        connection = self.registry.remove(connection_id) if connection_id else None
        if connection is None:
            return
        # A client's `socket.disconnect()` closes as a client closing normally does: its session ends with it.
        code = NORMAL_CLOSURE if deliberate else events.NO_STATUS
        await self._call("$disconnect", events.disconnect_event(connection.info, str(reason), code))
        logger.info("disconnected (%s, %d open)", reason, len(self.registry))
        logger.debug("disconnected %s", connection_id)

    async def _call(self, route_key: str, event: dict[str, Any]) -> dict[str, Any]:
        from local_gateway.awslambda.invoker import FunctionFailed

        try:
            return await self.invoker.invoke_route(self.routes[route_key], event, route_key)
        except FunctionFailed:
            return {"statusCode": 502, "body": INTERNAL_SERVER_ERROR}
