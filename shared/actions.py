"""What each client event does: one function per route, over the store and the poster."""

from __future__ import annotations

from shared import metrics, validation
from shared.errors import UnknownEvent
from shared.runtime import MAX_ECHOED_EVENT_NAME, Request

LIVE_METRICS_EVENT = "analytics:liveMetrics"


def subscribe_live_metrics(request: Request) -> None:
    if request.services.store.subscribe(request.connection_id):
        request.send(LIVE_METRICS_EVENT, metrics.snapshot(request.services.counters.read()))


def unsubscribe_live_metrics(request: Request) -> None:
    request.services.store.unsubscribe(request.connection_id)


def request_live_metrics(request: Request) -> None:
    """Serve the stored snapshot while it is fresher than one push period, else compute and store one."""
    counters = request.services.counters
    snapshot = request.services.snapshots.get_or_compute(lambda: metrics.snapshot(counters.read()))
    request.send(LIVE_METRICS_EVENT, snapshot)


def join_dashboard(request: Request) -> None:
    dashboard_id = validation.dashboard_id(request.data)
    max_rooms = request.services.config.max_rooms_per_connection
    request.services.store.join_room(request.connection_id, dashboard_id, max_rooms)


def leave_dashboard(request: Request) -> None:
    dashboard_id = validation.dashboard_id(request.data)
    request.services.store.leave_room(request.connection_id, dashboard_id)


def unknown_event(request: Request) -> None:
    raise UnknownEvent(f"Unknown event: {request.action[:MAX_ECHOED_EVENT_NAME]}")
