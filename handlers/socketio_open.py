"""Posts a Socket.IO connection's Engine.IO open packet once its $connect has returned (invoked by $connect)."""

from __future__ import annotations

import json
import logging
from typing import Any

from shared.connections import OPEN_TASK
from shared.errors import ClientError
from shared.services import services
from shared.socketio_open import post_open_packet

logger = logging.getLogger(__name__)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        opened = post_open_packet(services(), event.get(OPEN_TASK) if isinstance(event, dict) else None)
    except ClientError as error:
        logger.warning("open task rejected: %s", error.message)
        return {"statusCode": error.status_code, "body": json.dumps({"error": error.message})}
    return {"statusCode": 200 if opened else 410, "body": json.dumps({"opened": opened})}
