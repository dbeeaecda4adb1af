"""A function's posts inside the local gateway: collected while it runs, sent once it has returned.

The gateway sends them on the event loop before it answers the event, so a push still precedes its ack (route
response), and the handler's thread never waits for the loop. (A recovery flushes them earlier: see
InProcessPoster.flush.)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from local_gateway.apigateway.registry import ConnectionRegistry, Endpoint

logger = logging.getLogger("local_gateway")

Delivery = tuple[str, bytes | None]  # (connection id, frame); None closes the connection
_outbox = threading.local()


def run_collecting(deliveries: list[Delivery], handler: Callable[..., Any], *args: Any) -> Any:
    """Run a handler in this worker thread, collecting its single posts into `deliveries` for the gateway to send
    once it has returned, raised or timed out."""
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


async def deliver_to_group(members: list[Endpoint], frame: bytes) -> None:
    """One frame to the connections of one group (Endpoint.fan_out_group), decoded and checked once."""
    try:
        await members[0].send_to_group(members, frame)
    except (ValueError, RecursionError) as refused:  # the Management API's 400, to each of them
        logger.warning("a posted frame was not delivered to %d connection(s): %s", len(members), refused)


def collected() -> list[Delivery] | None:
    """The posts the function running in this thread has collected so far; None outside a function."""
    deliveries: list[Delivery] | None = getattr(_outbox, "deliveries", None)
    return deliveries
