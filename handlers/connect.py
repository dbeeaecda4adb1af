"""$connect: register the connection, or refuse it."""

from __future__ import annotations

import logging
from typing import Any

from shared.connections import connect
from shared.errors import ClientError
from shared.events import WebSocketEvent
from shared.services import services

logger = logging.getLogger(__name__)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ws = WebSocketEvent(event)
    try:
        connect(services(), ws)
    except ClientError as error:
        logger.info("refused a connection: %s", error.message)
        logger.debug("refused connection %s", ws.connection_id)
        return {"statusCode": error.status_code, "body": error.message}
    return {"statusCode": 200, "body": "Connected"}
