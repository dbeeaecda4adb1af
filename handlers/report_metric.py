"""EventBridge MetricReport: store one reported metric, which joins analytics:liveMetrics at the next tick."""

from __future__ import annotations

import json
import logging
from typing import Any

from shared.errors import ClientError
from shared.events import EventBridgeEvent
from shared.reported import report_metric
from shared.services import services

logger = logging.getLogger(__name__)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    svc = services(context)
    try:
        name, value = report_metric(svc.reported, svc.config.system_metrics.source, EventBridgeEvent(event))
    except ClientError as error:
        logger.warning("metric report refused: %s", error.message)
        return {"statusCode": error.status_code, "body": json.dumps({"error": error.message})}
    return {"statusCode": 200, "body": json.dumps({"name": name, "value": value})}
