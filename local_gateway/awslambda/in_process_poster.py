"""The handlers' poster inside the gateway: frames go straight to the connections, no HTTP call to itself.

`LOCAL_POSTER=inprocess` (the gateway's default) gives the handlers this poster; `LOCAL_POSTER=http` leaves them
the poster they use in AWS (`shared.services.management_api_poster`: the SignedPoster fan-out engine, SigV4 over
keep-alive HTTP), posting to the gateway's own `/@connections` in plain HTTP. Both answer
an unknown connection with ConnectionGone (or, asked whether it is connected, False), as API Gateway's 410 does.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from local_gateway.apigateway.registry import ConnectionRegistry
from local_gateway.apigateway.socketio_endpoint import SocketIOEndpoint
from shared.errors import ConnectionGone

logger = logging.getLogger("local_gateway")

EMIT_TIMEOUT_SECONDS = 10.0

Delivery = tuple[str, bytes | None]  # (connection id, frame); None closes the connection
_outbox = threading.local()


def run_collecting(deliveries: list[Delivery], handler: Callable[..., Any], *args: Any) -> Any:
    """Run a handler in this worker thread, collecting its single posts into `deliveries` for the gateway to send
    once it has returned, raised or timed out.

    The gateway sends them on the event loop before it answers the event, so a push still precedes its ack
    (route response), and the handler's thread never waits for the loop.
    """
    _outbox.deliveries = deliveries
    try:
        return handler(*args)
    finally:
        _outbox.deliveries = None


async def deliver(registry: ConnectionRegistry, deliveries: list[Delivery]) -> None:
    for connection_id, frame in deliveries:
        connection = registry.get(connection_id)
        if connection is None:
            continue
        if frame is None:
            await connection.endpoint.close()
            continue
        try:
            await connection.endpoint.send(frame)
        except (ValueError, RecursionError) as refused:  # the Management API's 400: that frame alone is dropped
            logger.warning("a posted frame was not delivered: %s", refused)


class InProcessPoster:
    """Frames straight to the connections: collected inside an invocation, else sent at once."""

    def __init__(self, registry: ConnectionRegistry, loop: asyncio.AbstractEventLoop) -> None:
        self.registry = registry
        self.loop = loop

    def post(self, connection_id: str, frame: bytes) -> None:
        self._one(connection_id, frame)

    def disconnect(self, connection_id: str) -> None:
        self._one(connection_id, None)

    def is_connected(self, connection_id: str) -> bool:
        """What `GET /@connections/{id}` answers (200 or 410): whether a front holds the connection open."""
        return self.registry.get(connection_id) is not None

    def _one(self, connection_id: str, frame: bytes | None) -> None:
        connection = self.registry.get(connection_id)
        if connection is None:
            raise ConnectionGone(connection_id)
        deliveries = getattr(_outbox, "deliveries", None)
        if deliveries is not None:
            deliveries.append((connection_id, frame))
            return
        self._run(deliver(self.registry, [(connection_id, frame)]))

    def flush(self) -> None:
        """Send what this invocation collected so far, now, in order (a recovery's replay, before the hand-over
        lets live updates through)."""
        deliveries = getattr(_outbox, "deliveries", None)
        if deliveries:
            due, deliveries[:] = list(deliveries), []
            self._run(deliver(self.registry, due))

    def post_many(self, connection_ids: Iterable[str], frame: bytes) -> list[str]:
        """One frame to many connections (Socket.IO-front ones in one emit, encoded once); the gone ones back."""
        sids: dict[bool, list[str]] = {True: [], False: []}  # by whether the client takes offsets
        others: list[Delivery] = []
        gone: list[str] = []
        server = None
        for connection_id in connection_ids:
            connection = self.registry.get(connection_id)
            if connection is None:
                gone.append(connection_id)
            elif isinstance(connection.endpoint, SocketIOEndpoint) and connection.endpoint.held is None:
                sids[connection.endpoint.offsets].append(connection.endpoint.sid)
                server = connection.endpoint.server
            else:
                others.append((connection_id, frame))
        for offsets, group in sids.items():
            if group and server is not None:
                self._run(SocketIOEndpoint.emit_frame(server, group, frame, offsets))
        if others:
            self._run(deliver(self.registry, others))
        return gone

    def _run(self, sending: Coroutine[Any, Any, None]) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:  # called on the loop itself: it cannot wait for itself
            self.loop.create_task(sending)
            return
        asyncio.run_coroutine_threadsafe(sending, self.loop).result(timeout=EMIT_TIMEOUT_SECONDS)
