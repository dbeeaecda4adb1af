"""The deployed API's own WebSocket at `/{stage}`, behaving as API Gateway does.

Frames go verbatim to the routed functions: route selection by `$request.body.action` (anything else, non-JSON
included, to `$default`), a function's answer back only on routes with a route response, API Gateway's
`Internal server error` frame when a function fails, `$connect` refusing the upgrade, 410 for posts during
`$connect`, the 32 KB frame and 128 KB message limits (close 1009), the idle timeout and the 2-hour lifetime.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.responses import PlainTextResponse
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from local_gateway.apigateway import events
from local_gateway.apigateway.events import ConnectionInfo
from local_gateway.apigateway.registry import AddressCap, Connection, ConnectionRegistry, Endpoint, client_address
from local_gateway.awslambda.invoker import FunctionFailed
from local_gateway.nesting import too_deep
from local_gateway.origins import origin_check, own_origin
from shared.contract import MAX_FRAME_BYTES, MAX_MESSAGE_BYTES

if TYPE_CHECKING:
    from local_gateway.awslambda.invoker import FunctionInvoker, Handler

logger = logging.getLogger("local_gateway")

MESSAGE_TOO_BIG = 1009
UNSUPPORTED_DATA = 1003  # API Gateway's answer to a binary frame
GOING_AWAY = 1001
NORMAL_CLOSURE = 1000


@dataclass(frozen=True)
class Limits:
    idle_timeout_seconds: float
    max_connection_seconds: float
    max_frame_bytes: int = MAX_FRAME_BYTES
    max_message_bytes: int = MAX_MESSAGE_BYTES


class WebSocketEndpoint:
    """A connection of this endpoint: posted frames reach the client verbatim, as text (API Gateway's frames)."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.lock = asyncio.Lock()  # one writer at a time: posts and route responses interleave

    async def send(self, frame: bytes) -> None:
        await self.send_text(frame.decode("utf-8", errors="replace"))

    async def send_text(self, text: str) -> None:
        # A client that left meanwhile loses the frame, as it would in AWS; its receive loop runs $disconnect.
        async with self.lock:
            await self._unless_gone(lambda: self.websocket.send_text(text))

    async def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        async with self.lock:
            await self._unless_gone(lambda: self.websocket.close(code, reason))

    def fan_out_group(self) -> Hashable:
        """The connections of this endpoint take one frame's text, decoded once, in turn."""
        return WebSocketEndpoint

    async def send_to_group(self, members: list[Endpoint], frame: bytes) -> None:
        text = frame.decode("utf-8", errors="replace")
        for member in members:
            if isinstance(member, WebSocketEndpoint):
                await member.send_text(text)

    async def _unless_gone(self, action: Callable[[], Awaitable[None]]) -> None:
        if self.websocket.application_state != WebSocketState.CONNECTED:
            return
        try:
            await action()
        except (WebSocketDisconnect, OSError, RuntimeError) as gone:
            logger.debug("a frame for a connection that has just left was dropped: %r", gone)


class StageEndpoint:
    def __init__(
        self,
        registry: ConnectionRegistry,
        invoker: FunctionInvoker,
        routes: dict[str, Handler],
        route_responses: set[str],
        stage: str,
        limits: Limits,
        cap: AddressCap,
        cors_allowed_origins: str | list[str],
    ) -> None:
        self.registry = registry
        self.cap = cap
        self.origin_allowed = origin_check(cors_allowed_origins)
        self.invoker = invoker
        self.routes = routes
        self.route_responses = route_responses
        self.stage = stage
        self.limits = limits

    async def serve(self, websocket: WebSocket) -> None:
        if websocket.path_params.get("stage") != self.stage:
            await websocket.send_denial_response(PlainTextResponse("Forbidden", status_code=403))
            return
        if not self._origin_allowed(websocket):  # before $connect, as the Socket.IO endpoint's handshake
            logger.info("upgrade refused: a web page of another origin")
            await websocket.send_denial_response(PlainTextResponse("Forbidden", status_code=403))
            return
        address = client_address(websocket.scope)
        if not self.cap.take(address):  # before $connect: a flood of upgrades costs no function call
            logger.info("upgrade refused: %d open from one address", self.cap.limit)
            await websocket.send_denial_response(PlainTextResponse("Too many connections", status_code=429))
            return
        try:
            await self._serve(websocket, address)
        finally:
            self.cap.release(address)

    def _origin_allowed(self, websocket: WebSocket) -> bool:
        origin = websocket.headers.get("origin")
        if origin is None or self.origin_allowed is None:
            return True
        return self.origin_allowed(
            origin, own_origin(websocket.scope.get("scheme", "ws"), websocket.headers.get("host", ""))
        )

    async def _serve(self, websocket: WebSocket, address: str) -> None:
        info, headers = events.upgrade(websocket.scope, address, self.stage)
        status, answered = await self._connect(info, headers, websocket.query_params.multi_items())
        if not 200 <= status < 300:
            logger.info("upgrade refused (%s)", status)
            await websocket.send_denial_response(PlainTextResponse("Forbidden", status_code=status))
            return
        # The subprotocol `$connect` chose, as API Gateway returns its integration's Sec-WebSocket-Protocol header.
        chosen = {name.lower(): value for name, value in answered.items()}.get("sec-websocket-protocol")
        await websocket.accept(subprotocol=chosen if isinstance(chosen, str) else None)
        endpoint = WebSocketEndpoint(websocket)
        self.registry.add(Connection(info, endpoint))  # from now on, posts reach it (no more 410)
        logger.info("connected on /%s (%d open)", self.stage, len(self.registry))
        logger.debug("connected %s on /%s", info.connection_id, self.stage)
        reason, code = "Client closed", events.NO_STATUS
        try:
            reason, code = await self._receive(websocket, endpoint, info)
        finally:
            self.registry.remove(info.connection_id)
            with contextlib.suppress(FunctionFailed):  # logged by the invoker; the socket is gone either way
                await self._call("$disconnect", events.disconnect_event(info, reason, code))
            logger.info("disconnected from /%s (%s, %d open)", self.stage, reason, len(self.registry))
            logger.debug("disconnected %s", info.connection_id)

    async def _connect(
        self, info: ConnectionInfo, headers: list[tuple[str, str]], query: list[tuple[str, str]]
    ) -> tuple[int, dict[str, Any]]:
        """`$connect`'s status and the headers it answered with."""
        try:
            result = await self.invoker.invoke_route(
                self.routes["$connect"], events.connect_event(info, headers, query), "$connect"
            )
        except FunctionFailed:
            return 500, {}
        answered = result.get("headers")
        return int(result.get("statusCode", 200)), answered if isinstance(answered, dict) else {}

    async def _receive(
        self, websocket: WebSocket, endpoint: WebSocketEndpoint, info: ConnectionInfo
    ) -> tuple[str, int]:
        """Messages until the connection ends: why, and the close code the `$disconnect` event reports."""
        limits = self.limits
        deadline = info.connected_at + limits.max_connection_seconds
        while True:
            wait = min(limits.idle_timeout_seconds, deadline - time.time())
            try:
                message = await asyncio.wait_for(websocket.receive(), max(0.0, wait))
            except TimeoutError:
                going_away = "Connection lifetime exceeded" if time.time() >= deadline else "Idle timeout"
                await endpoint.close(GOING_AWAY, "Going away")
                return going_away, GOING_AWAY
            if message["type"] == "websocket.disconnect":
                return "Client closed", int(message.get("code", events.NO_STATUS))
            text = message.get("text")
            if text is None:  # API Gateway takes text frames only: a binary one ends the connection
                await endpoint.close(UNSUPPORTED_DATA, "Binary frames are not supported")
                return "Binary frame", UNSUPPORTED_DATA
            # A browser sends each message as one frame: past 32 KB it is an oversized frame.
            size = len(text.encode())
            if size > limits.max_frame_bytes or size > limits.max_message_bytes:
                await endpoint.close(MESSAGE_TOO_BIG, "Message too big")
                return "Message too big", MESSAGE_TOO_BIG
            info.last_active_at = time.time()
            await self._message(endpoint, info, text)

    def select_route(self, body: str) -> str:
        """`$request.body.action`: the route whose key it names, else `$default` (where API Gateway sends a frame it
        cannot read, one nested past the parser's depth included)."""
        if too_deep(body):
            return "$default"
        try:
            frame = json.loads(body)
        except ValueError:
            return "$default"
        action = frame.get("action") if isinstance(frame, dict) else None
        if isinstance(action, str) and action in self.routes and not action.startswith("$"):
            return action
        return "$default"

    async def _message(self, endpoint: WebSocketEndpoint, info: ConnectionInfo, body: str) -> None:
        route_key = self.select_route(body)
        event = events.message_event(info, route_key, body)
        try:
            result = await self._call(route_key, event)
        except FunctionFailed:
            request_id = event["requestContext"]["requestId"]
            error = {"message": "Internal server error", "connectionId": info.connection_id, "requestId": request_id}
            await endpoint.send(json.dumps(error).encode())
            return
        logger.debug("%s %s -> %s", info.connection_id, route_key, result.get("statusCode"))  # per event: DEBUG
        body_out = result.get("body")
        if route_key in self.route_responses and isinstance(body_out, str) and body_out:
            await endpoint.send(body_out.encode())

    async def _call(self, route_key: str, event: dict[str, Any]) -> dict[str, Any]:
        return await self.invoker.invoke_route(self.routes[route_key], event, route_key)

    async def close_all(self) -> None:
        for connection in self.registry.all():
            if isinstance(connection.endpoint, WebSocketEndpoint):
                await connection.endpoint.close(GOING_AWAY, "Going away")
