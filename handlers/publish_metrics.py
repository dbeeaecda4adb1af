"""The scheduled publisher: ticks every METRICS_INTERVAL_SECONDS for PUBLISH_WINDOW_SECONDS."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import Any

from shared.publisher import run_window
from shared.services import services

logger = logging.getLogger(__name__)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    svc = services(context)
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    result = run_window(svc, svc.poster(), remaining_ms=remaining)
    # A run that pushed nothing (nobody listens) is the usual idle case: not worth a line a period at INFO.
    logger.log(logging.INFO if result.pushes else logging.DEBUG, "published: %s", asdict(result))
    return {"statusCode": 200, "body": json.dumps(asdict(result))}
