"""What each client event does: one function per route, over the store, the rooms and the poster."""

from __future__ import annotations

import time
from typing import Any

from shared import handover, metrics, recovery, validation
from shared.codec import MISSING
from shared.contract import (
    DASHBOARD_UPDATE,
    JOIN_DASHBOARD,
    LEAVE_DASHBOARD,
    LIVE_METRICS,
    REQUEST_LIVE_METRICS,
    SUBSCRIBE_LIVE_METRICS,
    UNSUBSCRIBE_LIVE_METRICS,
    echoed_event_name,
)
from shared.errors import ClientError, InvalidInput, UnknownEvent
from shared.history import Offset
from shared.restore import send_update
from shared.runtime import Action, Request, takes_own_token


@takes_own_token
def subscribe_live_metrics(request: Request) -> None:
    counts = request.services.store.subscribe(request.connection_id, request.token())
    if counts is not None:  # the counts as its own write of the counters left them
        request.send(LIVE_METRICS, metrics.live_snapshot(request.services, counts))


@takes_own_token
def unsubscribe_live_metrics(request: Request) -> None:
    request.services.store.unsubscribe(request.connection_id, request.token())


def request_live_metrics(request: Request) -> None:
    """The counts as of the request, never a snapshot up to a push period old (a client that has just joined a
    dashboard is counted in what it is told), with the latest tick's CPU, memory and reported metrics."""
    request.send(LIVE_METRICS, metrics.live_snapshot(request.services))


@takes_own_token
def join_dashboard(request: Request) -> None:
    """Join; with the last value on, deliver the dashboard's latest update through the hand-over (shared/handover.py),
    so that an update published meanwhile arrives once, after it."""
    dashboard_id = _dashboard_id(request)
    svc, cid, poster = request.services, request.connection_id, request.poster
    last_value = svc.config.last_value_on_join
    until = handover.recovering_until(svc.table) if last_value else None
    max_rooms = svc.config.max_rooms_per_connection
    joined = svc.rooms.join_room(cid, dashboard_id, max_rooms, request.protocol, until, request.token())
    if not (joined and last_value):
        return
    latest = svc.history.latest(dashboard_id)
    if latest is not None and svc.history.fresh(latest):
        # Its offset is of now: the client has seen this dashboard up to it, and the others up to this moment.
        offset = Offset(max(int(time.time() * 1000), latest.ms), latest.seq, dashboard_id)
        request.send(DASHBOARD_UPDATE, latest.payload, str(offset))
        poster.flush()
    position = {dashboard_id: 0 if latest is None else latest.seq}
    handover.hand_over(svc.table, svc.history, cid, position, lambda u: send_update(poster, cid, request.protocol, u))


@takes_own_token
def leave_dashboard(request: Request) -> None:
    dashboard_id = _dashboard_id(request)
    request.services.rooms.leave_room(request.connection_id, dashboard_id, request.token())


def _dashboard_id(request: Request) -> str:
    """The event's dashboard; refused, it still costs the event's token (taken first: the rate limit, or an
    unregistered connection, is the answer before the input's fault)."""
    try:
        return validation.dashboard_id(request.data)
    except ClientError:
        request.token().take()
        raise


@takes_own_token
def resume(request: Request) -> dict[str, Any]:
    """JSON frames' connection state recovery: `{"session"?: str, "offset"?: str}`; the ack names the session. A new
    session takes the token in its mark of the connection's item."""
    data = {} if request.data is MISSING or request.data is None else request.data
    if not isinstance(data, dict):
        request.services.rate_limiter.take_token(request.token())  # registered, and the token: as before the input
        raise InvalidInput('resume expects {"session": ..., "offset": ...} (both optional)')
    resumed = recovery.resume(
        request.services,
        request.poster,
        request.connection_id,
        request.protocol,
        data.get("session"),
        data.get("offset"),
        token=request.token(),
    )
    return {"recovered": resumed.recovered, **({} if resumed.pid is None else {"session": resumed.pid})}


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
