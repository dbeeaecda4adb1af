"""EventBridge DashboardUpdate: send analytics:dashboardUpdate to the members of one room."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from shared.dashboards import publish_update
from shared.events import EventBridgeEvent
from shared.refusals import answering_refusals, ok
from shared.services import services


@answering_refusals("dashboard update rejected")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    svc = services(context)
    return ok(asdict(publish_update(svc, svc.poster(), EventBridgeEvent(event))))
