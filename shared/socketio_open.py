"""The Engine.IO open packet, posted by a function `$connect` invokes asynchronously.

API Gateway answers 410 to any post to a connection whose `$connect` has not returned yet, and the client
sends nothing until the open packet arrives: so it is posted from outside `$connect`, retrying 410 with a
short, bounded backoff while API Gateway finishes the handshake.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from shared import socketio_codec
from shared.contract import MAX_FRAME_BYTES
from shared.errors import ConnectionGone, InvalidInput
from shared.services import Services

logger = logging.getLogger(__name__)

RETRY_DELAYS_SECONDS = (0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6)  # 3.2 s in all, then the client has left


def open_frame(svc: Services, connection_id: str) -> bytes:
    config = svc.config
    return socketio_codec.open_packet(
        connection_id,
        ping_interval_ms=int(config.ping_interval_seconds * 1000),
        ping_timeout_ms=int(config.ping_timeout_seconds * 1000),
        max_payload=MAX_FRAME_BYTES,
    ).encode()


def post_open_packet(svc: Services, task: Any, sleep: Callable[[float], None] = time.sleep) -> bool:
    """Post the open packet; False when the connection was gone through every retry (its state is removed)."""
    connection_id = task.get("connectionId") if isinstance(task, dict) else None
    endpoint = task.get("endpoint") if isinstance(task, dict) else None
    if not isinstance(connection_id, str) or not (endpoint is None or isinstance(endpoint, str)):
        raise InvalidInput('expected {"open": {"connectionId": str, "endpoint": str}}')
    poster, frame = svc.poster(endpoint), open_frame(svc, connection_id)
    for delay in (0.0, *RETRY_DELAYS_SECONDS):
        sleep(delay)
        try:
            poster.post(connection_id, frame)
            return True
        except ConnectionGone:
            continue
    logger.info("a connection never became reachable; removing what its $connect stored")
    logger.debug("connection %s never became reachable", connection_id)
    svc.store.remove_connection(connection_id)
    return False
