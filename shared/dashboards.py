"""Dashboard updates: an EventBridge DashboardUpdate event, kept in the dashboard's history (shared/history.py) and
delivered to that room's members only, each with its offset."""

from __future__ import annotations

import time
from typing import Any

from shared import handover, validation
from shared.contract import DASHBOARD_UPDATE, MAX_MESSAGE_BYTES, UPDATE_DETAIL_TYPE, UPDATE_SOURCE
from shared.errors import FrameTooLarge, InvalidInput
from shared.events import EventBridgeEvent
from shared.fanout import Delivery, deliver_event
from shared.history import LONGEST_OFFSET
from shared.metrics import iso_timestamp
from shared.poster import Poster
from shared.protocols import PROTOCOLS, FramesByProtocol
from shared.services import Services


def publish_update(svc: Services, poster: Poster, event: EventBridgeEvent) -> Delivery:
    if event.source != UPDATE_SOURCE or event.detail_type != UPDATE_DETAIL_TYPE:
        raise InvalidInput(f"Expected source {UPDATE_SOURCE!r} and detail-type {UPDATE_DETAIL_TYPE!r}")
    detail = event.detail
    if not isinstance(detail, dict):
        raise InvalidInput('detail must be an object {"dashboardId": ..., "data": ...}')
    dashboard_id = validation.dashboard_id(detail.get("dashboardId"))
    now = time.time()
    payload: dict[str, Any] = {"dashboardId": dashboard_id, "data": detail.get("data"), "timestamp": iso_timestamp(now)}
    longest = FramesByProtocol(DASHBOARD_UPDATE, payload, LONGEST_OFFSET)  # checked before anything is stored
    try:
        largest = max(len(longest.for_protocol(protocol)) for protocol in PROTOCOLS)
    except ValueError:
        raise InvalidInput("data must be JSON (no NaN or Infinity)") from None
    if largest > MAX_MESSAGE_BYTES:
        raise FrameTooLarge(f"Update too large: {largest} bytes, the limit is {MAX_MESSAGE_BYTES}")
    # EventBridge's event id: a retried event appends once (a HistoryBusy fails the function, to be retried).
    update = svc.history.append(dashboard_id, payload, int(now * 1000), event.event_id)
    frames = FramesByProtocol(DASHBOARD_UPDATE, payload, str(update.offset))
    members = handover.live_recipients(svc.table, dashboard_id, update.seq)
    return deliver_event(svc.store, poster, members, frames)
