"""Dashboard updates: an EventBridge DashboardUpdate event, delivered to that room's members only."""
from __future__ import annotations

import time
from typing import Any

from shared import validation
from shared.codec import MAX_MESSAGE_BYTES, encode_server_frame
from shared.errors import FrameTooLarge, InvalidInput
from shared.events import EventBridgeEvent
from shared.fanout import Delivery, deliver
from shared.metrics import iso_timestamp
from shared.poster import Poster
from shared.services import Services

DASHBOARD_UPDATE_EVENT = "analytics:dashboardUpdate"
SOURCE = "analytics"
DETAIL_TYPE = "DashboardUpdate"


def publish_update(svc: Services, poster: Poster, event: EventBridgeEvent) -> Delivery:
    if event.source != SOURCE or event.detail_type != DETAIL_TYPE:
        raise InvalidInput(f"Expected source {SOURCE!r} and detail-type {DETAIL_TYPE!r}")
    detail = event.detail
    if not isinstance(detail, dict):
        raise InvalidInput("detail must be an object {\"dashboardId\": ..., \"data\": ...}")
    dashboard_id = validation.dashboard_id(detail.get("dashboardId"))
    payload: dict[str, Any] = {
        "dashboardId": dashboard_id,
        "data": detail.get("data"),
        "timestamp": iso_timestamp(time.time()),
    }
    try:
        frame = encode_server_frame(DASHBOARD_UPDATE_EVENT, payload)
    except ValueError:
        raise InvalidInput("data must be JSON (no NaN or Infinity)") from None
    if len(frame) > MAX_MESSAGE_BYTES:
        raise FrameTooLarge(f"Update too large: {len(frame)} bytes, the limit is {MAX_MESSAGE_BYTES}")
    members = [cid for page in svc.store.room_members(dashboard_id) for cid in page]
    return deliver(svc.store, poster, members, frame)
