"""What each client event does: one function per route, over the store, the rooms and the poster."""

from __future__ import annotations

from shared import metrics, validation
from shared.contract import (
    JOIN_DASHBOARD,
    LEAVE_DASHBOARD,
    LIVE_METRICS,
    REQUEST_LIVE_METRICS,
    SUBSCRIBE_LIVE_METRICS,
    UNSUBSCRIBE_LIVE_METRICS,
    echoed_event_name,
)
from shared.errors import UnknownEvent
from shared.runtime import Action, Request


def subscribe_live_metrics(request: Request) -> None:
    if request.services.store.subscribe(request.connection_id):
        request.send(LIVE_METRICS, metrics.snapshot(request.services.counters.read()))


def unsubscribe_live_metrics(request: Request) -> None:
    request.services.store.unsubscribe(request.connection_id)


def request_live_metrics(request: Request) -> None:
    """The counts as of the request (one GetItem of the counters), never a snapshot up to a push period old:
    a client that has just joined a dashboard is counted in what it is told."""
    request.send(LIVE_METRICS, metrics.snapshot(request.services.counters.read()))


def join_dashboard(request: Request) -> None:
    dashboard_id = validation.dashboard_id(request.data)
    max_rooms = request.services.config.max_rooms_per_connection
    request.services.rooms.join_room(request.connection_id, dashboard_id, max_rooms, request.protocol)


def leave_dashboard(request: Request) -> None:
    dashboard_id = validation.dashboard_id(request.data)
    request.services.rooms.leave_room(request.connection_id, dashboard_id)


def unknown_event(request: Request) -> None:
    raise UnknownEvent(f"Unknown event: {echoed_event_name(request.action)}")


# The command table: what each client event of the contract does (Socket.IO frames all arrive at $default).
COMMANDS: dict[str, Action] = {
    SUBSCRIBE_LIVE_METRICS: subscribe_live_metrics,
    UNSUBSCRIBE_LIVE_METRICS: unsubscribe_live_metrics,
    REQUEST_LIVE_METRICS: request_live_metrics,
    JOIN_DASHBOARD: join_dashboard,
    LEAVE_DASHBOARD: leave_dashboard,
}
