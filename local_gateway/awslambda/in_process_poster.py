"""The handlers' poster inside the gateway: frames go straight to the connections, no HTTP call to itself.

`LOCAL_POSTER=inprocess` (the gateway's default) gives the handlers this poster; `LOCAL_POSTER=http` leaves them
the poster they use in AWS (`shared.clients.management_api_poster`: the SignedPoster fan-out engine, SigV4 over
keep-alive HTTP), posting to the gateway's own `/@connections` in plain HTTP. Both answer
an unknown connection with ConnectionGone (or, asked whether it is connected, False), as API Gateway's 410 does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Hashable, Iterable
from typing import Any

from local_gateway.apigateway.registry import ConnectionRegistry, Endpoint
from local_gateway.awslambda.outbox import Delivery, collected, deliver, deliver_to_group
from shared.errors import ConnectionGone

logger = logging.getLogger("local_gateway")

EMIT_TIMEOUT_SECONDS = 10.0


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
        """What `GET /@connections/{id}` answers (200 or 410): whether an endpoint holds the connection open."""
        return self.registry.get(connection_id) is not None

    def _one(self, connection_id: str, frame: bytes | None) -> None:
        connection = self.registry.get(connection_id)
        if connection is None:
            raise ConnectionGone(connection_id)
        deliveries = collected()
        if deliveries is not None:
            deliveries.append((connection_id, frame))
            return
        self._run(deliver(self.registry, [(connection_id, frame)]))

    def flush(self) -> None:
        """Send what this invocation collected so far, now, in order (a recovery's replay, before the hand-over
        lets live updates through)."""
        deliveries = collected()
        if deliveries:
            due, deliveries[:] = list(deliveries), []
            self._run(deliver(self.registry, due))

    def post_many(self, connection_ids: Iterable[str], frame: bytes) -> list[str]:
        """One frame to many connections, the gone ones back. Those an endpoint takes as a group get it in one
        call, decoded, checked and encoded once (a Socket.IO packet, a WebSocket's text), as python-socketio's
        room emit does."""
        groups: dict[Hashable, list[Endpoint]] = {}
        singles: list[Delivery] = []
        gone: list[str] = []
        for connection_id in connection_ids:
            connection = self.registry.get(connection_id)
            if connection is None:
                gone.append(connection_id)
                continue
            group = connection.endpoint.fan_out_group()
            if group is None:
                singles.append((connection_id, frame))
            else:
                groups.setdefault(group, []).append(connection.endpoint)
        for members in groups.values():
            self._run(deliver_to_group(members, frame))
        if singles:
            self._run(deliver(self.registry, singles))
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
