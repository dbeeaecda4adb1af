"""EventBridge DashboardUpdate: send analytics:dashboardUpdate to the members of one room."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import Any

from shared.dashboards import publish_update
from shared.errors import ClientError
from shared.events import EventBridgeEvent
from shared.services import services

logger = logging.getLogger(__name__)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    svc = services()
    try:
        delivery = publish_update(svc, svc.poster(), EventBridgeEvent(event))
    except ClientError as error:
        logger.warning("dashboard update rejected: %s", error.message)
        return {"statusCode": error.status_code, "body": json.dumps({"error": error.message})}
    return {"statusCode": 200, "body": json.dumps(asdict(delivery))}
