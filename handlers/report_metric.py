"""EventBridge MetricReport: store one reported metric, which joins analytics:liveMetrics at the next tick."""

from __future__ import annotations

from typing import Any

from shared.events import EventBridgeEvent
from shared.refusals import answering_refusals, ok
from shared.reported import report_metric
from shared.services import services


@answering_refusals("metric report refused")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    svc = services(context)
    name, value = report_metric(svc.reported, svc.config.system_metrics.source, EventBridgeEvent(event))
    return ok({"name": name, "value": value})
