"""A worker of the sharded fan-out: posts one snapshot to the slice of subscribers it was handed."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import Any

from shared.errors import ClientError
from shared.fanout import deliver_slice
from shared.services import services

logger = logging.getLogger(__name__)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    svc = services()
    try:
        delivery = deliver_slice(svc.store, svc.poster(), event)
    except ClientError as error:
        logger.warning("fan-out slice rejected: %s", error.message)
        return {"statusCode": error.status_code, "body": json.dumps({"error": error.message})}
    return {"statusCode": 200, "body": json.dumps(asdict(delivery))}
